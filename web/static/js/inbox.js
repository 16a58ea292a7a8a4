// The officials' inbox: one tab per lane the user works in (with its count), the counts of overdue and due-soon
// dossiers, filters, and the queue (GET /api/v1/tasks), earliest due first. "Nhận xử lý" claims a task; "Xử lý"
// opens the task page. The state (lane, filters, page) lives in the URL, so a reload shows the same list.
import { api, ApiError, currentUser, requireLogin } from "./api.js";
import { busy, clear, dateTime, flash, h } from "./ui.js";
import {
  LANE_NAMES,
  deadlineBadge,
  deadlineClass,
  lanesOf,
  notForYou,
  takeMessage,
  taskStatusBadge,
} from "./officials.js";

const PER_PAGE = 20;
const DEADLINES = { overdue: "quá hạn", due_soon: "sắp đến hạn" };
const tabs = document.getElementById("lane-tabs");
const panel = document.getElementById("lane-panel");
const filters = document.getElementById("inbox-filters");
const body = document.querySelector("#queue tbody");
const status = document.getElementById("queue-status");
const state = { user: null, lanes: [], lane: null, deadline: "", procedure: "", page: 1, names: {} };

function readUrl() {
  const params = new URLSearchParams(window.location.search);
  state.lane = state.lanes.includes(params.get("lane")) ? params.get("lane") : state.lanes[0];
  state.deadline = DEADLINES[params.get("deadline")] ? params.get("deadline") : "";
  state.procedure = params.get("procedure_code") || "";
  state.page = Math.max(1, Number.parseInt(params.get("page") || "1", 10) || 1);
}

function writeUrl() {
  const params = new URLSearchParams();
  if (state.lane !== state.lanes[0]) params.set("lane", state.lane);
  if (state.deadline) params.set("deadline", state.deadline);
  if (state.procedure) params.set("procedure_code", state.procedure);
  if (state.page > 1) params.set("page", String(state.page));
  const query = params.toString();
  window.history.replaceState(null, "", query ? `?${query}` : window.location.pathname);
}

// -- lanes and counts ---------------------------------------------------------------------------------------
function drawTabs(counts) {
  const byLane = Object.fromEntries((counts?.lanes || []).map((row) => [row.lane, row]));
  clear(tabs);
  for (const lane of state.lanes) {
    const selected = lane === state.lane;
    const count = byLane[lane]?.total ?? 0;
    const tab = h(
      "button",
      {
        type: "button",
        role: "tab",
        id: `tab-${lane}`,
        "aria-selected": selected ? "true" : "false",
        "aria-controls": "lane-panel",
        tabindex: selected ? "0" : "-1",
        dataset: { lane },
        onclick: () => selectLane(lane),
        onkeydown: (event) => moveBetweenTabs(event, lane),
      },
      LANE_NAMES[lane],
      " ",
      h("span", { class: "tab-count" }, String(count)),
    );
    tabs.append(tab);
  }
  panel.setAttribute("aria-labelledby", `tab-${state.lane}`);
}

function moveBetweenTabs(event, lane) {
  const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
  const index = state.lanes.indexOf(lane);
  let next = null;
  if (step) next = state.lanes[(index + step + state.lanes.length) % state.lanes.length];
  if (event.key === "Home") next = state.lanes[0];
  if (event.key === "End") next = state.lanes[state.lanes.length - 1];
  if (!next) return;
  event.preventDefault();
  selectLane(next).then(() => document.getElementById(`tab-${next}`)?.focus());
}

async function selectLane(lane) {
  if (lane === state.lane) return;
  state.lane = lane;
  state.page = 1;
  await refresh();
}

function drawCounts(counts) {
  const row = (counts?.lanes || []).find((item) => item.lane === state.lane) || { total: 0, overdue: 0, due_soon: 0 };
  const tile = (name, value, tone, deadline) => {
    const pressed = deadline !== null && state.deadline === deadline;
    const content = [h("span", { class: "count-value" }, String(value)), " ", h("span", { class: "count-name" }, name)];
    if (deadline === null) return h("li", { class: `count-tile count-${tone}` }, ...content);
    return h(
      "li",
      { class: `count-tile count-${tone}` },
      h(
        "button",
        {
          type: "button",
          class: "count-button",
          "aria-pressed": pressed ? "true" : "false",
          title: pressed ? "Bỏ lọc" : `Chỉ xem hồ sơ ${name.toLowerCase()}`,
          onclick: () => applyFilters({ deadline: pressed ? "" : deadline }),
        },
        ...content,
      ),
    );
  };
  clear(document.getElementById("inbox-counts")).append(
    tile("Chờ xử lý", row.total, "info", null),
    tile("Quá hạn", row.overdue, "bad", "overdue"),
    tile("Sắp đến hạn", row.due_soon, "warn", "due_soon"),
  );
}

// -- the queue ----------------------------------------------------------------------------------------------
function claimedCell(task) {
  if (!task.claimed_by) return h("span", { class: "muted" }, "Chưa có người nhận");
  if (task.claimed_by === state.user.username) return h("span", {}, h("strong", {}, "Bạn"), ` (${task.claimed_by})`);
  return task.claimed_by;
}

function actionsCell(task) {
  const hidden = (text) => h("span", { class: "visually-hidden" }, text);
  const open = h(
    "a",
    { class: "button button-secondary", href: `/can-bo/nhiem-vu/${encodeURIComponent(task.id)}` },
    "Xử lý",
    hidden(` hồ sơ ${task.dossier_code}`),
  );
  if (task.claimed_by) return h("div", { class: "row-actions" }, open);
  const claim = h("button", { type: "button" }, "Nhận xử lý", hidden(` hồ sơ ${task.dossier_code}`));
  claim.addEventListener("click", () => busy(claim, () => claimTask(task)));
  return h("div", { class: "row-actions" }, claim, open);
}

function dueCell(task) {
  const badge = deadlineBadge(task);
  const when = task.due_at ? h("span", { class: "due-at" }, dateTime(task.due_at)) : h("span", { class: "muted" }, "Chưa hẹn");
  return h("div", { class: "due" }, when, badge ? [h("br"), badge] : null);
}

function drawRows(items) {
  clear(body);
  if (!items.length) {
    const text = state.deadline || state.procedure ? "Không có hồ sơ nào khớp bộ lọc." : "Không có hồ sơ nào đang chờ xử lý.";
    body.append(h("tr", {}, h("td", { colspan: "7", class: "muted" }, text)));
    return;
  }
  for (const task of items) {
    body.append(
      h(
        "tr",
        { class: deadlineClass(task), dataset: { taskId: task.id, dossierCode: task.dossier_code } },
        h("td", {}, h("strong", { class: "dossier-code" }, task.dossier_code)),
        h("td", {}, h("span", { class: "procedure-name", title: state.names[task.procedure_code] || null }, state.names[task.procedure_code] || task.procedure_code), h("small", { class: "muted" }, task.procedure_code)),
        h("td", {}, task.title || task.element_id),
        h("td", {}, taskStatusBadge(task)),
        h("td", {}, dueCell(task)),
        h("td", {}, claimedCell(task)),
        h("td", {}, actionsCell(task)),
      ),
    );
  }
}

function drawPager(page) {
  const pager = document.getElementById("pager");
  const pages = Math.max(1, Math.ceil(page.total / page.per_page));
  pager.hidden = pages <= 1;
  if (pages <= 1) return;
  const go = (number) => {
    state.page = number;
    refresh();
  };
  clear(pager).append(
    h("button", { type: "button", class: "button-secondary", disabled: page.page <= 1, onclick: () => go(page.page - 1) }, "Trang trước"),
    h("span", {}, `Trang ${page.page} / ${pages}`),
    h("button", { type: "button", class: "button-secondary", disabled: page.page >= pages, onclick: () => go(page.page + 1) }, "Trang sau"),
  );
}

function describe(total) {
  const parts = [`${LANE_NAMES[state.lane]}: ${total} hồ sơ`];
  if (state.deadline) parts.push(DEADLINES[state.deadline]);
  if (state.procedure) parts.push(`thủ tục ${state.names[state.procedure] || state.procedure}`);
  return parts.join(", ");
}

async function refresh() {
  writeUrl();
  document.getElementById("lane-heading").textContent = `Hồ sơ chờ xử lý — ${LANE_NAMES[state.lane]}`;
  status.textContent = "Đang tải danh sách…";
  panel.setAttribute("aria-busy", "true");
  const common = { procedure_code: state.procedure };
  try {
    const [counts, queue] = await Promise.all([
      api("GET", "tasks/counts", { query: common }),
      api("GET", "tasks", { query: { ...common, lane: state.lane, deadline: state.deadline, page: state.page, per_page: PER_PAGE } }),
    ]);
    if (!queue.items.length && state.page > 1 && queue.page.total) {
      state.page = Math.ceil(queue.page.total / PER_PAGE);
      return refresh();
    }
    drawTabs(counts);
    drawCounts(counts);
    drawRows(queue.items);
    drawPager(queue.page);
    document.getElementById("queue-caption").textContent = `Danh sách hồ sơ chờ xử lý — ${describe(queue.page.total)}`;
    status.textContent = describe(queue.page.total);
  } catch (error) {
    status.textContent = "";
    flash(error instanceof ApiError ? `Không tải được danh sách hồ sơ: ${error.message}` : String(error), "bad");
  } finally {
    panel.removeAttribute("aria-busy");
  }
  return undefined;
}

async function claimTask(task) {
  try {
    await api("POST", `tasks/${encodeURIComponent(task.id)}/claim`);
    flash(`Bạn đã nhận xử lý hồ sơ ${task.dossier_code} (${task.title || task.element_id}).`, "good");
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    if (error.status === 409) {
      const who = error.problem.claimed_by ? ` (${error.problem.claimed_by})` : "";
      flash(`Hồ sơ ${task.dossier_code} vừa được người khác${who} nhận xử lý. Danh sách đã được cập nhật.`, "warn");
    } else if (error.status === 404) {
      flash(`Công việc của hồ sơ ${task.dossier_code} không còn chờ xử lý. Danh sách đã được cập nhật.`, "warn");
    } else {
      flash(`Không nhận xử lý được hồ sơ ${task.dossier_code}: ${error.message}`, "bad");
    }
  }
  await refresh();
}

// -- filters ------------------------------------------------------------------------------------------------
function applyFilters(changes) {
  Object.assign(state, changes, { page: 1 });
  filters.deadline.value = state.deadline;
  filters.procedure_code.value = state.procedure;
  return refresh();
}

async function loadProcedures() {
  const query = { per_page: 200, agency_code: state.user.roles.includes("admin") ? undefined : state.user.agency_code };
  try {
    const found = await api("GET", "procedures", { query });
    for (const procedure of found.items) {
      state.names[procedure.code] = procedure.name;
      filters.procedure_code.append(h("option", { value: procedure.code }, `${procedure.code} — ${procedure.name}`));
    }
  } catch (error) {
    // Without the catalogue the filter still lists nothing and the queue shows the codes.
  }
  if (state.procedure && !state.names[state.procedure]) {
    filters.procedure_code.append(h("option", { value: state.procedure }, state.procedure));
  }
}

filters.addEventListener("submit", (event) => {
  event.preventDefault();
  applyFilters({ deadline: filters.deadline.value, procedure: filters.procedure_code.value });
});
document.getElementById("filter-reset").addEventListener("click", () => applyFilters({ deadline: "", procedure: "" }));

async function main() {
  const user = await currentUser();
  if (!user) {
    requireLogin();
    return;
  }
  state.user = user;
  state.lanes = lanesOf(user);
  document.getElementById("inbox-loading").hidden = true;
  if (!state.lanes.length) {
    const denied = document.getElementById("inbox-denied");
    denied.append(notForYou(user));
    denied.hidden = false;
    return;
  }
  readUrl();
  await loadProcedures();
  filters.deadline.value = state.deadline;
  filters.procedure_code.value = state.procedure;
  document.getElementById("inbox").hidden = false;
  const message = takeMessage();
  if (message) flash(message, "good");
  await refresh();
}

main();
