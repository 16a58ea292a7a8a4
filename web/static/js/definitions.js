// The analysts' list of process definitions: every deployed version per process key (GET /definitions), the
// analyst's drafts in progress (GET /definitions/drafts), and the ways into the modeler.
import { api, currentUser, hasRole, requireLogin } from "./api.js";
import { busy, clear, dateTime, flash, h } from "./ui.js";

const EDITOR = "/mo-hinh/soan-thao";
const page = document.getElementById("definitions-page");
const definitionsBox = document.getElementById("definitions");
const draftsBox = document.getElementById("drafts");

function editorLink(params) {
  return `${EDITOR}?${new URLSearchParams(params)}`;
}

function checksum(sha256) {
  return h("code", { title: `SHA-256: ${sha256}` }, `${sha256.slice(0, 12)}…`);
}

function versionRow(definition, latest) {
  const { key, version } = definition;
  return h(
    "tr",
    { dataset: { key, version } },
    h("td", {}, `Phiên bản ${version} `, latest ? h("span", { class: "badge badge-good" }, "mới nhất") : null),
    h("td", {}, checksum(definition.sha256)),
    h("td", {}, dateTime(definition.deployed_at)),
    h("td", {}, definition.deployed_by || "—"),
    h(
      "td",
      {},
      h(
        "a",
        { href: editorLink({ key, version }), "aria-label": `Mở trong trình soạn thảo: ${key} phiên bản ${version}` },
        "Mở trong trình soạn thảo",
      ),
    ),
  );
}

function definitionCard(key, versions) {
  const title = versions[0].name || key;
  return h(
    "section",
    { class: "card definition-card", "aria-labelledby": `def-${key}`, dataset: { key } },
    h("h3", { id: `def-${key}` }, title),
    h("p", { class: "muted" }, "Mã quy trình: ", h("code", {}, key), ` · ${versions.length} phiên bản`),
    h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        {},
        h("caption", { class: "visually-hidden-label" }, `Các phiên bản của ${key}`),
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            ["Phiên bản", "Mã kiểm tra", "Triển khai lúc", "Người triển khai", "Thao tác"].map((text) =>
              h("th", { scope: "col" }, text),
            ),
          ),
        ),
        h("tbody", {}, versions.map((definition, index) => versionRow(definition, index === 0))),
      ),
    ),
  );
}

function renderDefinitions(definitions) {
  clear(definitionsBox);
  if (!definitions.length) {
    definitionsBox.append(h("p", { class: "muted" }, "Chưa có quy trình nào được triển khai."));
    return;
  }
  const byKey = new Map();
  for (const definition of definitions) {
    if (!byKey.has(definition.key)) byKey.set(definition.key, []);
    byKey.get(definition.key).push(definition); // the API lists the newest version first per key
  }
  for (const [key, versions] of byKey) definitionsBox.append(definitionCard(key, versions));
}

async function deleteDraft(draft, button) {
  if (!window.confirm(`Xoá bản nháp của quy trình ${draft.key}? Không thể khôi phục.`)) return;
  await busy(button, async () => {
    try {
      await api("DELETE", `definitions/${encodeURIComponent(draft.key)}/draft`);
      flash(`Đã xoá bản nháp của ${draft.key}.`, "good");
      await loadDrafts();
    } catch (error) {
      flash(`Không xoá được bản nháp: ${error.message}`, "bad");
    }
  });
}

function draftRow(draft) {
  const remove = h("button", { type: "button", class: "button-secondary" }, "Xoá bản nháp");
  remove.setAttribute("aria-label", `Xoá bản nháp: ${draft.key}`);
  remove.addEventListener("click", () => deleteDraft(draft, remove));
  return h(
    "tr",
    { dataset: { key: draft.key } },
    h("td", {}, h("code", {}, draft.key)),
    h("td", {}, draft.name || "—"),
    h("td", {}, draft.base_version ? `Phiên bản ${draft.base_version}` : "Quy trình mới"),
    h("td", {}, dateTime(draft.updated_at)),
    h(
      "td",
      { class: "modeler-row-actions" },
      h(
        "a",
        { href: editorLink({ key: draft.key, draft: 1 }), "aria-label": `Tiếp tục soạn: ${draft.key}` },
        "Tiếp tục soạn",
      ),
      " ",
      remove,
    ),
  );
}

async function loadDrafts() {
  const drafts = await api("GET", "definitions/drafts");
  clear(draftsBox);
  if (!drafts.length) {
    draftsBox.append(h("p", { class: "muted" }, "Bạn chưa có bản nháp nào."));
    return;
  }
  draftsBox.append(
    h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        { id: "drafts-table" },
        h("caption", { class: "visually-hidden-label" }, "Bản nháp của bạn, lưu gần đây nhất trước"),
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            ["Mã quy trình", "Tên", "Soạn từ", "Lưu lúc", "Thao tác"].map((text) => h("th", { scope: "col" }, text)),
          ),
        ),
        h("tbody", {}, drafts.map(draftRow)),
      ),
    ),
  );
}

async function main() {
  const user = await currentUser();
  if (!user) {
    requireLogin();
    return;
  }
  if (!hasRole(user, "analyst")) {
    clear(page).append(
      h("p", { class: "notice notice-warn", role: "alert" }, "Trang này dành cho cán bộ phân tích nghiệp vụ và quản trị hệ thống."),
    );
    page.removeAttribute("aria-busy");
    return;
  }
  try {
    const [definitions] = await Promise.all([api("GET", "definitions"), loadDrafts()]);
    renderDefinitions(definitions);
  } catch (error) {
    flash(`Không tải được danh sách quy trình: ${error.message}`, "bad");
  } finally {
    page.removeAttribute("aria-busy");
  }
}

main();
