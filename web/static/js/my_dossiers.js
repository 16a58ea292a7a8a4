// "My dossiers": the applicant's dossiers, newest first (officials see their agency's), with status, submission
// and due dates; overdue and due-soon rows are marked; paging and a status filter live in the URL.
import { api, currentUser, requireLogin } from "./api.js";
import { clear, date, dateTime, h, pagerButtons, statusBadge } from "./ui.js";

const PER_PAGE = 20;
const names = new Map();

async function procedureNames() {
  try {
    const all = await api("GET", "procedures", { query: { per_page: 200 } });
    for (const procedure of all.items) names.set(procedure.code, procedure.name);
  } catch (error) {
    // the codes are shown instead
  }
}

function row(dossier) {
  const tone = dossier.overdue ? "overdue" : dossier.due_soon ? "due-soon" : null;
  const due = dossier.due_at ? date(dossier.due_at) : "Chưa có (chờ tiếp nhận)";
  return h(
    "tr",
    { class: tone },
    h("td", {}, h("a", { href: `/ho-so/${encodeURIComponent(dossier.code)}` }, dossier.code)),
    h("td", {}, names.get(dossier.procedure_code) || dossier.procedure_code, h("br"), h("span", { class: "muted" }, `Mã thủ tục ${dossier.procedure_code}`)),
    h("td", {}, statusBadge(dossier.status)),
    h("td", {}, dateTime(dossier.submitted_at)),
    h("td", {}, due, dossier.overdue ? [" ", h("span", { class: "badge badge-bad" }, "Quá hạn")] : null),
  );
}

function readUrl() {
  const params = new URLSearchParams(window.location.search);
  return { status: params.get("status") || "", page: Math.max(1, Number(params.get("page")) || 1) };
}

function writeUrl(filters) {
  const params = new URLSearchParams();
  if (filters.status) params.set("status", filters.status);
  if (filters.page > 1) params.set("page", filters.page);
  const query = params.toString();
  window.history.replaceState(null, "", query ? `?${query}` : window.location.pathname);
}

async function show(filters) {
  writeUrl(filters);
  const count = document.getElementById("dossier-count");
  let found;
  try {
    found = await api("GET", "dossiers", { query: { ...filters, per_page: PER_PAGE } });
  } catch (error) {
    count.textContent = `Không tải được danh sách hồ sơ: ${error.message}`;
    return;
  }
  const total = found.page.total;
  count.textContent = total ? `Có ${total} hồ sơ.` : "Chưa có hồ sơ nào.";
  document.getElementById("dossier-table").hidden = total === 0;
  clear(document.getElementById("dossier-rows")).append(...found.items.map(row));
  const pager = clear(document.getElementById("pager"));
  pagerButtons(pager, filters.page, Math.ceil(total / PER_PAGE), (page) => show({ ...filters, page }));
}

async function main() {
  if (!(await currentUser())) {
    requireLogin();
    return;
  }
  const form = document.getElementById("dossier-filter");
  const filters = readUrl();
  form.status.value = filters.status;
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    show({ status: form.status.value, page: 1 });
  });
  form.status.addEventListener("change", () => form.requestSubmit());
  await procedureNames();
  await show(filters);
}

main();
