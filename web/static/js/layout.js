// Every page: the account box and role links in the header, and the visitor counter in the footer.
import { api, currentUser, hasRole, logout } from "./api.js";

async function account() {
  const user = await currentUser();
  const loginLink = document.getElementById("login-link");
  const name = document.getElementById("account-name");
  const logoutButton = document.getElementById("logout-button");
  if (!user) return;
  loginLink.hidden = true;
  name.hidden = false;
  name.textContent = `Xin chào, ${user.full_name || user.username}`;
  logoutButton.hidden = false;
  logoutButton.addEventListener("click", async () => {
    await logout();
    window.location.assign("/");
  });
  for (const item of document.querySelectorAll("[data-role-link]")) {
    item.hidden = !hasRole(user, ...item.dataset.roleLink.split(" "));
  }
}

async function visits() {
  try {
    const counts = await api("GET", "stats/visits");
    const format = new Intl.NumberFormat("vi-VN");
    for (const cell of document.querySelectorAll("[data-visit]")) {
      cell.textContent = format.format(counts[cell.dataset.visit] ?? 0);
    }
  } catch (error) {
    for (const cell of document.querySelectorAll("[data-visit]")) cell.textContent = "—";
  }
}

account();
visits();
