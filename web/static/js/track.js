// Tracking by dossier code: the public, non-personal GET /api/v1/track/{code}; the code stays in the URL.
import { api } from "./api.js";
import { busy, clear, clearErrors, dateTime, h, showErrors, statusBadge } from "./ui.js";

const OUTCOMES = { early: "Trước hạn", on_time: "Đúng hạn", late: "Quá hạn" };
const form = document.getElementById("track-form");

function facts(found) {
  const item = (term, ...value) => [h("dt", {}, term), h("dd", {}, ...value)];
  return h(
    "dl",
    { class: "facts" },
    item("Mã hồ sơ", h("strong", {}, found.code)),
    item("Thủ tục", `${found.procedure_name} (mã ${found.procedure_code})`),
    item("Cơ quan giải quyết", found.agency_name),
    item("Trạng thái", statusBadge(found.status)),
    item("Ngày tiếp nhận", dateTime(found.received_at)),
    item("Ngày hẹn trả kết quả", dateTime(found.due_at)),
    item("Ngày hoàn thành", dateTime(found.finished_at)),
    item("Kết quả giải quyết", OUTCOMES[found.outcome] || "Chưa có"),
  );
}

async function track(code) {
  const result = document.getElementById("track-result");
  clearErrors(form);
  if (!code) {
    result.hidden = true;
    showErrors(form, { problem: { title: "Chưa nhập mã hồ sơ" }, message: "", errors: { code: ["Vui lòng nhập mã hồ sơ."] } });
    return;
  }
  window.history.replaceState(null, "", `?ma=${encodeURIComponent(code)}`);
  try {
    const found = await api("GET", `track/${encodeURIComponent(code)}`);
    clear(document.getElementById("track-facts")).append(facts(found));
    result.hidden = false;
  } catch (error) {
    result.hidden = true;
    const text = error.status === 404 ? "Không tìm thấy hồ sơ có mã này. Vui lòng kiểm tra lại mã hồ sơ." : error.message;
    showErrors(form, { problem: { title: "Không tìm thấy hồ sơ" }, message: "", errors: { code: [text] } });
  }
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  busy(form.querySelector("button[type=submit]"), () => track(form.code.value.trim()));
});

const initial = new URLSearchParams(window.location.search).get("ma");
if (initial) {
  form.code.value = initial;
  track(initial.trim());
}
