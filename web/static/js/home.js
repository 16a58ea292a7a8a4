// The home page: the catalogue search box, how many procedures each level offers, and the applicant's links.
import { api, currentUser, hasRole } from "./api.js";

const form = document.getElementById("home-search");
form.addEventListener("submit", (event) => {
  event.preventDefault();
  const q = form.q.value.trim();
  window.location.assign(q ? `/thu-tuc?q=${encodeURIComponent(q)}` : "/thu-tuc");
});

async function levelCounts() {
  const format = new Intl.NumberFormat("vi-VN");
  await Promise.all(
    [1, 2, 3, 4].map(async (level) => {
      const cell = document.querySelector(`[data-level-count="${level}"]`);
      try {
        const found = await api("GET", "procedures", { query: { level, per_page: 1 } });
        cell.textContent = "";
        const link = document.createElement("a");
        link.href = `/thu-tuc?level=${level}`;
        link.textContent = `${format.format(found.page.total)} thủ tục mức độ ${level}`;
        cell.append(link);
      } catch (error) {
        cell.textContent = "";
      }
    }),
  );
}

async function account() {
  const user = await currentUser();
  if (!user) return;
  document.getElementById("home-login").hidden = true;
  document.getElementById("home-mine").hidden = !hasRole(user, "applicant");
}

levelCounts();
account();
