// The procedure page: everything level 1 promises (steps, components, time per channel, fees, conditions,
// result, legal basis, cases), the blank forms to download (level 2+), and the way to submit for its level.
import { api } from "./api.js";
import { channelName, classBadge, duration, levelBadge } from "./catalogue.js";
import { clear, date, h, money } from "./ui.js";

const FEE_UNITS = { per_request: "lần yêu cầu", per_copy: "bản", per_page: "trang" };
const FEE_MODES = { before: "Nộp khi nộp hồ sơ", after: "Nộp khi nhận kết quả", exempt: "Miễn", none: "Không thu" };

function section(id, title, ...content) {
  return h("section", { class: "card", "aria-labelledby": id }, h("h2", { id }, title), ...content);
}

function table(caption, headers, rows) {
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      {},
      h("caption", { class: "visually-hidden" }, caption),
      h("thead", {}, h("tr", {}, headers.map((text) => h("th", { scope: "col" }, text)))),
      h("tbody", {}, rows.map((cells) => h("tr", {}, cells.map((cell) => h("td", {}, cell))))),
    ),
  );
}

function feeAmount(fee) {
  if (fee.mode === "exempt") return "Miễn";
  if (fee.amount === null || fee.amount === undefined) return "Theo quy định của tỉnh";
  const parts = [`${money(fee.amount)} / ${FEE_UNITS[fee.unit] || fee.unit}`];
  for (const tier of fee.tiers || []) parts.push(`từ ${FEE_UNITS[fee.unit] || "đơn vị"} thứ ${tier.from_unit}: ${money(tier.amount)}`);
  if (fee.max_amount) parts.push(`tối đa ${money(fee.max_amount)}`);
  return parts.join("; ");
}

function feeRows(fees) {
  return (fees || []).map((fee) => [fee.description, feeAmount(fee), FEE_MODES[fee.mode] || fee.mode || "—"]);
}

function components(procedure) {
  const withForms = procedure.level >= 2;
  const rows = (procedure.components || []).map((component) => [
    component.name,
    String(component.copies?.original ?? 0),
    String(component.copies?.copy ?? 0),
    component.required ? "Bắt buộc" : "Nếu có",
    withForms && component.form
      ? h(
          "a",
          {
            href: `/api/v1/procedures/${encodeURIComponent(procedure.code)}/forms/${encodeURIComponent(component.form)}`,
            download: `${component.form}.pdf`,
            "aria-label": `Tải mẫu (PDF): ${component.name}`,
          },
          "Tải mẫu (PDF)",
        )
      : "—",
  ]);
  return table("Thành phần hồ sơ", ["Tên giấy tờ", "Bản chính", "Bản sao", "Yêu cầu", "Mẫu đơn, tờ khai"], rows);
}

function howToSubmit(procedure) {
  const code = encodeURIComponent(procedure.code);
  const box = h("section", { class: "card", "aria-labelledby": "submit-title" }, h("h2", { id: "submit-title" }, "Nộp hồ sơ"));
  if (procedure.level >= 3) {
    box.append(
      h("p", {}, "Thủ tục này được nộp trực tuyến: điền tờ khai điện tử, đính kèm giấy tờ và theo dõi kết quả tại “Hồ sơ của tôi”."),
      procedure.level === 4 ? h("p", {}, "Phí, lệ phí được thanh toán trực tuyến; kết quả trả trực tuyến, tại Bộ phận một cửa hoặc qua bưu chính theo lựa chọn của bạn.") : h("p", {}, "Phí, lệ phí nộp và kết quả nhận tại Bộ phận một cửa."),
      h("p", {}, h("a", { class: "button", href: `/thu-tuc/${code}/nop-ho-so` }, "Nộp hồ sơ trực tuyến")),
    );
  } else if (procedure.level === 2) {
    box.append(
      h("p", {}, "Tải mẫu đơn, tờ khai ở mục “Thành phần hồ sơ”, in và khai đầy đủ, chuẩn bị các giấy tờ kèm theo."),
      h("p", {}, `Sau đó nộp hồ sơ giấy trực tiếp tại Bộ phận một cửa của ${procedure.agency?.name || "cơ quan giải quyết"} hoặc gửi qua dịch vụ bưu chính. Thủ tục này chưa nhận hồ sơ trực tuyến.`),
    );
  } else {
    box.append(h("p", {}, `Thủ tục này được cung cấp thông tin trực tuyến (mức độ 1). Vui lòng nộp hồ sơ trực tiếp tại Bộ phận một cửa của ${procedure.agency?.name || "cơ quan giải quyết"}.`));
  }
  return box;
}

function facts(procedure) {
  const item = (term, value) => [h("dt", {}, term), h("dd", {}, value)];
  return h(
    "dl",
    { class: "facts" },
    item("Mã thủ tục", procedure.code),
    item("Lĩnh vực", procedure.sector),
    item("Cơ quan thực hiện", procedure.agency?.name || "—"),
    item("Đối tượng thực hiện", (procedure.applicant_types || []).map((t) => t.label || t).join("; ") || "—"),
    item("Kết quả thực hiện", typeof procedure.result === "string" ? procedure.result : JSON.stringify(procedure.result)),
  );
}

function cases(procedure) {
  return (procedure.cases || []).map((item) => {
    const details = [];
    if (item.processing_time !== undefined && item.processing_time !== null) details.push(`Thời hạn giải quyết: ${duration(item.processing_time, item.unit)}`);
    for (const fee of item.fees || []) details.push(`${fee.description} (${feeAmount(fee)})`);
    return h("li", {}, h("strong", {}, item.name), details.length ? h("ul", {}, details.map((d) => h("li", {}, d))) : null);
  });
}

function render(procedure) {
  const root = clear(document.getElementById("procedure"));
  document.title = `${procedure.name} | Một cửa điện tử`;
  const main = h(
    "div",
    {},
    section(
      "channels-title",
      "Cách thức thực hiện và thời hạn giải quyết",
      table(
        "Cách thức thực hiện",
        ["Hình thức nộp", "Thời hạn giải quyết", "Mô tả"],
        (procedure.channels || []).map((c) => [channelName(c.kind), duration(c.processing_time, c.unit), c.description || "—"]),
      ),
    ),
    section("steps-title", "Trình tự thực hiện", h("ol", { class: "steps" }, (procedure.steps || []).map((s) => h("li", {}, s)))),
    section("components-title", "Thành phần hồ sơ", components(procedure)),
    section("fees-title", "Phí, lệ phí", (procedure.fees || []).length ? table("Phí, lệ phí", ["Nội dung", "Mức thu", "Thời điểm nộp"], feeRows(procedure.fees)) : h("p", {}, "Không thu phí, lệ phí.")),
    section("conditions-title", "Yêu cầu, điều kiện thực hiện", (procedure.conditions || []).length ? h("ul", { class: "plain" }, procedure.conditions.map((c) => h("li", {}, c))) : h("p", {}, "Không có.")),
    (procedure.cases || []).length ? section("cases-title", "Các trường hợp có thời hạn hoặc phí riêng", h("ul", { class: "plain" }, cases(procedure))) : null,
    section(
      "legal-title",
      "Căn cứ pháp lý",
      table("Căn cứ pháp lý", ["Số ký hiệu", "Trích yếu", "Ngày ban hành"], (procedure.legal_basis || []).map((l) => [l.number, l.title, l.date ? date(l.date) : "—"])),
    ),
  );
  root.append(
    h("h1", { id: "procedure-title" }, procedure.name),
    h("div", { class: "badges" }, levelBadge(procedure.level), classBadge(procedure.decree_42_class)),
    h("div", { class: "two-col" }, section("facts-title", "Thông tin chung", facts(procedure)), howToSubmit(procedure)),
    main,
  );
  root.removeAttribute("aria-busy");
}

async function main() {
  const code = document.body.dataset.code;
  try {
    render(await api("GET", `procedures/${encodeURIComponent(code)}`));
  } catch (error) {
    const root = clear(document.getElementById("procedure"));
    root.removeAttribute("aria-busy");
    root.append(
      h("h1", {}, "Không tìm thấy thủ tục"),
      h("p", { class: "notice notice-bad", role: "alert" }, error.status === 404 ? `Không có thủ tục mã ${code}.` : error.message),
    );
  }
}

main();
