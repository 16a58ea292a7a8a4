// Small DOM helpers shared by the pages: element building (never innerHTML with data), dates, money,
// status badges, messages and the rendering of API errors next to their fields.

export function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") element.className = value;
    else if (key === "dataset") Object.assign(element.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") element.addEventListener(key.slice(2), value);
    else if (value === true) element.setAttribute(key, "");
    else element.setAttribute(key, String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

export function clear(element) {
  while (element.firstChild) element.removeChild(element.firstChild);
  return element;
}

const DATE_TIME = new Intl.DateTimeFormat("vi-VN", {
  timeZone: "Asia/Ho_Chi_Minh",
  day: "2-digit",
  month: "2-digit",
  year: "numeric",
  hour: "2-digit",
  minute: "2-digit",
});
const DATE = new Intl.DateTimeFormat("vi-VN", { timeZone: "Asia/Ho_Chi_Minh", day: "2-digit", month: "2-digit", year: "numeric" });

export function dateTime(value) {
  return value ? DATE_TIME.format(new Date(value)) : "—";
}

export function date(value) {
  return value ? DATE.format(new Date(value)) : "—";
}

export function money(value) {
  const amount = Number(value || 0);
  return `${new Intl.NumberFormat("vi-VN").format(amount)} đồng`;
}

/** Status badge (TrangThaiHoSo), coloured by how far the dossier is. */
export function statusBadge(status) {
  if (!status) return h("span", { class: "badge" }, "—");
  const tone = { 3: "bad", 7: "muted", 8: "bad", 9: "good", 10: "good", 5: "warn", 6: "warn" }[status.code] || "info";
  return h("span", { class: `badge badge-${tone}`, dataset: { status: status.code } }, status.name);
}

export function flash(message, tone = "info") {
  const box = document.getElementById("flash");
  clear(box).append(h("p", { class: `notice notice-${tone}` }, message));
  box.scrollIntoView({ block: "nearest" });
}

/**
 * Show an ApiError on a form: the summary at the top (role=alert) and each field's messages under the input
 * whose name matches (nested keys joined with dots). Input the citizen typed is never cleared.
 */
export function showErrors(form, error) {
  clearErrors(form);
  let box = form.querySelector("[data-error-summary]");
  if (!box) {
    box = h("div", { "data-error-summary": "" });
    form.prepend(box);
  }
  const items = [];
  for (const [field, messages] of flatten(error.errors || {})) {
    const input = form.querySelector(`[name="${CSS.escape(field)}"]`);
    const text = messages.join(" ");
    if (input) {
      const id = `${input.id || field.replace(/\W/g, "-")}-error`;
      const note = h("p", { class: "field-error", id }, text);
      (input.closest(".field") || input.parentElement).append(note);
      input.setAttribute("aria-invalid", "true");
      input.setAttribute("aria-describedby", `${input.getAttribute("aria-describedby") || ""} ${id}`.trim());
      items.push(h("li", {}, h("a", { href: `#${input.id}` }, `${labelOf(input) || field}: ${text}`)));
    } else {
      items.push(h("li", {}, `${field}: ${text}`));
    }
  }
  box.setAttribute("role", "alert");
  box.className = "notice notice-bad";
  box.append(h("p", {}, h("strong", {}, error.problem?.title || "Không thực hiện được"), " ", error.message || ""));
  if (items.length) box.append(h("ul", {}, items));
  box.tabIndex = -1;
  box.focus();
  return box;
}

export function clearErrors(form) {
  form.querySelectorAll(".field-error").forEach((node) => node.remove());
  form.querySelectorAll("[aria-invalid]").forEach((node) => {
    node.removeAttribute("aria-invalid");
    const described = (node.getAttribute("aria-describedby") || "").split(" ").filter((id) => !id.endsWith("-error"));
    if (described.length) node.setAttribute("aria-describedby", described.join(" "));
    else node.removeAttribute("aria-describedby");
  });
  const box = form.querySelector("[data-error-summary]");
  if (box) {
    clear(box);
    box.className = "";
    box.removeAttribute("role");
  }
}

function labelOf(input) {
  if (input.tagName === "FIELDSET") return input.querySelector("legend")?.textContent.replace("*", "").trim() || null;
  const label = input.id ? document.querySelector(`label[for="${CSS.escape(input.id)}"]`) : null;
  return label ? label.textContent.replace("*", "").trim() : null;
}

function* flatten(errors, prefix = "") {
  for (const [key, value] of Object.entries(errors)) {
    const name = prefix ? `${prefix}.${key}` : key;
    if (Array.isArray(value) && value.every((item) => typeof item === "string")) yield [name, value];
    else if (Array.isArray(value)) yield [name, value.map((item) => (typeof item === "string" ? item : JSON.stringify(item)))];
    else if (value && typeof value === "object") yield* flatten(value, name);
    else yield [name, [String(value)]];
  }
}

/** Turn a button busy while `work` runs, so a double click cannot send twice. */
export async function busy(button, work) {
  if (button.disabled) return undefined;
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  try {
    return await work();
  } finally {
    button.disabled = false;
    button.removeAttribute("aria-busy");
  }
}

/** A <dl class="facts"> of [term, ...value] pairs; falsy pairs are skipped. */
export function factList(pairs) {
  return h("dl", { class: "facts" }, pairs.filter(Boolean).flatMap(([term, ...value]) => [h("dt", {}, term), h("dd", {}, ...value)]));
}

/** "Trang trước / Trang i / n / Trang sau" buttons into `pager` (emptied first); `go(page)` shows a page. */
export function pagerButtons(pager, page, pages, go) {
  clear(pager);
  if (pages <= 1) return pager;
  pager.append(
    h("button", { type: "button", class: "button-secondary", disabled: page <= 1, onclick: () => go(page - 1) }, "Trang trước"),
    h("span", {}, `Trang ${page} / ${pages}`),
    h("button", { type: "button", class: "button-secondary", disabled: page >= pages, onclick: () => go(page + 1) }, "Trang sau"),
  );
  return pager;
}
