// One dossier: status, dates and outcome; what the applicant must do now (supplement, payment, result, rating,
// withdrawal); the process-control history, documents, files and the declaration. Officials who open it (their
// agency's dossier) see it read-only. Every action is one API call; the page then reloads the dossier.
import { api, ApiError, currentUser, optional, requireLogin } from "./api.js";
import { friendlyError, renderValues } from "./forms.js";
import { busy, clear, clearErrors, date, dateTime, factList, flash, h, money, showErrors, statusBadge } from "./ui.js";

const code = document.body.dataset.code;
const enc = encodeURIComponent;
const path = `dossiers/${enc(code)}`;
const root = document.getElementById("dossier");
const ROLES = { applicant: "Công dân", reception: "Bộ phận một cửa", specialist: "Chuyên viên", leader: "Lãnh đạo" };
const RESULTS = {
  done: "Hoàn thành",
  accept: "Tiếp nhận",
  supplement: "Yêu cầu bổ sung",
  refuse: "Từ chối",
  approve: "Phê duyệt",
  send_back: "Trả lại để xử lý lại",
  collected: "Đã nhận kết quả",
  delivered: "Đã phát",
  cancelled: "Phát không thành công",
  paid: "Đã thanh toán",
};
const STEPS = {
  information: "Xem thông tin thủ tục",
  submit_online: "Nộp hồ sơ trực tuyến",
  review: "Kiểm tra tính đầy đủ, hợp lệ của hồ sơ",
  supplement: "Bổ sung, hoàn thiện hồ sơ",
  appraise: "Thẩm định hồ sơ, dự thảo kết quả",
  approve: "Phê duyệt, ký kết quả",
  desk_result: "Thu phí, lệ phí và trả kết quả",
  hand_over_result: "Trả kết quả tại một cửa",
  urge_reception: "Đôn đốc tiếp nhận hồ sơ",
  record_paper_submission: "Tiếp nhận hồ sơ giấy",
  wait_payment: "Thanh toán phí, lệ phí trực tuyến",
  wait_result_collected: "Nhận kết quả điện tử",
  wait_post_delivered: "Bưu chính phát kết quả",
};
const OUTCOMES = { early: "Trước hạn", on_time: "Đúng hạn", late: "Quá hạn" };
const DELIVERY = { online: "Trực tuyến (bản điện tử)", desk: "Tại Bộ phận một cửa", post: "Qua dịch vụ bưu chính" };
const CHANNELS = { online: "Trực tuyến", in_person: "Trực tiếp", post: "Bưu chính" };
const POSTAL = { registered: "Đã gửi bưu điện", collecting: "Bưu điện đang vận chuyển", delivered: "Đã phát thành công", cancelled: "Phát không thành công, kết quả chuyển về Bộ phận một cửa" };
const WITHDRAWABLE = new Set([1, 2, 4, 5, 6]);
const SCORES = ["Rất không hài lòng", "Không hài lòng", "Bình thường", "Hài lòng", "Rất hài lòng"];
const view = { user: null, applicant: false };

function section(id, title, ...content) {
  return h("section", { class: "card", "aria-labelledby": id }, h("h2", { id }, title), ...content);
}

const facts = factList;

function applicantTask(dossier, elementId) {
  return (dossier.tasks || []).find((task) => task.lane === "applicant" && task.element_id === elementId);
}

// -- the summary --------------------------------------------------------------------------------------------
function summary(d, procedure) {
  const due = d.due_at ? [dateTime(d.due_at), d.overdue ? [" ", h("span", { class: "badge badge-bad" }, "Quá hạn")] : d.due_soon ? [" ", h("span", { class: "badge badge-warn" }, "Sắp đến hạn")] : null] : ["Chưa có (hẹn khi hồ sơ được tiếp nhận)"];
  return section(
    "summary-title",
    "Thông tin hồ sơ",
    facts([
      ["Trạng thái", statusBadge(d.status)],
      ["Thủ tục", h("a", { href: `/thu-tuc/${enc(d.procedure_code)}` }, procedure?.name || d.procedure_code)],
      ["Cơ quan giải quyết", procedure?.agency?.name || d.agency_code],
      ["Người nộp", d.applicant?.name || "—"],
      ["Hình thức nộp", CHANNELS[d.channel] || d.channel || "—"],
      ["Ngày nộp", dateTime(d.submitted_at)],
      ["Ngày tiếp nhận", dateTime(d.received_at)],
      ["Ngày hẹn trả kết quả", ...due],
      d.apology && ["Lý do hẹn lại", d.apology.reason],
      d.delivery_method && ["Hình thức nhận kết quả", DELIVERY[d.delivery_method] || d.delivery_method],
      ["Ngày hoàn thành", dateTime(d.finished_at)],
      d.outcome && ["Kết quả giải quyết", OUTCOMES[d.outcome] || d.outcome],
      d.refusal_reason && ["Lý do từ chối", d.refusal_reason],
      d.withdrawn_at && ["Ngày rút hồ sơ", dateTime(d.withdrawn_at)],
    ]),
  );
}

// -- supplement ---------------------------------------------------------------------------------------------
function supplementSection(d) {
  const task = applicantTask(d, "supplement");
  const items = h("ol", {}, (d.supplement_items || []).map((item) => h("li", {}, item)));
  const box = section("supplement-title", "Yêu cầu bổ sung hồ sơ", h("p", {}, "Cơ quan giải quyết yêu cầu bổ sung các giấy tờ, thông tin sau:"), items);
  if (!view.applicant || !task) return box;
  const uploadedKey = `motcua.supplement.${code}`;
  const form = h(
    "form",
    { method: "post", novalidate: true, id: "supplement-form" },
    h("div", { "data-error-summary": "" }),
    h("div", { class: "field" }, h("label", { for: "supplement-note" }, "Nội dung bổ sung"), h("p", { class: "hint", id: "supplement-note-hint" }, "Mô tả những gì bạn bổ sung theo yêu cầu."), h("textarea", { id: "supplement-note", name: "supplement_note", rows: 4, maxlength: 2000, "aria-describedby": "supplement-note-hint" })),
    h("div", { class: "field" }, h("label", { for: "supplement-files" }, "Tệp bổ sung"), h("p", { class: "hint", id: "supplement-files-hint" }, "PDF, JPEG hoặc PNG, mỗi tệp tối đa 10 MB."), h("input", { type: "file", id: "supplement-files", name: "attachments", multiple: true, accept: ".pdf,.jpg,.jpeg,.png,application/pdf,image/jpeg,image/png", "aria-describedby": "supplement-files-hint" }), h("ul", { class: "file-list", id: "supplement-uploaded" })),
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Gửi bổ sung")),
  );
  const uploaded = () => JSON.parse(sessionStorage.getItem(uploadedKey) || "[]");
  const listUploaded = () => clear(form.querySelector("#supplement-uploaded")).append(...uploaded().map((file) => h("li", {}, `Đã tải lên: ${file.filename}`)));
  listUploaded();
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    busy(form.querySelector("button[type=submit]"), () => sendSupplement(form, task, uploadedKey, uploaded, listUploaded));
  });
  box.append(form);
  return box;
}

async function sendSupplement(form, task, key, uploaded, listUploaded) {
  clearErrors(form);
  const note = form.supplement_note.value.trim();
  const files = [...form.attachments.files];
  if (!note && !files.length && !uploaded().length) {
    showErrors(form, { problem: { title: "Chưa có nội dung bổ sung" }, message: "", errors: { supplement_note: ["Vui lòng nhập nội dung bổ sung hoặc đính kèm tệp."] } });
    return;
  }
  try {
    if (files.length) {
      const body = new FormData();
      for (const file of files) body.append("attachments", file, file.name);
      const added = await api("POST", `${path}/attachments`, { body });
      sessionStorage.setItem(key, JSON.stringify([...uploaded(), ...added.items.map((i) => ({ id: i.id, filename: i.filename }))]));
      form.attachments.value = ""; // on the server now: a retry sends only the note
      listUploaded();
    }
    const data = { supplement_note: note, attachments: uploaded().map((file) => file.id) };
    await api("POST", `tasks/${enc(task.id)}/complete`, { body: { data } });
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    showErrors(form, friendlyError(error, null));
    return;
  }
  sessionStorage.removeItem(key);
  await load();
  flash("Đã gửi bổ sung hồ sơ. Hồ sơ được chuyển lại cho Bộ phận một cửa kiểm tra.", "good");
}

// -- payment ------------------------------------------------------------------------------------------------
function paymentSection(d, payments, procedure) {
  const attempts = payments?.attempts || [];
  const last = attempts[attempts.length - 1];
  const lines = last?.lines?.length ? last.lines : (procedure?.fees || []).filter((f) => f.mode !== "exempt" && f.amount);
  const total = last ? last.amount : null;
  const box = section(
    "payment-title",
    "Thanh toán phí, lệ phí",
    h("p", {}, "Hồ sơ đang chờ bạn thanh toán phí, lệ phí trực tuyến. Thời hạn giải quyết được tạm dừng trong khi chờ thanh toán."),
    h("div", { class: "table-wrap" }, h("table", {}, h("caption", { class: "visually-hidden" }, "Các khoản phí, lệ phí"), h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Khoản thu"), h("th", { scope: "col" }, "Số tiền"))), h("tbody", {}, lines.map((line) => h("tr", {}, h("td", {}, line.description), h("td", {}, money(line.amount))))), total !== null ? h("tfoot", {}, h("tr", {}, h("th", { scope: "row" }, "Tổng cộng"), h("td", {}, h("strong", {}, money(total))))) : null)),
    total === null ? h("p", { class: "muted" }, "Số tiền chính xác (kể cả cước bưu chính nếu có) được hiển thị tại cổng thanh toán.") : null,
    last && last.status === "failed" ? h("p", { class: "notice notice-warn" }, "Lần thanh toán trước không thành công. Bạn có thể thanh toán lại.") : null,
  );
  if (!view.applicant) return box;
  const button = h("button", { type: "button" }, "Thanh toán trực tuyến");
  const form = h("form", { method: "post", novalidate: true }, h("div", { "data-error-summary": "" }), h("div", { class: "actions" }, button));
  button.addEventListener("click", () =>
    busy(button, async () => {
      clearErrors(form);
      try {
        const started = await api("POST", `${path}/payments`);
        window.location.assign(started.payment_url);
      } catch (error) {
        if (!(error instanceof ApiError)) throw error;
        showErrors(form, friendlyError(error, null));
      }
    }),
  );
  box.append(form);
  return box;
}

// -- result -------------------------------------------------------------------------------------------------
function resultSection(d) {
  const box = section("result-title", "Kết quả giải quyết", h("p", {}, `Kết quả đã được phê duyệt lúc ${dateTime(d.result.created_at)}.`));
  if (d.result.collected_at) box.append(h("p", { class: "notice notice-good" }, `Bạn đã nhận kết quả lúc ${dateTime(d.result.collected_at)}.`));
  if (d.delivery_method === "online" && view.applicant) {
    const form = h("form", { method: "post", novalidate: true }, h("div", { "data-error-summary": "" }));
    const button = h("button", { type: "button" }, "Tải kết quả");
    button.addEventListener("click", () =>
      busy(button, async () => {
        clearErrors(form);
        try {
          const link = await api("POST", `${path}/result-link`);
          window.location.assign(link.url);
          window.setTimeout(load, 1500); // the first download hands the result over: show the new status
        } catch (error) {
          if (!(error instanceof ApiError)) throw error;
          showErrors(form, friendlyError(error, null));
        }
      }),
    );
    form.append(h("p", {}, "Kết quả điện tử có giá trị pháp lý như bản giấy."), h("div", { class: "actions" }, button));
    box.append(form);
  } else if (d.delivery_method === "post") {
    const holder = h("div", {}, h("p", { class: "muted" }, "Đang tải thông tin bưu gửi…"));
    box.append(holder);
    postalOrder(holder);
  } else if (!d.result.collected_at) {
    box.append(h("p", {}, "Vui lòng đến Bộ phận một cửa để nhận kết quả; mang theo giấy tờ tùy thân."));
  }
  return box;
}

async function postalOrder(holder) {
  const order = await optional(api("GET", `${path}/postal-order`));
  if (!order) {
    clear(holder).append(h("p", {}, "Kết quả đang được chuẩn bị để gửi qua bưu chính."));
    return;
  }
  clear(holder).append(
    h("h3", {}, "Bưu gửi kết quả"),
    facts([
      ["Số hiệu bưu gửi", h("strong", {}, order.tracking_number)],
      ["Người nhận", order.recipient],
      ["Địa chỉ", order.address],
      ["Cước phí", money(order.postage)],
      ["Tình trạng", POSTAL[order.status] || order.status],
    ]),
    h("ul", { class: "plain" }, (order.events || []).map((e) => h("li", {}, `${dateTime(e.at)}: ${POSTAL[e.status] || e.status}${e.note ? ` (${e.note})` : ""}`))),
  );
}

// -- rating and withdrawal ----------------------------------------------------------------------------------
function ratingSection(d) {
  if (d.rating) return section("rating-title", "Đánh giá mức độ hài lòng", h("p", {}, `Bạn đã đánh giá ${d.rating}/5 sao. Cảm ơn bạn đã góp ý.`));
  const stars = SCORES.map((text, index) => {
    const id = `score-${index + 1}`;
    return h("span", {}, h("input", { type: "radio", id, name: "score", value: index + 1 }), " ", h("label", { for: id }, `${index + 1} sao – ${text}`));
  });
  const form = h(
    "form",
    { method: "post", novalidate: true, id: "rating-form" },
    h("div", { "data-error-summary": "" }),
    h("fieldset", { class: "field", name: "score", id: "score" }, h("legend", {}, "Mức độ hài lòng của bạn ", h("span", { class: "required", "aria-hidden": "true" }, "*")), h("div", { class: "stars" }, stars)),
    h("div", { class: "field" }, h("label", { for: "rating-comment" }, "Góp ý (không bắt buộc)"), h("textarea", { id: "rating-comment", name: "comment", rows: 3, maxlength: 2000 })),
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Gửi đánh giá")),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    busy(form.querySelector("button[type=submit]"), () => rate(form));
  });
  return section("rating-title", "Đánh giá mức độ hài lòng", h("p", {}, "Hãy cho chúng tôi biết bạn có hài lòng với việc giải quyết hồ sơ này không."), form);
}

async function rate(form) {
  clearErrors(form);
  const chosen = form.querySelector("input[name=score]:checked");
  if (!chosen) {
    showErrors(form, { problem: { title: "Chưa chọn mức độ hài lòng" }, message: "", errors: { score: ["Vui lòng chọn từ 1 đến 5 sao."] } });
    return;
  }
  const comment = form.comment.value.trim();
  try {
    await api("POST", `${path}/rating`, { body: { score: Number(chosen.value), ...(comment ? { comment } : {}) } });
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    showErrors(form, friendlyError(error, null));
    return;
  }
  await load();
  flash("Cảm ơn bạn đã đánh giá.", "good");
}

function withdrawSection() {
  const confirmBox = h("div", { class: "notice notice-warn", hidden: true, id: "withdraw-confirm" });
  const form = h("form", { method: "post", novalidate: true }, h("div", { "data-error-summary": "" }), confirmBox);
  const start = h("button", { type: "button", class: "button-secondary", "aria-controls": "withdraw-confirm", "aria-expanded": "false" }, "Rút hồ sơ");
  const yes = h("button", { type: "button" }, "Xác nhận rút hồ sơ");
  const no = h("button", { type: "button", class: "button-secondary" }, "Không rút");
  confirmBox.append(h("p", {}, h("strong", {}, `Bạn chắc chắn muốn rút hồ sơ ${code}?`), " Hồ sơ sẽ dừng giải quyết và không thể tiếp tục."), h("div", { class: "actions" }, yes, no));
  start.addEventListener("click", () => {
    confirmBox.hidden = false;
    start.setAttribute("aria-expanded", "true");
    yes.focus();
  });
  no.addEventListener("click", () => {
    confirmBox.hidden = true;
    start.setAttribute("aria-expanded", "false");
    start.focus();
  });
  yes.addEventListener("click", () =>
    busy(yes, async () => {
      try {
        await api("POST", `${path}/withdraw`);
      } catch (error) {
        if (!(error instanceof ApiError)) throw error;
        showErrors(form, friendlyError(error, null));
        return;
      }
      await load();
      flash("Hồ sơ đã được rút.", "good");
    }),
  );
  return section("withdraw-title", "Rút hồ sơ", h("p", {}, "Bạn có thể rút hồ sơ khi hồ sơ chưa được giải quyết xong."), h("div", { class: "actions" }, start), form);
}

// -- history, documents, files, declaration -----------------------------------------------------------------
function historySection(handovers) {
  const items = (handovers || []).map((row) =>
    h(
      "li",
      {},
      h("strong", {}, dateTime(row.at)), " — ", STEPS[row.element_id] || row.element_id,
      h("br"),
      h("span", { class: "muted" }, `${ROLES[row.from_role] || row.from_role || "—"} → ${ROLES[row.to_role] || row.to_role || "kết thúc"}; người thực hiện: ${row.actor}; kết quả: ${RESULTS[row.result] || row.result || "—"}`),
      row.note ? [h("br"), `Ghi chú: ${row.note}`] : null,
    ),
  );
  return section("history-title", "Quá trình giải quyết", items.length ? h("ol", { class: "history" }, items) : h("p", {}, "Chưa có bước xử lý nào."));
}

function documentsSection(d, payments, declaration) {
  // The API lists the documents that exist at this stage of the dossier, with their titles.
  const links = (d.available_documents || []).map((doc) => h("li", {}, h("a", { href: doc.href }, doc.title)));
  if (declaration?.form_data) links.push(h("li", {}, h("a", { href: `/api/v1/${path}/documents/declaration` }, "Tờ khai đã nộp (bản in)")));
  if (payments?.receipt) links.push(h("li", {}, h("a", { href: `/api/v1/${path}/receipt` }, `Biên lai thu phí, lệ phí điện tử ${payments.receipt.number}`)));
  return section("documents-title", "Giấy tờ của hồ sơ", h("ul", { class: "doc-list" }, links));
}

function attachmentsSection(items) {
  const rows = (items || []).map((file) => h("li", {}, h("a", { href: file.href, download: file.filename }, file.filename), h("span", { class: "muted" }, ` (${Math.max(1, Math.round(file.size / 1024))} KB, ${date(file.uploaded_at)})`)));
  return section("files-title", "Tệp đính kèm", rows.length ? h("ul", { class: "doc-list" }, rows) : h("p", {}, "Không có tệp đính kèm."));
}

function declarationSection(declaration) {
  if (!declaration?.form || !declaration.form_data) return null;
  return section("declaration-title", "Tờ khai", h("details", {}, h("summary", {}, `Xem ${declaration.form.title}`), renderValues(declaration.form.schema, declaration.form_data)));
}

// -- page ---------------------------------------------------------------------------------------------------
function render(d, procedure, attachments, declaration, payments) {
  const status = d.status.code;
  const actions = [
    status === 5 ? supplementSection(d) : null,
    status === 6 && d.level === 4 ? paymentSection(d, payments, procedure) : null,
    d.result ? resultSection(d) : null,
    status === 10 && view.applicant ? ratingSection(d) : null,
    WITHDRAWABLE.has(status) && view.applicant ? withdrawSection() : null,
  ];
  clear(root).append(
    h("div", {}, view.applicant ? null : h("p", { class: "notice" }, "Bạn đang xem hồ sơ với vai trò cán bộ: chỉ xem, không thao tác thay công dân.")),
    h(
      "div",
      { class: "two-col" },
      h("div", {}, summary(d, procedure), ...actions, historySection(d.handovers), declarationSection(declaration)),
      h("div", {}, documentsSection(d, payments, declaration), attachmentsSection(attachments?.items)),
    ),
  );
  root.removeAttribute("aria-busy");
}

async function load() {
  let dossier;
  try {
    dossier = await api("GET", path);
  } catch (error) {
    root.removeAttribute("aria-busy");
    const text = error.status === 404 ? `Không tìm thấy hồ sơ ${code}, hoặc bạn không có quyền xem hồ sơ này.` : error.message;
    clear(root).append(h("p", { class: "notice notice-bad", role: "alert" }, text));
    return;
  }
  const [procedure, attachments, declaration, payments] = await Promise.all([
    optional(api("GET", `procedures/${enc(dossier.procedure_code)}`)),
    optional(api("GET", `${path}/attachments`)),
    optional(api("GET", `${path}/declaration`)),
    dossier.level === 4 ? optional(api("GET", `${path}/payments`)) : null,
  ]);
  render(dossier, procedure, attachments, declaration, payments);
}

function welcome() {
  const saved = JSON.parse(sessionStorage.getItem("motcua.flash") || "null"); // set by submit.js
  if (saved && saved.code === code) {
    sessionStorage.removeItem("motcua.flash");
    flash(saved.text, "good");
  }
}

async function main() {
  view.user = await currentUser();
  if (!view.user) {
    requireLogin();
    return;
  }
  view.applicant = view.user.roles.includes("applicant");
  await load();
  welcome();
}

main();
