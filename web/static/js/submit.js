// Online submission (level 3 and 4): one form, one "Nộp hồ sơ" button. The page drives the API in order:
//  1. POST /dossiers (multipart: the JSON `payload` with the applicant, the declaration `form_data`, the delivery
//     method, and the files as `attachments`). The API checks the declaration against the form's JSON Schema
//     before it creates anything, and walks the applicant's opening tasks with it.
//  2. If the created dossier still waits for the applicant's declaration (tasks `information`, `submit_online`),
//     the page completes them through /tasks/{id}/complete with the same form_data.
// A refusal (422) shows every message under its field and keeps everything typed. Once a dossier exists, its
// code is kept in sessionStorage: fixing the declaration and pressing the button again continues that dossier
// and never creates a second one; the POST carries an Idempotency-Key, so a retry after a lost answer does not
// either.
import { api, ApiError, currentUser, requireLogin } from "./api.js";
import { classBadge, levelBadge } from "./catalogue.js";
import { friendlyError, readForm, renderForm } from "./forms.js";
import { busy, clear, clearErrors, h, showErrors } from "./ui.js";

const code = document.body.dataset.code;
const form = document.getElementById("submit-form");
const PENDING_KEY = `motcua.submit.${code}`;
const FLASH_KEY = "motcua.flash"; // read by dossier.js
const SUBMISSION_KEY = `motcua.submit-key.${code}`;
const DECLARING = new Set(["procedure_information", "dossier_submission"]);
const APPLICANT_FIELDS = ["name", "id_number", "address", "phone", "email"];
const DELIVERY = {
  online: ["Nhận kết quả trực tuyến", "Bản điện tử, tải về tại trang hồ sơ của bạn."],
  desk: ["Nhận trực tiếp tại Bộ phận một cửa", "Mang theo giấy tờ tùy thân khi đến nhận."],
  post: ["Nhận qua dịch vụ bưu chính công ích", "Gửi đến địa chỉ liên hệ ở trên; cước phí được thanh toán cùng phí, lệ phí."],
};
const state = { procedure: null, declaration: null };

const enc = encodeURIComponent;

function pending() {
  try {
    return JSON.parse(sessionStorage.getItem(PENDING_KEY) || "null");
  } catch (error) {
    return null;
  }
}

function submissionKey() {
  let key = sessionStorage.getItem(SUBMISSION_KEY);
  if (!key) {
    const random = crypto.getRandomValues(new Uint8Array(16)); // randomUUID needs HTTPS; this does not
    key = `web-${Array.from(random, (byte) => byte.toString(16).padStart(2, "0")).join("")}`;
    sessionStorage.setItem(SUBMISSION_KEY, key);
  }
  return key;
}

function progress(text) {
  document.getElementById("submit-progress").textContent = text;
}

function blocked(...content) {
  clear(document.getElementById("submit-blocked")).append(...content);
  document.getElementById("submit-blocked").hidden = false;
}

// -- building the page --------------------------------------------------------------------------------------
function intro(procedure) {
  clear(document.getElementById("submit-intro")).append(
    h("p", {}, h("strong", {}, procedure.name), ` (mã ${procedure.code})`),
    h("div", { class: "badges" }, levelBadge(procedure.level), classBadge(procedure.decree_42_class)),
    h("p", {}, "Cơ quan tiếp nhận: ", procedure.agency?.name || "—"),
  );
}

function declarationFormId(procedure) {
  return (procedure.components || []).find((component) => component.form)?.form || null;
}

function attachHints(procedure) {
  const documents = (procedure.components || []).filter((component) => !component.form);
  if (!documents.length) return;
  clear(document.getElementById("components-to-attach")).append(
    h("p", {}, "Bản chụp, bản quét các giấy tờ sau:"),
    h("ul", { class: "plain" }, documents.map((c) => h("li", {}, c.name, " ", h("span", { class: "muted" }, c.required ? "(bắt buộc)" : "(nếu có)")))),
  );
}

function quantities(procedure) {
  const units = new Set((procedure.fees || []).map((fee) => fee.unit));
  document.getElementById("pages-field").hidden = !units.has("per_page");
  document.getElementById("copies-field").hidden = !units.has("per_copy");
  document.getElementById("quantity-section").hidden = !units.has("per_page") && !units.has("per_copy");
}

function deliveryOptions(procedure) {
  if (procedure.level !== 4) return;
  const list = clear(document.getElementById("delivery-options"));
  for (const method of procedure.delivery_methods || []) {
    const [title, hint] = DELIVERY[method] || [method, ""];
    const id = `delivery-${method}`;
    list.append(
      h(
        "li",
        {},
        h("input", { type: "radio", id, name: "delivery_method", value: method, "aria-describedby": `${id}-hint` }),
        " ",
        h("label", { for: id }, title),
        h("p", { class: "hint", id: `${id}-hint` }, hint),
      ),
    );
  }
  list.addEventListener("change", addressNeeded);
  document.getElementById("delivery-section").hidden = false;
}

function addressNeeded() {
  const post = form.querySelector("input[name=delivery_method]:checked")?.value === "post";
  document.getElementById("address-mark").hidden = !post;
  form.elements["applicant.address"].setAttribute("aria-required", post ? "true" : "false");
  return post;
}

function showFiles() {
  const list = clear(document.getElementById("chosen-files"));
  for (const file of form.elements.attachments.files) {
    list.append(h("li", {}, `${file.name} (${Math.max(1, Math.round(file.size / 1024))} KB)`));
  }
}

function fill(values, user) {
  const applicant = values?.applicant || { name: user.full_name || "" };
  for (const key of APPLICANT_FIELDS) form.elements[`applicant.${key}`].value = applicant[key] || "";
  if (values?.pages) form.elements.pages.value = values.pages;
  if (values?.copies) form.elements.copies.value = values.copies;
  const chosen = values?.delivery_method && document.getElementById(`delivery-${values.delivery_method}`);
  if (chosen) chosen.checked = true;
  addressNeeded();
}

/** A dossier exists already: only the declaration can still change; say so and lock the rest. */
function showPending(saved) {
  const note = document.getElementById("pending-note");
  clear(note).append(
    h(
      "p",
      { class: "notice notice-warn" },
      `Hồ sơ ${saved.dossier} đã được tạo cùng các tệp đính kèm, nhưng tờ khai chưa được chấp nhận. `,
      "Vui lòng sửa tờ khai theo hướng dẫn và bấm “Nộp hồ sơ” để hoàn tất; hệ thống không tạo hồ sơ mới.",
    ),
  );
  note.hidden = false;
  for (const name of [...APPLICANT_FIELDS.map((key) => `applicant.${key}`), "pages", "copies", "attachments"]) {
    form.elements[name].disabled = true;
  }
  form.querySelectorAll("input[name=delivery_method]").forEach((radio) => (radio.disabled = true));
}

// -- submitting ---------------------------------------------------------------------------------------------
function collect() {
  const applicant = {};
  for (const key of APPLICANT_FIELDS) {
    const value = form.elements[`applicant.${key}`].value.trim();
    if (value) applicant[key] = value;
  }
  const values = { applicant, form_data: state.declaration ? readForm(form, state.declaration.schema, { prefix: "form_data" }) : {} };
  if (!document.getElementById("pages-field").hidden) values.pages = Number(form.elements.pages.value) || form.elements.pages.value;
  if (!document.getElementById("copies-field").hidden) values.copies = Number(form.elements.copies.value) || form.elements.copies.value;
  const delivery = form.querySelector("input[name=delivery_method]:checked");
  if (delivery) values.delivery_method = delivery.value;
  return values;
}

function multipart(values) {
  const body = new FormData();
  body.append("payload", JSON.stringify({ procedure_code: code, channel: "online", ...values }));
  for (const file of form.elements.attachments.files) body.append("attachments", file, file.name);
  return body;
}

/** Complete the applicant's opening tasks (information, then the declaration) still waiting, if any. */
async function declare(dossierCode, formData) {
  for (let step = 0; step < 4; step += 1) {
    const dossier = await api("GET", `dossiers/${enc(dossierCode)}`);
    const task = (dossier.tasks || []).find((t) => t.lane === "applicant" && DECLARING.has(t.form_ref));
    if (!task) return;
    const data = task.form_ref === "dossier_submission" ? { form_data: formData } : {};
    try {
      await api("POST", `tasks/${enc(task.id)}/complete`, { body: { data } });
    } catch (error) {
      if (!(error instanceof ApiError) || error.status !== 409) throw error; // 409: done meanwhile, look again
    }
  }
}

// The applicant's fields are checked by patterns whose message says nothing of the expected shape.
const APPLICANT_PATTERNS = {
  "applicant.phone": "Số điện thoại không hợp lệ: bắt đầu bằng 0 hoặc +84, 10-11 chữ số.",
  "applicant.id_number": "Không đúng định dạng: gồm 6 đến 20 chữ cái hoặc chữ số, không dấu cách.",
};

function refuse(error) {
  const errors = {};
  for (const [key, messages] of Object.entries(error.errors || {})) errors[key.replace(/^payload\./, "")] = messages;
  const shown = friendlyError({ status: error.status, problem: error.problem, message: error.message, errors }, state.declaration?.schema, { prefix: "form_data" });
  for (const [key, text] of Object.entries(APPLICANT_PATTERNS)) {
    if (shown.errors[key]) shown.errors[key] = shown.errors[key].map((m) => (m === "Không đúng định dạng yêu cầu." ? text : m));
  }
  showErrors(form, inFormOrder(shown));
}

/** List the errors in the order their fields appear on the page (the server lists them by rule). */
function inFormOrder(shown) {
  const names = [...form.querySelectorAll("[name]")].map((node) => node.getAttribute("name"));
  const rank = (key) => (names.includes(key) ? names.indexOf(key) : names.length);
  const keys = Object.keys(shown.errors).sort((a, b) => rank(a) - rank(b));
  return { ...shown, errors: Object.fromEntries(keys.map((key) => [key, shown.errors[key]])) };
}

async function submit() {
  clearErrors(form);
  const values = collect();
  let saved = pending();
  if (!saved && addressNeeded() && !values.applicant.address) {
    refuse({ status: 422, problem: {}, errors: { "applicant.address": ["Vui lòng nhập địa chỉ để nhận kết quả qua bưu chính."] } });
    return;
  }
  try {
    if (!saved) {
      progress("Đang gửi hồ sơ…");
      // One Idempotency-Key per submission until it succeeds: if the answer is lost (network), pressing the
      // button again gets the dossier the first request opened, never a second one.
      const headers = { "Idempotency-Key": submissionKey() };
      const created = await api("POST", "dossiers", { body: multipart(values), headers });
      saved = { dossier: created.code, values };
    }
    saved.values = { ...saved.values, form_data: values.form_data };
    sessionStorage.setItem(PENDING_KEY, JSON.stringify(saved));
    progress("Đang gửi tờ khai…");
    await declare(saved.dossier, values.form_data);
  } catch (error) {
    progress("");
    if (!(error instanceof ApiError)) throw error;
    refuse(error);
    if (saved) showPending(saved);
    return;
  }
  sessionStorage.removeItem(PENDING_KEY);
  sessionStorage.removeItem(SUBMISSION_KEY);
  sessionStorage.setItem(FLASH_KEY, JSON.stringify({ code: saved.dossier, text: `Đã nộp hồ sơ thành công. Mã hồ sơ của bạn: ${saved.dossier}.` }));
  window.location.assign(`/ho-so/${enc(saved.dossier)}`);
}

// -- start --------------------------------------------------------------------------------------------------
async function load(user) {
  let procedure;
  try {
    procedure = await api("GET", `procedures/${enc(code)}`);
  } catch (error) {
    clear(document.getElementById("submit-intro"));
    blocked(h("p", { class: "notice notice-bad", role: "alert" }, error.status === 404 ? `Không có thủ tục mã ${code}.` : error.message));
    return;
  }
  state.procedure = procedure;
  intro(procedure);
  if (procedure.level < 3) {
    blocked(
      h("p", { class: "notice notice-warn" }, `Thủ tục này là dịch vụ công mức độ ${procedure.level}: chưa nhận hồ sơ trực tuyến.`),
      h("p", {}, h("a", { href: `/thu-tuc/${enc(code)}` }, "Xem cách nộp hồ sơ")),
    );
    return;
  }
  if (!user.roles.includes("applicant")) {
    blocked(h("p", { class: "notice notice-warn" }, "Chỉ tài khoản công dân, tổ chức mới nộp được hồ sơ trực tuyến."));
    return;
  }
  const formId = declarationFormId(procedure);
  state.declaration = formId ? await api("GET", `procedures/${enc(code)}/forms/${enc(formId)}/schema`) : null;
  const saved = pending();
  if (state.declaration) {
    renderForm(document.getElementById("declaration"), state.declaration.schema, { prefix: "form_data", values: saved?.values?.form_data || {}, idPrefix: "tk" });
    document.getElementById("declaration-section").hidden = false;
  }
  attachHints(procedure);
  quantities(procedure);
  deliveryOptions(procedure);
  fill(saved?.values, user);
  if (saved) showPending(saved);
  form.elements.attachments.addEventListener("change", showFiles);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    busy(document.getElementById("submit-button"), submit);
  });
  form.hidden = false;
}

async function main() {
  const user = await currentUser();
  if (!user) {
    requireLogin();
    return;
  }
  await load(user);
}

main();
