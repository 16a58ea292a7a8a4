// Monitoring one process instance (GET /instances/{id}): its BPMN drawn by bpmn-js's NavigatedViewer with the
// completed and current elements marked, a selector for the called processes (fragments), and tables of its
// data, timers, message waits, incidents and audit trail. Everything shown comes from the API.
import { api, currentUser, requireLogin } from "./api.js";
import { clear, dateTime, h } from "./ui.js";

const instanceId = document.body.dataset.instanceId;
const page = document.getElementById("instance-page");
const message = document.getElementById("instance-message");
const select = document.getElementById("process-select");
const diagramText = document.getElementById("diagram-text");

const MARKERS = { completed: "mc-done", active: "mc-active", failed: "mc-failed" };
const STATUS = {
  running: ["Đang chạy", "info"],
  incident: ["Có sự cố", "bad"],
  completed: ["Đã kết thúc", "good"],
  cancelled: ["Đã dừng", "muted"],
};
const ACTIONS = {
  started: "Khởi tạo quy trình",
  task_completed: "Hoàn thành nhiệm vụ",
  message_received: "Nhận thông điệp",
  timer_fired: "Hẹn giờ kích hoạt",
  retry: "Thử lại tác vụ dịch vụ",
  retry_scheduled: "Hẹn thử lại tác vụ dịch vụ",
  incident: "Phát sinh sự cố",
  incident_retried: "Xử lý lại sự cố",
  claim_released: "Trả nhiệm vụ về hàng chờ",
  cancelled: "Dừng quy trình",
  completed: "Kết thúc quy trình",
};
const LANES = { applicant: "Người nộp", reception: "Một cửa", specialist: "Chuyên viên", leader: "Lãnh đạo" };
const TIMER_KINDS = { timer: "Hẹn giờ BPMN", retry: "Thử lại tác vụ dịch vụ" };

// process key -> {xml, names: element id -> name}; filled once, all diagrams at the start.
const diagrams = new Map();
let viewer = null;
let report = null;

function table(caption, headers, rows, attrs = {}) {
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      attrs,
      h("caption", { class: "monitor-caption" }, caption),
      h("thead", {}, h("tr", {}, headers.map((text) => h("th", { scope: "col" }, text)))),
      h("tbody", {}, rows),
    ),
  );
}

function empty(text) {
  return h("p", { class: "muted" }, text);
}

/** "Name (id)" of a BPMN element, from any diagram of this instance (the id alone when unnamed). */
function elementLabel(elementId, processKey) {
  if (!elementId) return "—";
  const sources = processKey ? [diagrams.get(processKey)] : [...diagrams.values()];
  for (const source of sources) {
    const name = source?.names.get(elementId);
    if (name) return h("span", {}, name, " ", h("code", { class: "muted" }, elementId));
  }
  return h("code", {}, elementId);
}

function namesOf(xml) {
  const names = new Map();
  const doc = new DOMParser().parseFromString(xml, "application/xml");
  for (const node of doc.querySelectorAll("[id][name]")) {
    names.set(node.getAttribute("id"), node.getAttribute("name").replace(/\s+/g, " ").trim());
  }
  return names;
}

async function loadDiagrams(processes) {
  await Promise.all(
    processes.map(async (process) => {
      const path = `instances/${encodeURIComponent(instanceId)}/processes/${encodeURIComponent(process.process_key)}/xml`;
      const xml = await api("GET", path, { headers: { Accept: "application/xml" } });
      diagrams.set(process.process_key, { xml, names: namesOf(xml) });
    }),
  );
}

function processTitle(process) {
  const version = process.version ? `, phiên bản ${process.version}` : "";
  if (!process.called_from) return `Quy trình chính: ${process.process_key}${version}`;
  return `Quy trình con: ${process.process_key}${version} (gọi từ ${process.called_from.element_id})`;
}

function fillSelector(processes) {
  clear(select);
  for (const process of processes) {
    select.append(h("option", { value: process.process_key }, processTitle(process)));
  }
  select.disabled = processes.length < 2;
}

function describeMarks(process) {
  const names = (ids) => ids.map((id) => diagrams.get(process.process_key)?.names.get(id) || id).join("; ") || "không có";
  const parts = [`Đang thực hiện: ${names(process.active)}.`, `Đã hoàn thành: ${process.completed.length} phần tử.`];
  if (process.failed.length) parts.push(`Gặp sự cố: ${names(process.failed)}.`);
  diagramText.textContent = `${processTitle(process)}. ${parts.join(" ")}`;
}

function markFlows(registry, canvas, process) {
  const reached = new Set([...process.completed, ...process.active, ...process.failed]);
  const done = new Set(process.completed);
  for (const element of registry.filter((e) => e.type === "bpmn:SequenceFlow")) {
    if (done.has(element.source?.id) && reached.has(element.target?.id)) canvas.addMarker(element.id, MARKERS.completed);
  }
}

async function showProcess(processKey) {
  const process = report.processes.find((p) => p.process_key === processKey);
  if (!process) return;
  select.value = processKey;
  await viewer.importXML(diagrams.get(processKey).xml);
  const canvas = viewer.get("canvas");
  const registry = viewer.get("elementRegistry");
  for (const [state, marker] of Object.entries(MARKERS)) {
    for (const id of process[state]) {
      if (registry.get(id)) canvas.addMarker(id, marker);
    }
  }
  markFlows(registry, canvas, process);
  canvas.zoom("fit-viewport", "auto");
  describeMarks(process);
}

function openCalledProcess(event) {
  const current = select.value;
  const called = report.processes.find(
    (p) => p.called_from && p.called_from.process_key === current && p.called_from.element_id === event.element.id,
  );
  if (called) showProcess(called.process_key);
}

function statusBadgeOf(status) {
  const [text, tone] = STATUS[status] || [status, "muted"];
  return h("span", { class: `badge badge-${tone}`, dataset: { instanceStatus: status } }, text);
}

function renderSummary() {
  const facts = document.getElementById("summary");
  const dossier = report.dossier;
  const rows = [
    ["Mã quy trình", h("code", {}, `${report.definition.key} (phiên bản ${report.definition.version})`)],
    ["Trạng thái", statusBadgeOf(report.status)],
    ["Hồ sơ", dossier ? h("a", { href: `/ho-so/${encodeURIComponent(dossier.code)}` }, dossier.code) : "Không gắn với hồ sơ"],
    ["Trạng thái hồ sơ", dossier ? dossier.status.name : "—"],
    ["Thủ tục", dossier ? dossier.procedure_code : "—"],
    ["Hạn giải quyết", dossier ? dateTime(dossier.due_at) : "—"],
    ["Bắt đầu lúc", dateTime(report.created_at)],
    ["Cập nhật lúc", dateTime(report.updated_at)],
    ["Kết thúc lúc", dateTime(report.completed_at)],
  ];
  clear(facts).append(...rows.flatMap(([term, value]) => [h("dt", {}, term), h("dd", {}, value)]));
}

function valueCell(value) {
  if (value === null || typeof value !== "object") {
    return h("code", { class: "monitor-scalar" }, JSON.stringify(value));
  }
  if (value.truncated === true && typeof value.bytes === "number") {
    return h("span", { class: "muted" }, `Quá lớn để hiển thị (${new Intl.NumberFormat("vi-VN").format(value.bytes)} byte)`);
  }
  const size = Array.isArray(value) ? `${value.length} phần tử` : `${Object.keys(value).length} trường`;
  return h(
    "details",
    { class: "monitor-json" },
    h("summary", {}, `${Array.isArray(value) ? "Danh sách" : "Đối tượng"} (${size})`),
    h("pre", {}, JSON.stringify(value, null, 2)),
  );
}

function renderData() {
  const box = clear(document.getElementById("data"));
  const entries = Object.entries(report.data).sort(([a], [b]) => a.localeCompare(b));
  if (!entries.length) {
    box.append(empty("Quy trình chưa có dữ liệu."));
    return;
  }
  const rows = entries.map(([name, value]) => h("tr", {}, h("th", { scope: "row" }, h("code", {}, name)), h("td", {}, valueCell(value))));
  box.append(table("Các biến của quy trình (bấm để mở rộng đối tượng và danh sách)", ["Biến", "Giá trị"], rows, { id: "data-table" }));
}

function renderTimers() {
  const timers = clear(document.getElementById("timers"));
  if (!report.timers.length) {
    timers.append(empty("Không có hẹn giờ nào đang chờ."));
  } else {
    const rows = report.timers.map((timer) =>
      h(
        "tr",
        { dataset: { elementId: timer.element_id } },
        h("td", {}, elementLabel(timer.element_id, timer.process_key)),
        h("td", {}, TIMER_KINDS[timer.kind] || timer.kind),
        h("td", {}, dateTime(timer.due_at)),
        h("td", {}, timer.due ? h("span", { class: "badge badge-warn" }, "Đã đến hạn, chưa kích hoạt") : "Đang chờ"),
        h("td", {}, timer.process_key ? h("code", {}, timer.process_key) : "—"),
      ),
    );
    timers.append(table("Hẹn giờ đang chờ, sớm nhất trước", ["Phần tử", "Loại", "Đến hạn lúc", "Tình trạng", "Quy trình"], rows, { id: "timers-table" }));
  }
  const waits = clear(document.getElementById("waits"));
  if (!report.subscriptions.length) return;
  const rows = report.subscriptions.map((wait) =>
    h("tr", {}, h("td", {}, elementLabel(wait.element_id)), h("td", {}, h("code", {}, wait.message_name))),
  );
  waits.append(table("Sự kiện thông điệp đang chờ", ["Phần tử", "Thông điệp"], rows, { id: "waits-table" }));
}

function renderIncidents() {
  const box = clear(document.getElementById("incidents"));
  if (!report.incidents.length) {
    box.append(empty("Không có sự cố nào đang mở."));
    return;
  }
  const rows = report.incidents.map((incident) =>
    h(
      "tr",
      {},
      h("td", {}, dateTime(incident.created_at)),
      h("td", {}, elementLabel(incident.element_id)),
      h("td", {}, incident.kind),
      h("td", {}, String(incident.attempts)),
      h("td", {}, incident.message),
    ),
  );
  box.append(table("Sự cố đang mở", ["Thời điểm", "Phần tử", "Loại", "Số lần thử", "Nội dung"], rows, { id: "incidents-table" }));
}

function detailsText(entry) {
  const details = entry.details || {};
  const parts = [];
  if (details.lane) parts.push(`Vai trò: ${LANES[details.lane] || details.lane}`);
  if (details.fields?.length) parts.push(`Dữ liệu: ${details.fields.join(", ")}`);
  if (details.message) parts.push(`Thông điệp: ${details.message}`);
  if (details.version) parts.push(`Phiên bản ${details.version}`);
  if (details.error) parts.push(`Lỗi: ${details.error}`);
  if (details.reason) parts.push(`Lý do: ${details.reason}`);
  return parts.join(" · ") || "—";
}

function renderHistory() {
  const box = clear(document.getElementById("history"));
  const rows = report.history.map((entry) =>
    h(
      "tr",
      { dataset: { action: entry.action, elementId: entry.element_id || "" } },
      h("td", {}, dateTime(entry.at)),
      h("td", {}, elementLabel(entry.element_id)),
      h("td", {}, entry.actor),
      h("td", {}, ACTIONS[entry.action] || entry.action),
      h("td", {}, detailsText(entry)),
    ),
  );
  box.append(table("Nhật ký xử lý, cũ nhất trước", ["Thời điểm", "Phần tử", "Người thực hiện", "Thao tác", "Chi tiết"], rows, { id: "history-table" }));
}

function fail(error) {
  page.removeAttribute("aria-busy");
  const text =
    error.status === 403
      ? "Trang giám sát dành cho cán bộ của cơ quan giải quyết, chuyên viên phân tích nghiệp vụ và quản trị."
      : error.status === 404
        ? "Không tìm thấy quy trình này, hoặc bạn không có quyền xem."
        : `Không tải được quy trình: ${error.message}`;
  clear(message).append(h("p", { class: "notice notice-bad" }, text));
}

async function main() {
  if (!(await currentUser())) {
    requireLogin();
    return;
  }
  try {
    report = await api("GET", `instances/${encodeURIComponent(instanceId)}`);
    await loadDiagrams(report.processes);
  } catch (error) {
    fail(error);
    return;
  }
  clear(message);
  for (const section of page.querySelectorAll("[data-loaded]")) section.hidden = false;
  renderSummary();
  renderData();
  renderTimers();
  renderIncidents();
  renderHistory();
  viewer = new window.BpmnJS({ container: "#diagram" });
  viewer.get("eventBus").on("element.dblclick", openCalledProcess);
  fillSelector(report.processes);
  select.addEventListener("change", () => showProcess(select.value));
  await showProcess(report.processes[0].process_key);
  page.removeAttribute("aria-busy");
}

main();
