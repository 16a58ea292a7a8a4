// The login page: a session cookie from /api/v1/auth/session, then back to where the visitor was going.
import { hasRole, login } from "./api.js";
import { busy, clearErrors, showErrors } from "./ui.js";

const form = document.getElementById("login-form");

function landing(user) {
  const next = new URLSearchParams(window.location.search).get("next");
  if (next && next.startsWith("/") && !next.startsWith("//")) return next;
  if (hasRole(user, "reception", "specialist", "leader")) return "/can-bo";
  if (hasRole(user, "analyst")) return "/mo-hinh";
  if (hasRole(user, "applicant")) return "/ho-so";
  return "/";
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  clearErrors(form);
  const button = form.querySelector("button[type=submit]");
  await busy(button, async () => {
    try {
      const user = await login(form.username.value.trim(), form.password.value);
      window.location.assign(landing(user));
    } catch (error) {
      showErrors(form, error);
    }
  });
});
