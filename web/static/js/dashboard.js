// The Decision 766 dashboard (GET /stats/indicators): filters, summary cards, Chart.js charts per month and the
// table per agency and month, which is also the charts' accessible alternative. The API computes every number.
import { api, currentUser, requireLogin } from "./api.js";
import { busy, clear, clearErrors, h, showErrors } from "./ui.js";

const form = document.getElementById("indicator-filters");
const agencySelect = document.getElementById("agency");
const fromInput = document.getElementById("from-month");
const toInput = document.getElementById("to-month");
const box = document.getElementById("indicators");
const message = document.getElementById("indicator-message");

const NUMBER = new Intl.NumberFormat("vi-VN");
const PERCENT = new Intl.NumberFormat("vi-VN", { style: "percent", maximumFractionDigits: 1 });
const DECIMAL = new Intl.NumberFormat("vi-VN", { minimumFractionDigits: 1, maximumFractionDigits: 1 });
const SERIES = [
  { key: "on_time_rate", label: "Đúng hạn", color: "#0b4f8a", point: "circle", dash: [] },
  { key: "online_rate", label: "Trực tuyến", color: "#1e6b34", point: "rect", dash: [6, 4] },
  { key: "online_payment_rate", label: "Thanh toán trực tuyến", color: "#8a5300", point: "triangle", dash: [2, 3] },
  { key: "satisfaction_rate", label: "Hài lòng", color: "#a4161a", point: "rectRot", dash: [10, 3, 2, 3] },
];
const charts = [];

function percent(rate) {
  return rate === null || rate === undefined ? "—" : PERCENT.format(rate);
}

function monthLabel(month) {
  const [year, number] = month.split("-");
  return `${number}/${year}`;
}

function card(title, value, detail, extra = "") {
  return h(
    "li",
    { class: `indicator-card ${extra}`.trim() },
    h("h3", {}, title),
    h("p", { class: "value" }, value),
    h("p", { class: "detail" }, detail),
  );
}

function renderCards(totals) {
  const score = totals.score;
  const cards = [
    card("Tỷ lệ đúng hạn", percent(totals.on_time_rate), `${NUMBER.format(totals.finished_on_time)}/${NUMBER.format(totals.finished)} hồ sơ đã giải quyết đúng hoặc trước hạn`),
    card("Tỷ lệ trực tuyến", percent(totals.online_rate), `${NUMBER.format(totals.received_online)}/${NUMBER.format(totals.received)} hồ sơ tiếp nhận được nộp trực tuyến`),
    card("Tỷ lệ thanh toán trực tuyến", percent(totals.online_payment_rate), `${NUMBER.format(totals.paid_online)}/${NUMBER.format(totals.with_fee)} hồ sơ có phí, lệ phí đã thanh toán trực tuyến`),
    card(
      "Mức độ hài lòng",
      totals.average_rating === null ? "—" : `${DECIMAL.format(totals.average_rating)}/5`,
      totals.rated ? `${percent(totals.satisfaction_rate)} hài lòng (4–5 sao) trên ${NUMBER.format(totals.rated)} lượt đánh giá` : "Chưa có lượt đánh giá nào",
    ),
    card("Tỷ lệ số hóa kết quả", percent(totals.digitisation_rate), `${NUMBER.format(totals.results_electronic)}/${NUMBER.format(totals.finished)} kết quả cấp bản điện tử`),
    card(
      "Điểm tham khảo",
      score.value === null ? "—" : `${DECIMAL.format(score.value)}/100`,
      `Tạm tính trên ${score.max_points}/100 điểm của các nhóm đo được từ hồ sơ; không phải chỉ số chính thức.`,
      "score",
    ),
  ];
  clear(document.getElementById("indicator-cards")).append(...cards);
}

function chartOptions(yTitle, percentAxis) {
  return {
    animation: false,
    responsive: true,
    maintainAspectRatio: false,
    interaction: { mode: "index", intersect: false },
    plugins: {
      legend: { position: "bottom", labels: { usePointStyle: true } },
      tooltip: { callbacks: { label: (item) => `${item.dataset.label}: ${percentAxis ? percent(item.raw === null ? null : item.raw / 100) : NUMBER.format(item.raw)}` } },
    },
    scales: {
      y: { beginAtZero: true, max: percentAxis ? 100 : undefined, title: { display: true, text: yTitle }, ticks: { precision: 0 } },
      x: { title: { display: true, text: "Tháng" } },
    },
  };
}

function renderCharts(months) {
  while (charts.length) charts.pop().destroy();
  const labels = months.map((m) => monthLabel(m.month));
  const rates = SERIES.map((series) => ({
    label: series.label,
    data: months.map((m) => (m[series.key] === null ? null : Math.round(m[series.key] * 1000) / 10)),
    borderColor: series.color,
    backgroundColor: series.color,
    pointStyle: series.point,
    pointRadius: 5,
    borderDash: series.dash,
    spanGaps: false,
  }));
  const counts = [
    { label: "Tiếp nhận", data: months.map((m) => m.received), backgroundColor: "#0b4f8a" },
    { label: "Đã giải quyết", data: months.map((m) => m.finished), backgroundColor: "#1e6b34" },
    { label: "Nộp trực tuyến", data: months.map((m) => m.received_online), backgroundColor: "#8a5300" },
  ];
  const Chart = window.Chart;
  charts.push(new Chart(document.getElementById("rates-chart"), { type: "line", data: { labels, datasets: rates }, options: chartOptions("Tỷ lệ (%)", true) }));
  charts.push(new Chart(document.getElementById("counts-chart"), { type: "bar", data: { labels, datasets: counts }, options: chartOptions("Số hồ sơ", false) }));
}

const COLUMNS = [
  ["Hồ sơ", (r) => NUMBER.format(r.dossiers)],
  ["Tiếp nhận", (r) => NUMBER.format(r.received)],
  ["Đã giải quyết", (r) => NUMBER.format(r.finished)],
  ["Đúng hạn", (r) => percent(r.on_time_rate)],
  ["Trực tuyến", (r) => percent(r.online_rate)],
  ["Thanh toán trực tuyến", (r) => percent(r.online_payment_rate)],
  ["Hài lòng (4–5 sao)", (r) => percent(r.satisfaction_rate)],
  ["Điểm đánh giá TB", (r) => (r.average_rating === null ? "—" : DECIMAL.format(r.average_rating))],
  ["Số hóa kết quả", (r) => percent(r.digitisation_rate)],
];

function renderTable(body) {
  const target = clear(document.getElementById("indicator-table"));
  if (!body.rows.length) {
    target.append(h("p", { class: "muted" }, "Không có hồ sơ nào trong kỳ đã chọn."));
    return;
  }
  const cells = (row) => COLUMNS.map(([, value]) => h("td", { class: "num" }, value(row)));
  const rows = body.rows.map((row) =>
    h(
      "tr",
      { dataset: { agency: row.agency_code, month: row.month } },
      h("th", { scope: "row", class: "agency" }, row.agency_name || row.agency_code, h("br"), h("small", { class: "muted" }, row.agency_code)),
      h("td", {}, monthLabel(row.month)),
      cells(row),
    ),
  );
  const total = h("tr", {}, h("th", { scope: "row", colspan: "2" }, "Cả kỳ"), cells(body.totals));
  target.append(
    h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        { class: "indicator-table", id: "indicator-rows" },
        h("caption", { class: "monitor-caption" }, `Chỉ số theo cơ quan và tháng, từ ${monthLabel(body.from)} đến ${monthLabel(body.to)}`),
        h(
          "thead",
          {},
          h("tr", {}, h("th", { scope: "col", class: "agency" }, "Cơ quan"), h("th", { scope: "col" }, "Tháng"), COLUMNS.map(([title]) => h("th", { scope: "col", class: "num" }, title))),
        ),
        h("tbody", {}, rows),
        h("tfoot", {}, total),
      ),
    ),
  );
}

function fillFilters(body, user) {
  const allowed = user.roles.some((role) => role === "analyst" || role === "admin");
  clear(agencySelect);
  if (allowed) agencySelect.append(h("option", { value: "" }, "Tất cả cơ quan"));
  for (const agency of body.agencies) {
    agencySelect.append(h("option", { value: agency.code }, `${agency.name} (${agency.code})`));
  }
  agencySelect.value = body.agency_code || "";
  fromInput.value = body.from;
  toInput.value = body.to;
}

function render(body) {
  clear(message);
  for (const section of box.querySelectorAll("[data-loaded]")) section.hidden = false;
  const who = body.agency_code ? agencySelect.selectedOptions[0]?.textContent || body.agency_code : "tất cả cơ quan";
  document.getElementById("period-text").textContent = `Từ ${monthLabel(body.from)} đến ${monthLabel(body.to)}, ${who}.`;
  renderCards(body.totals);
  renderCharts(body.months);
  renderTable(body);
  box.removeAttribute("aria-busy");
}

// The API's field messages for the period, as a person reads them on this page.
const PERIOD_MESSAGES = [
  [/not a month/, () => "Tháng không hợp lệ: nhập dạng năm-tháng, ví dụ 2026-03."],
  [/must not be after/, () => "Từ tháng phải trước hoặc trùng đến tháng."],
  [/at most (\d+) months/, (found) => `Mỗi lần xem tối đa ${found[1]} tháng.`],
];

function periodError(error) {
  const errors = {};
  for (const [field, messages] of Object.entries(error.errors || {})) {
    errors[field] = messages.map((text) => {
      const rule = PERIOD_MESSAGES.find(([pattern]) => pattern.test(text));
      return rule ? rule[1](text.match(rule[0])) : text;
    });
  }
  const title = error.status === 422 ? "Kỳ báo cáo chưa hợp lệ" : "Không tải được chỉ số";
  const message = error.status === 422 ? "Vui lòng sửa mục được đánh dấu bên dưới." : error.message;
  return { status: error.status, problem: { title }, message, errors };
}

function queryOf(params) {
  return { from: params.get("from"), to: params.get("to"), agency_code: params.get("agency_code") };
}

async function load(user, params) {
  box.setAttribute("aria-busy", "true");
  const body = await api("GET", "stats/indicators", { query: queryOf(params) });
  fillFilters(body, user);
  render(body);
  const shown = new URLSearchParams({ from: body.from, to: body.to });
  if (params.get("agency_code")) shown.set("agency_code", body.agency_code);
  window.history.replaceState(null, "", `${window.location.pathname}?${shown}`);
}

function refuse(error) {
  box.removeAttribute("aria-busy");
  const text =
    error.status === 403
      ? "Trang chỉ số dành cho cán bộ, chuyên viên phân tích nghiệp vụ và quản trị."
      : `Không tải được chỉ số: ${error.message}`;
  clear(message).append(h("p", { class: "notice notice-bad" }, text));
}

async function main() {
  const user = await currentUser();
  if (!user) {
    requireLogin();
    return;
  }
  try {
    await load(user, new URLSearchParams(window.location.search));
  } catch (error) {
    refuse(error);
    return;
  }
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    busy(document.getElementById("apply-filters"), async () => {
      clearErrors(form);
      const params = new URLSearchParams({ from: fromInput.value, to: toInput.value });
      if (agencySelect.value) params.set("agency_code", agencySelect.value);
      try {
        await load(user, params);
      } catch (error) {
        box.removeAttribute("aria-busy");
        showErrors(form, periodError(error));
      }
    });
  });
}

main();
