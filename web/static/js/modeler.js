// The analysts' modeler: bpmn-js (served from /vendor, global BpmnJS) opens a deployed version, the analyst's
// draft or a new process; the toolbar saves the draft (PUT /definitions/{key}/draft), downloads the XML, lints
// at a level (POST /definitions/lint?level=N) with the problems drawn on the diagram and listed, and deploys
// (POST /definitions). The checks are the server's: this page only shows what the API answers.
import { api, currentUser, hasRole, requireLogin } from "./api.js";
import { busy, clear, dateTime, h } from "./ui.js";
import { vietnamese } from "./bpmn-vi.js";
import { PropertiesPanel } from "./properties.js";
import { spiffModdle } from "./spiff-moddle.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(window.location.search);
const problemsBox = $("problems");
const statusLine = $("modeler-status");
const levelSelect = $("lint-level");

const state = { key: params.get("key"), version: null, source: null, marked: [], checked: false };
let modeler;

// -- opening -------------------------------------------------------------------------------------------
function newProcessXml() {
  const id = `quy_trinh_moi_${Math.random().toString(36).slice(2, 6)}`;
  return `<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:bpmndi="http://www.omg.org/spec/BPMN/20100524/DI" xmlns:dc="http://www.omg.org/spec/DD/20100524/DC" xmlns:di="http://www.omg.org/spec/DD/20100524/DI" xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" id="Definitions_${id}" targetNamespace="http://motcua.gov.vn/bpmn">
  <bpmn:collaboration id="Collaboration_${id}">
    <bpmn:participant id="Participant_${id}" name="Quy trình mới" processRef="${id}" />
  </bpmn:collaboration>
  <bpmn:process id="${id}" name="Quy trình mới" isExecutable="true">
    <bpmn:laneSet id="LaneSet_${id}">
      <bpmn:lane id="Lane_applicant" name="applicant"><bpmn:flowNodeRef>start_${id}</bpmn:flowNodeRef></bpmn:lane>
      <bpmn:lane id="Lane_reception" name="reception" />
    </bpmn:laneSet>
    <bpmn:startEvent id="start_${id}" name="Bắt đầu" />
  </bpmn:process>
  <bpmndi:BPMNDiagram id="BPMNDiagram_${id}">
    <bpmndi:BPMNPlane id="BPMNPlane_${id}" bpmnElement="Collaboration_${id}">
      <bpmndi:BPMNShape id="Participant_${id}_di" bpmnElement="Participant_${id}" isHorizontal="true"><dc:Bounds x="150" y="60" width="900" height="300" /></bpmndi:BPMNShape>
      <bpmndi:BPMNShape id="Lane_applicant_di" bpmnElement="Lane_applicant" isHorizontal="true"><dc:Bounds x="180" y="60" width="870" height="150" /></bpmndi:BPMNShape>
      <bpmndi:BPMNShape id="Lane_reception_di" bpmnElement="Lane_reception" isHorizontal="true"><dc:Bounds x="180" y="210" width="870" height="150" /></bpmndi:BPMNShape>
      <bpmndi:BPMNShape id="start_${id}_di" bpmnElement="start_${id}"><dc:Bounds x="242" y="117" width="36" height="36" /></bpmndi:BPMNShape>
    </bpmndi:BPMNPlane>
  </bpmndi:BPMNDiagram>
</bpmn:definitions>
`;
}

async function latestVersion(key) {
  const versions = await api("GET", "definitions", { query: { key } });
  if (!versions.length) throw new Error(`Chưa có phiên bản nào của ${key}.`);
  return versions[0].version;
}

/** What to open, from the address: {xml, source, label}. */
async function document_() {
  if (params.get("new")) return { xml: newProcessXml(), source: "new", label: "Quy trình mới, chưa lưu." };
  if (!state.key) return null;
  const path = `definitions/${encodeURIComponent(state.key)}`;
  if (params.get("draft")) {
    const draft = await api("GET", `${path}/draft`);
    state.version = draft.base_version;
    const from = draft.base_version ? `soạn từ phiên bản ${draft.base_version}` : "quy trình mới";
    return { xml: draft.xml, source: "draft", label: `Bản nháp của bạn (${from}), lưu lúc ${dateTime(draft.updated_at)}.` };
  }
  state.version = Number(params.get("version")) || (await latestVersion(state.key));
  const xml = await api("GET", `${path}/versions/${state.version}/xml`);
  return { xml, source: "version", label: `Phiên bản ${state.version} đã triển khai của ${state.key}.` };
}

async function offerDraft() {
  if (state.source !== "version") return;
  const drafts = await api("GET", "definitions/drafts");
  const draft = drafts.find((item) => item.key === state.key);
  if (!draft) return;
  const link = h("a", { href: `?${new URLSearchParams({ key: state.key, draft: 1 })}` }, "Mở bản nháp");
  $("draft-offer").append(
    h("p", { class: "notice notice-warn" }, `Bạn có một bản nháp của quy trình này, lưu lúc ${dateTime(draft.updated_at)}. `, link),
  );
}

// -- the model -------------------------------------------------------------------------------------------
function mainProcess() {
  const processes = modeler.getDefinitions().rootElements.filter((element) => element.$type === "bpmn:Process");
  return processes.find((process) => process.isExecutable) || processes[0];
}

function processKey() {
  return mainProcess()?.id || state.key || "quy_trinh";
}

async function currentXml() {
  const { xml } = await modeler.saveXML({ format: true });
  return xml;
}

async function bpmnUpload() {
  const form = new FormData();
  form.append("file", new Blob([await currentXml()], { type: "application/xml" }), `${processKey()}.bpmn`);
  return form;
}

function showTitle() {
  $("modeler-title").textContent = `Soạn thảo: ${mainProcess()?.name || processKey()}`;
}

function say(message, tone = "info") {
  statusLine.textContent = message;
  statusLine.className = `modeler-status modeler-status-${tone}`;
}

// -- problems on the diagram and in the list ---------------------------------------------------------------
/** The diagram element a problem is about: the element itself, or the pool of a process. */
function elementFor(id) {
  if (!id) return null;
  const registry = modeler.get("elementRegistry");
  const found = registry.get(id);
  if (found && !found.labelTarget && found.parent) return found;
  return registry.find((element) => element.type === "bpmn:Participant" && element.businessObject.processRef?.id === id) || null;
}

/**
 * Elements a problem names: where it points and the ids it quotes ('submit_online' has no formKey). When it
 * points at a whole process (its pool) and quotes an element, the quoted element comes first: that is where
 * the analyst has to look.
 */
function targetsOf(problem) {
  const registry = modeler.get("elementRegistry");
  const quoted = [];
  for (const match of (problem.message || "").matchAll(/'([A-Za-z_][\w.-]*)'/g)) {
    const element = registry.get(match[1]);
    if (element && !element.labelTarget && element.parent && !quoted.includes(element)) quoted.push(element);
  }
  const pointed = elementFor(problem.element_id);
  if (!pointed) return quoted;
  const rest = quoted.filter((element) => element !== pointed);
  return pointed.type === "bpmn:Participant" ? [...rest, pointed] : [pointed, ...rest];
}

/** Pools are large: only their border turns red; other elements are filled too. */
function markerOf(element) {
  return element.type === "bpmn:Participant" ? "lint-error-pool" : "lint-error";
}

function clearMarks() {
  const canvas = modeler.get("canvas");
  for (const element of state.marked) {
    try {
      canvas.removeMarker(element, markerOf(element));
    } catch (error) {
      // the element was deleted since: nothing left to unmark
    }
  }
  modeler.get("overlays").remove({ type: "lint" });
  state.marked = [];
}

function markProblems(problems) {
  clearMarks();
  const byElement = new Map();
  for (const problem of problems) {
    for (const element of problem.targets) {
      if (!byElement.has(element)) byElement.set(element, []);
      byElement.get(element).push(problem.message);
    }
  }
  const canvas = modeler.get("canvas");
  for (const [element, messages] of byElement) {
    canvas.addMarker(element, markerOf(element));
    const badge = h("div", { class: "lint-badge", title: messages.join("\n"), "aria-hidden": "true" }, `! ${messages.length}`);
    // A pool's badge goes by its name, at the left: its right end is often out of view.
    const position = element.type === "bpmn:Participant" ? { top: -14, left: 8 } : { top: -14, right: 14 };
    modeler.get("overlays").add(element, "lint", { position, html: badge });
    state.marked.push(element);
  }
}

function showElement(element) {
  modeler.get("selection").select(element);
  modeler.get("canvas").scrollToElement(element, { top: 120, bottom: 120, left: 120, right: 120 });
}

function problemItem(problem) {
  const where = [problem.element_id, problem.line ? `dòng ${problem.line} của XML` : null].filter(Boolean).join(", ");
  const text = [h("span", { class: "problem-message" }, problem.message), where ? h("span", { class: "problem-where" }, ` (${where})`) : null];
  const target = problem.targets[0];
  if (!target) return h("li", { class: "problem" }, ...text, h("span", { class: "muted" }, " — không có trên sơ đồ này"));
  const button = h("button", { type: "button", class: "problem-link", dataset: { elementId: target.id } }, ...text);
  button.addEventListener("click", () => showElement(target));
  return h("li", { class: "problem" }, button);
}

/** Show problems (from lint or a refused deployment): markers, badges and a list that selects each element. */
function showProblems(problems, heading) {
  const located = problems.map((problem) => ({ ...problem, targets: targetsOf(problem) }));
  markProblems(located);
  state.checked = true;
  clear(problemsBox).append(
    h("p", { class: "notice notice-bad", role: "alert" }, heading),
    h("ol", { class: "problem-list", id: "problem-list" }, located.map(problemItem)),
  );
}

function showSuccess(message) {
  clearMarks();
  clear(problemsBox).append(h("p", { class: "notice notice-good", role: "status" }, message));
}

function levelText() {
  return levelSelect.value ? `mức độ ${levelSelect.value}` : "cấu trúc (không kiểm tra mức độ)";
}

// -- toolbar actions ---------------------------------------------------------------------------------------
async function lint() {
  const result = await api("POST", "definitions/lint", { body: await bpmnUpload(), query: { level: levelSelect.value } });
  if (!result.problems.length) {
    showSuccess(`Không phát hiện vấn đề nào khi kiểm tra ${levelText()}.`);
    say("Đã kiểm tra: không có vấn đề.", "good");
    return;
  }
  showProblems(result.problems, `Kiểm tra ${levelText()}: ${result.problems.length} vấn đề. Chọn một vấn đề để xem phần tử trên sơ đồ.`);
  say(`Đã kiểm tra: ${result.problems.length} vấn đề.`, "bad");
}

function refusalProblems(error) {
  const problem = error.problem || {};
  if (Array.isArray(problem.problems) && problem.problems.length) return problem.problems;
  const fields = Object.entries(error.errors || {}).map(([field, messages]) => ({
    element_id: null,
    line: null,
    message: `${field}: ${[].concat(messages).join(" ")}`,
  }));
  const main = { file: problem.file, line: problem.line, element_id: problem.element_id, message: problem.detail || error.message };
  return fields.length ? fields : [main];
}

async function deploy() {
  try {
    const deployed = await api("POST", "definitions", { body: await bpmnUpload() });
    const lines = deployed.map((item) =>
      item.created
        ? `Đã triển khai ${item.key} phiên bản ${item.version} (mã kiểm tra ${item.sha256.slice(0, 12)}…).`
        : `${item.key}: nội dung giống phiên bản ${item.version} đã có, không tạo phiên bản mới.`,
    );
    showSuccess(lines.join(" "));
    say(lines[0], "good");
    const head = deployed.find((item) => item.key === processKey()) || deployed[0];
    if (head) {
      state.key = head.key;
      state.version = head.version;
      window.history.replaceState(null, "", `?${new URLSearchParams({ key: head.key, version: head.version })}`);
      $("modeler-source").textContent = `Phiên bản ${head.version} đã triển khai của ${head.key}.`;
    }
  } catch (error) {
    if (error.status !== 422) throw error;
    const problems = refusalProblems(error);
    const heading = `Không triển khai được: máy chủ từ chối quy trình (${problems.length} vấn đề).`;
    showProblems(problems, `${heading} Chọn một vấn đề để xem phần tử trên sơ đồ.`);
    say("Triển khai bị từ chối.", "bad");
  }
}

async function saveDraft() {
  const key = processKey();
  try {
    const saved = await api("PUT", `definitions/${encodeURIComponent(key)}/draft`, {
      body: { xml: await currentXml(), base_version: state.key === key ? state.version : null },
    });
    state.key = key;
    window.history.replaceState(null, "", `?${new URLSearchParams({ key, draft: 1 })}`);
    $("modeler-source").textContent = `Bản nháp của bạn, lưu lúc ${dateTime(saved.updated_at)}.`;
    say(`Đã lưu bản nháp ${key} lúc ${dateTime(saved.updated_at)}.`, "good");
  } catch (error) {
    if (error.status !== 422) throw error;
    const problems = refusalProblems(error);
    showProblems(problems, `Không lưu được bản nháp: máy chủ từ chối nội dung (${problems.length} vấn đề).`);
    say("Không lưu được bản nháp.", "bad");
  }
}

async function download() {
  const url = URL.createObjectURL(new Blob([await currentXml()], { type: "application/xml" }));
  const link = h("a", { href: url, download: `${processKey()}.bpmn`, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
  say(`Đã tải xuống ${processKey()}.bpmn.`, "good");
}

function wire(id, action) {
  const button = $(id);
  button.addEventListener("click", () =>
    busy(button, async () => {
      try {
        await action();
      } catch (error) {
        say(`Không thực hiện được: ${error.message}`, "bad");
      }
    }),
  );
}

function wireToolbar() {
  wire("save-draft", saveDraft);
  wire("download", download);
  wire("lint", lint);
  wire("deploy", deploy);
  const commandStack = modeler.get("commandStack");
  $("undo").addEventListener("click", () => commandStack.undo());
  $("redo").addEventListener("click", () => commandStack.redo());
  $("fit").addEventListener("click", fitDiagram);
  const canvas = modeler.get("canvas");
  $("zoom-in").addEventListener("click", () => canvas.zoom(canvas.zoom() * 1.25));
  $("zoom-out").addEventListener("click", () => canvas.zoom(canvas.zoom() / 1.25));
  const refresh = () => {
    $("undo").disabled = !commandStack.canUndo();
    $("redo").disabled = !commandStack.canRedo();
  };
  modeler.get("eventBus").on("commandStack.changed", () => {
    refresh();
    showTitle();
    say("Có thay đổi chưa lưu.", "info");
    if (state.checked && problemsBox.querySelector(".problem-list")) {
      problemsBox.querySelector(".notice")?.append(" (Sơ đồ đã thay đổi sau lần kiểm tra này: bấm “Kiểm tra” lại.)");
    }
    state.checked = false;
  });
  for (const id of ["save-draft", "download", "fit", "zoom-in", "zoom-out", "lint", "deploy"]) $(id).disabled = false;
  refresh();
}

// -- start -------------------------------------------------------------------------------------------------
async function extras() {
  const [operators, definitions] = await Promise.all([
    api("GET", "definitions/operators").then((body) => body.operators).catch(() => []),
    api("GET", "definitions").catch(() => []),
  ]);
  return { operators, processKeys: [...new Set(definitions.map((definition) => definition.key))] };
}

function levelFromKey(key) {
  const match = /_l([1-4])$/.exec(key || "");
  return match ? match[1] : "";
}

/** Fit the whole diagram in view, below the palette (drawn as one row along the top, see site.css). */
function fitDiagram() {
  const canvas = modeler.get("canvas");
  const { inner, outer } = canvas.viewbox();
  if (!inner.width || !inner.height) return;
  const top = 76;
  const pad = 16;
  const scale = Math.min((outer.width - 2 * pad) / inner.width, (outer.height - top - pad) / inner.height, 1.2);
  const width = outer.width / scale;
  const height = outer.height / scale;
  canvas.viewbox({ x: inner.x - (width - inner.width) / 2, y: inner.y - top / scale, width, height });
}

function describeCanvas() {
  const svg = $("canvas").querySelector("svg");
  svg.setAttribute("role", "application");
  svg.setAttribute("aria-label", "Sơ đồ quy trình BPMN");
  svg.setAttribute("aria-describedby", "canvas-help");
}

async function main() {
  const user = await currentUser();
  if (!user) return requireLogin();
  const page = $("modeler-page");
  if (!hasRole(user, "analyst")) {
    clear(page).append(h("p", { class: "notice notice-warn", role: "alert" }, "Trang này dành cho cán bộ phân tích nghiệp vụ và quản trị hệ thống."));
    page.removeAttribute("aria-busy");
    return undefined;
  }
  modeler = new window.BpmnJS({
    container: "#canvas",
    moddleExtensions: { spiffworkflow: spiffModdle },
    additionalModules: [vietnamese],
  });
  describeCanvas();
  try {
    const [opened, options] = await Promise.all([document_(), extras()]);
    if (!opened) {
      const list = h("a", { href: "/mo-hinh" }, "Chọn trong danh sách quy trình");
      const fresh = h("a", { href: "?new=1" }, "tạo quy trình mới");
      clear(page).append(h("p", { class: "notice" }, "Chưa chọn quy trình. ", list, " hoặc ", fresh, "."));
      return undefined;
    }
    state.source = opened.source;
    new PropertiesPanel(modeler, $("properties"), options);
    const { warnings } = await modeler.importXML(opened.xml);
    fitDiagram();
    showTitle();
    $("modeler-source").textContent = opened.label;
    levelSelect.value = levelFromKey(processKey());
    wireToolbar();
    if (warnings.length) say(`Sơ đồ mở được, với ${warnings.length} cảnh báo khi đọc XML.`, "info");
    await offerDraft();
  } catch (error) {
    say(`Không mở được quy trình: ${error.message}`, "bad");
  } finally {
    page.removeAttribute("aria-busy");
  }
  return undefined;
}

main();
