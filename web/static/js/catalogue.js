// The catalogue: search by name or code (the API folds diacritics), filter by sector and level, one card per
// procedure with its level and Decree 42 class, agency and processing time. The filters live in the URL.
import { api } from "./api.js";
import { clear, h, pagerButtons } from "./ui.js";

const PER_PAGE = 20;
const UNITS = { working_days: "ngày làm việc", working_hours: "giờ làm việc", days: "ngày", hours: "giờ" };
const CHANNELS = { online: "Trực tuyến", in_person: "Trực tiếp", post: "Bưu chính" };

/** "Mức độ 3" badge. */
export function levelBadge(level) {
  return h("span", { class: "badge badge-level" }, `Mức độ ${level}`);
}

/** The Decree 42/2022 class badge: toàn trình or một phần. */
export function classBadge(decreeClass) {
  return decreeClass === "toan_trinh"
    ? h("span", { class: "badge badge-class-full" }, "Toàn trình")
    : h("span", { class: "badge badge-class-part" }, "Một phần");
}

export function duration(amount, unit) {
  if (amount === 0 || amount === "0") return "Trong ngày";
  return `${amount} ${UNITS[unit] || unit || ""}`.trim();
}

export function channelName(kind) {
  return CHANNELS[kind] || kind;
}

/** The processing time to show on a card: online if offered, else the first channel's. */
export function shortDuration(channels) {
  const list = channels || [];
  const chosen = list.find((channel) => channel.kind === "online") || list[0];
  return chosen ? duration(chosen.processing_time, chosen.unit) : "—";
}

function card(procedure) {
  const titleId = `proc-${procedure.code.replace(/\W/g, "-")}`;
  return h(
    "li",
    { class: "procedure-card", "aria-labelledby": titleId },
    h("h2", { id: titleId }, h("a", { href: `/thu-tuc/${encodeURIComponent(procedure.code)}` }, procedure.name)),
    h("div", { class: "badges" }, levelBadge(procedure.level), classBadge(procedure.decree_42_class)),
    h(
      "ul",
      { class: "meta" },
      h("li", {}, "Mã thủ tục: ", h("strong", {}, procedure.code)),
      h("li", {}, "Lĩnh vực: ", h("strong", {}, procedure.sector)),
      h("li", {}, "Cơ quan thực hiện: ", h("strong", {}, procedure.agency?.name || "—")),
      h("li", {}, "Thời hạn giải quyết: ", h("strong", {}, shortDuration(procedure.channels))),
    ),
  );
}

function filtersFromUrl() {
  const params = new URLSearchParams(window.location.search);
  return {
    q: params.get("q") || "",
    sector: params.get("sector") || "",
    level: params.get("level") || "",
    page: Math.max(1, Number(params.get("page")) || 1),
  };
}

function writeUrl(filters) {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(filters)) {
    if (value && !(key === "page" && value === 1)) params.set(key, value);
  }
  const query = params.toString();
  window.history.replaceState(null, "", query ? `?${query}` : window.location.pathname);
}

async function sectors(select, chosen) {
  const all = await api("GET", "procedures", { query: { per_page: 200 } });
  const names = [...new Set(all.items.map((p) => p.sector))].sort((a, b) => a.localeCompare(b, "vi"));
  for (const name of names) select.append(h("option", { value: name }, name));
  select.value = chosen;
}

async function show(filters) {
  const list = document.getElementById("procedures");
  const count = document.getElementById("result-count");
  const pager = document.getElementById("pager");
  writeUrl(filters);
  let found;
  try {
    found = await api("GET", "procedures", { query: { ...filters, per_page: PER_PAGE } });
  } catch (error) {
    count.textContent = `Không tải được danh mục thủ tục: ${error.message}`;
    return;
  }
  clear(list).append(...found.items.map(card));
  const total = found.page.total;
  count.textContent = total ? `Tìm thấy ${total} thủ tục.` : "Không tìm thấy thủ tục nào phù hợp.";
  clear(pager);
  pagerButtons(pager, filters.page, Math.ceil(total / PER_PAGE), (page) => show({ ...filters, page }));
}

function main() {
  const form = document.getElementById("catalogue-search");
  const filters = filtersFromUrl();
  form.q.value = filters.q;
  form.level.value = filters.level;
  sectors(form.sector, filters.sector).catch(() => {});
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    show({ q: form.q.value.trim(), sector: form.sector.value, level: form.level.value, page: 1 });
  });
  for (const select of [form.sector, form.level]) select.addEventListener("change", () => form.requestSubmit());
  show(filters);
}

// The badges and durations above are shared with the procedure page, which imports this module.
if (document.body.dataset.page === "catalogue") main();
