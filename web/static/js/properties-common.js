// Words and small helpers of the properties panel: the roles, lanes and statuses of workflows/CONVENTIONS.md
// with their Vietnamese names, and the Vietnamese names of BPMN element types.
export const LANES = [
  ["applicant", "Công dân / tổ chức"],
  ["reception", "Bộ phận tiếp nhận và trả kết quả (một cửa)"],
  ["specialist", "Chuyên viên xử lý"],
  ["leader", "Lãnh đạo"],
];
export const ROLES = [
  ["information", "Xem thông tin thủ tục (mức độ 1)"],
  ["download", "Tải mẫu đơn, tờ khai (mức độ 2)"],
  ["paper_submission", "Một cửa nhận hồ sơ giấy (mức độ 2)"],
  ["submission", "Công dân nộp hồ sơ trực tuyến (mức độ 3, 4)"],
  ["review", "Một cửa kiểm tra, tiếp nhận hồ sơ"],
  ["supplement", "Công dân bổ sung hồ sơ"],
  ["refusal", "Kết thúc: không tiếp nhận hồ sơ"],
  ["appraisal", "Chuyên viên thẩm định"],
  ["approval", "Lãnh đạo phê duyệt"],
  ["desk_result", "Nộp phí, nhận kết quả tại một cửa"],
  ["payment", "Yêu cầu thanh toán trực tuyến"],
  ["payment_wait", "Chờ thanh toán (payment.confirmed)"],
  ["payment_expiry", "Hết hạn thanh toán (hẹn giờ)"],
  ["delivery_online", "Trả kết quả điện tử"],
  ["delivery_online_wait", "Chờ công dân tải kết quả (result.collected)"],
  ["delivery_desk", "Trả kết quả tại một cửa"],
  ["delivery_post", "Gửi kết quả qua bưu chính"],
  ["delivery_post_wait", "Chờ bưu chính phát (post.delivered)"],
  ["delivery_post_cancelled", "Bưu chính huỷ phát (post.cancelled)"],
  ["review_deadline", "Hẹn giờ: tiếp nhận quá lâu"],
  ["escalation", "Lãnh đạo đôn đốc"],
];
export const STATUSES = [
  ["1", "1 — Mới đăng ký"],
  ["2", "2 — Được tiếp nhận"],
  ["3", "3 — Không được tiếp nhận"],
  ["4", "4 — Đang xử lý"],
  ["5", "5 — Yêu cầu bổ sung"],
  ["6", "6 — Yêu cầu thực hiện nghĩa vụ tài chính"],
  ["7", "7 — Công dân yêu cầu rút hồ sơ"],
  ["8", "8 — Dừng xử lý"],
  ["9", "9 — Đã xử lý xong"],
  ["10", "10 — Đã trả kết quả"],
];
export const TIMER_KINDS = [
  ["timeDuration", "Sau một khoảng thời gian (timeDuration)"],
  ["timeDate", "Vào một thời điểm (timeDate)"],
  ["timeCycle", "Lặp lại theo chu kỳ (timeCycle)"],
];
export const PARAMETER_TYPES = ["any", "str", "int", "float", "bool", "list", "dict"];
const TYPE_NAMES = {
  "bpmn:Process": "Quy trình",
  "bpmn:Collaboration": "Sơ đồ cộng tác",
  "bpmn:Participant": "Bể (quy trình)",
  "bpmn:Lane": "Làn (vai trò xử lý)",
  "bpmn:UserTask": "Nhiệm vụ người dùng",
  "bpmn:ManualTask": "Nhiệm vụ thủ công",
  "bpmn:ServiceTask": "Nhiệm vụ dịch vụ",
  "bpmn:ScriptTask": "Nhiệm vụ kịch bản",
  "bpmn:ReceiveTask": "Nhiệm vụ nhận thông điệp",
  "bpmn:SendTask": "Nhiệm vụ gửi thông điệp",
  "bpmn:BusinessRuleTask": "Nhiệm vụ quy tắc nghiệp vụ",
  "bpmn:Task": "Nhiệm vụ",
  "bpmn:CallActivity": "Gọi quy trình con",
  "bpmn:SubProcess": "Quy trình con",
  "bpmn:StartEvent": "Sự kiện bắt đầu",
  "bpmn:EndEvent": "Sự kiện kết thúc",
  "bpmn:IntermediateCatchEvent": "Sự kiện chờ",
  "bpmn:IntermediateThrowEvent": "Sự kiện phát",
  "bpmn:BoundaryEvent": "Sự kiện biên",
  "bpmn:ExclusiveGateway": "Cổng rẽ nhánh loại trừ",
  "bpmn:ParallelGateway": "Cổng song song",
  "bpmn:InclusiveGateway": "Cổng bao hàm",
  "bpmn:EventBasedGateway": "Cổng theo sự kiện",
  "bpmn:SequenceFlow": "Luồng tuần tự",
  "bpmn:MessageFlow": "Luồng thông điệp",
  "bpmn:TextAnnotation": "Chú thích",
  "bpmn:Association": "Liên kết",
  "bpmn:DataObjectReference": "Đối tượng dữ liệu",
  "bpmn:DataStoreReference": "Kho dữ liệu",
  "bpmn:Group": "Nhóm",
};
export function typeName(type) {
  return TYPE_NAMES[type] || type.replace(/^bpmn:/, "");
}

export function isA(element, ...types) {
  const bo = element.businessObject;
  return types.some((type) => bo.$instanceOf(type));
}

export function withCurrent(options, current) {
  if (!current || options.some(([value]) => value === current)) return options;
  return [...options, [current, `${current} (không có trong danh sách)`]];
}
