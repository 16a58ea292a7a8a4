// What the officials' pages (the inbox and the task page) share: lane names, who has which queue, the
// deadline badges (text as well as colour) and the message carried from a completed task back to the inbox.
import { hasRole } from "./api.js";
import { h, statusBadge } from "./ui.js";

export const OFFICIAL_LANES = ["reception", "specialist", "leader"];
export const LANE_NAMES = {
  reception: "Tiếp nhận",
  specialist: "Chuyên viên",
  leader: "Lãnh đạo",
  applicant: "Công dân, tổ chức",
};
// Who the process-control slip names at each hop.
export const ROLE_NAMES = {
  reception: "Bộ phận một cửa",
  specialist: "Chuyên viên xử lý",
  leader: "Lãnh đạo",
  applicant: "Công dân, tổ chức",
};
// The steps of the bundled processes, by element id, as the process-control slip names them.
export const STEP_NAMES = {
  information: "Xem thông tin thủ tục",
  download_forms: "Tải biểu mẫu, kê khai",
  submit_online: "Nộp hồ sơ trực tuyến",
  record_paper_submission: "Tiếp nhận hồ sơ giấy",
  review: "Kiểm tra, tiếp nhận hồ sơ",
  supplement: "Bổ sung, hoàn thiện hồ sơ",
  urge_reception: "Đôn đốc tiếp nhận hồ sơ",
  appraise: "Thẩm định, dự thảo kết quả",
  approve: "Phê duyệt, ký kết quả",
  desk_result: "Thu phí, trả kết quả",
  hand_over_result: "Trả kết quả tại một cửa",
};
const FLASH_KEY = "motcua.inbox.flash";

/** The official lanes a user works in (an administrator sees all of them). */
export function lanesOf(user) {
  if (!user) return [];
  if (user.roles.includes("admin")) return [...OFFICIAL_LANES];
  return OFFICIAL_LANES.filter((lane) => hasRole(user, lane));
}

/** The deadline badge of a task or dossier (its API flags), or null when it is not late nor about to be. */
export function deadlineBadge(item) {
  if (item.overdue) return h("span", { class: "badge badge-bad deadline-badge" }, "Quá hạn");
  if (item.due_soon) return h("span", { class: "badge badge-warn deadline-badge" }, "Sắp đến hạn");
  return null;
}

export function deadlineClass(item) {
  if (item.overdue) return "overdue";
  if (item.due_soon) return "due-soon";
  return null;
}

export function taskStatusBadge(task) {
  if (!task.dossier_status) return statusBadge(null);
  return statusBadge({ code: task.dossier_status, name: task.dossier_status_name || String(task.dossier_status) });
}

/** Leave a message for the inbox to show after the next page load. */
export function leaveMessage(text) {
  try {
    window.sessionStorage.setItem(FLASH_KEY, text);
  } catch (error) {
    // Storage refused (private mode): the inbox simply shows no message.
  }
}

export function takeMessage() {
  try {
    const text = window.sessionStorage.getItem(FLASH_KEY);
    window.sessionStorage.removeItem(FLASH_KEY);
    return text;
  } catch (error) {
    return null;
  }
}

/** The friendly notice for a logged-in person who has no officials' queue. */
export function notForYou(user) {
  return h(
    "div",
    { class: "notice notice-warn", role: "status" },
    h("p", {}, h("strong", {}, "Trang này dành cho cán bộ, công chức xử lý hồ sơ.")),
    h(
      "p",
      {},
      `Tài khoản ${user.full_name || user.username} không thuộc Bộ phận một cửa, chuyên viên hay lãnh đạo của cơ quan giải quyết, nên không có hộp công việc.`,
    ),
    hasRole(user, "applicant")
      ? h("p", {}, "Bạn có thể theo dõi hồ sơ đã nộp tại ", h("a", { href: "/ho-so" }, "Hồ sơ của tôi"), ".")
      : h("p", {}, h("a", { href: "/" }, "Về trang chủ")),
  );
}
