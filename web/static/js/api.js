// The pages' one way to the server: the same /api/v1 that integrators use, with the session cookie.
// Errors come back as RFC 9457 problem documents; ApiError keeps the field messages for the forms.

const CSRF_COOKIE = "motcua_csrf";
const UNSAFE = new Set(["POST", "PUT", "PATCH", "DELETE"]);

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
    this.errors = problem.errors || {};
  }
}

function cookie(name) {
  const found = document.cookie.split("; ").find((part) => part.startsWith(name + "="));
  return found ? decodeURIComponent(found.slice(name.length + 1)) : null;
}

/**
 * Call the API. `body` may be a plain object (sent as JSON) or a FormData (multipart).
 * Returns the parsed JSON (or null for 204); throws ApiError with the problem document otherwise.
 */
export async function api(method, path, { body, headers = {}, query } = {}) {
  const url = new URL(path.startsWith("/") ? path : `/api/v1/${path}`, window.location.origin);
  if (query) {
    for (const [key, value] of Object.entries(query)) {
      if (value !== undefined && value !== null && value !== "") url.searchParams.set(key, value);
    }
  }
  const init = { method, headers: { Accept: "application/json, application/problem+json", ...headers }, credentials: "same-origin" };
  if (UNSAFE.has(method)) {
    const csrf = cookie(CSRF_COOKIE);
    if (csrf) init.headers["X-CSRF-Token"] = csrf;
  }
  if (body instanceof FormData) {
    init.body = body;
  } else if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(url, init);
  } catch (error) {
    throw new ApiError(0, { title: "Không kết nối được máy chủ", detail: "Vui lòng kiểm tra kết nối mạng và thử lại." });
  }
  if (response.status === 204) return null;
  const type = response.headers.get("Content-Type") || "";
  const data = type.includes("json") ? await response.json() : await response.text();
  if (!response.ok) {
    throw new ApiError(response.status, typeof data === "object" ? data : { title: `HTTP ${response.status}`, detail: String(data).slice(0, 300) });
  }
  if (path.startsWith("/") || !type.includes("json")) return data;
  return data;
}

/** The ETag header of a GET, with the body: for If-Match on a later write. */
export async function apiWithEtag(path) {
  const response = await fetch(new URL(`/api/v1/${path}`, window.location.origin), {
    headers: { Accept: "application/json" },
    credentials: "same-origin",
  });
  const data = await response.json();
  if (!response.ok) throw new ApiError(response.status, data);
  return { data, etag: response.headers.get("ETag") };
}

let cachedSession;

/** Who is logged in ({username, full_name, roles, agency_code}) or null. */
export async function currentUser() {
  if (cachedSession === undefined) {
    try {
      cachedSession = await api("GET", "auth/session");
    } catch (error) {
      cachedSession = null;
    }
  }
  return cachedSession;
}

export function hasRole(user, ...roles) {
  return Boolean(user) && user.roles.some((role) => role === "admin" || roles.includes(role));
}

export async function login(username, password) {
  cachedSession = await api("POST", "auth/session", { body: { username, password } });
  return cachedSession;
}

export async function logout() {
  await api("DELETE", "auth/session");
  cachedSession = null;
}

/** Send the visitor to the login page, coming back here afterwards. */
export function requireLogin() {
  const next = window.location.pathname + window.location.search;
  window.location.assign(`/dang-nhap?next=${encodeURIComponent(next)}`);
}

/** The value of `promise`, or null when the API refused it (for parts of a page that may be missing). */
export async function optional(promise) {
  try {
    return await promise;
  } catch (error) {
    if (error instanceof ApiError) return null;
    throw error;
  }
}
