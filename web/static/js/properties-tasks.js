// The properties of service tasks (spiffworkflow:serviceTaskOperator: operator, result variable, parameters,
// retries) and of timer events (timeDuration / timeDate / timeCycle expressions), for the properties panel.
import { h } from "./ui.js";
import { PARAMETER_TYPES, TIMER_KINDS, isA, withCurrent } from "./properties-common.js";

export function timerFields(panel, element, timer) {
  const kind = TIMER_KINDS.map(([value]) => value).find((value) => timer.get(value)) || "timeDuration";
  const expression = timer.get(kind)?.body || "";
  const write = (newKind, body) => {
    const properties = Object.fromEntries(TIMER_KINDS.map(([value]) => [value, undefined]));
    properties[newKind] = panel.moddle.create("bpmn:FormalExpression", { body });
    panel.run([panel.update(element, timer, properties)]);
  };
  const box = h("fieldset", {}, h("legend", {}, "Hẹn giờ"));
  box.append(
    panel.field("prop-timer-kind", "Loại hẹn giờ", panel.select("prop-timer-kind", TIMER_KINDS, kind, (value) => write(value, expression))),
    panel.field(
      "prop-timer-expression",
      "Biểu thức thời gian",
      panel.text("prop-timer-expression", expression, (value) => write(kind, value)),
      "ISO 8601 (PT4H, \"P3D\", 2026-03-05T09:00:00+07:00, R3/PT1H) hoặc biểu thức: working_hours(4), working_days(2), due_date() - working_days(2).",
    ),
  );
  if (isA(element, "bpmn:BoundaryEvent")) {
    box.append(
      panel.checkbox(
        "prop-cancel-activity",
        "Ngắt nhiệm vụ khi đến hạn (cancelActivity)",
        element.businessObject.cancelActivity !== false,
        (checked) => panel.modeling.updateProperties(element, { cancelActivity: checked }),
      ),
    );
  }
  return box;
}

export function operatorFields(panel, element) {
  const bo = element.businessObject;
  const operator = panel.extensionValues(bo, "spiffworkflow:ServiceTaskOperator")[0];
  const box = h(
    "fieldset",
    {},
    h("legend", {}, "Toán tử dịch vụ"),
    h("p", { class: "hint" }, "Ghi trong spiffworkflow:serviceTaskOperator: máy chủ gọi trình xử lý có tên này."),
  );
  const ensure = (commands) =>
    operator ||
    panel.ensureExtension(
      element,
      "spiffworkflow:ServiceTaskOperator",
      { parameterList: panel.moddle.create("spiffworkflow:Parameters", { parameters: [] }) },
      commands,
    );
  const setOn = (name) => (value) => {
    const commands = [];
    const target = ensure(commands);
    commands.push(panel.update(element, target, { [name]: value || undefined }));
    panel.run(commands);
  };
  const operatorInput = panel.text("prop-operator", operator?.id, setOn("id"), { list: "operator-names" });
  const operatorField = panel.field("prop-operator", "Toán tử (operator)", operatorInput, "Tên trình xử lý của máy chủ, ví dụ payment.request.");
  operatorField.append(h("datalist", { id: "operator-names" }, panel.operators.map((name) => h("option", { value: name }))));
  box.append(
    operatorField,
    panel.field(
      "prop-result-variable",
      "Biến nhận kết quả (resultVariable)",
      panel.text("prop-result-variable", operator?.resultVariable, setOn("resultVariable")),
    ),
  );
  if (operator) box.append(parameterFields(panel, element, operator), ...retryFields(panel, element, operator));
  return box;
}

function parameterFields(panel, element, operator) {
  let list = operator.get("parameterList");
  const parameters = list ? list.get("parameters") : [];
  const blocks = parameters.map((parameter, index) => {
    const number = index + 1;
    const set = (name) => (value) => panel.run([panel.update(element, parameter, { [name]: value || undefined })]);
    const hidden = () => h("span", { class: "visually-hidden-label" }, ` tham số ${number}`);
    const remove = h("button", { type: "button", class: "button-secondary button-small" }, "Xoá", hidden());
    remove.addEventListener("click", () =>
      panel.run([panel.update(element, list, { parameters: parameters.filter((item) => item !== parameter) })]),
    );
    // Visible words stay short; the hidden part makes each label unique ("Tên tham số 2").
    const label = (id, text) => h("label", { for: id }, text, hidden());
    const field = (id, text, control) => h("div", { class: "field" }, label(id, text), control);
    const types = withCurrent(PARAMETER_TYPES.map((type) => [type, type]), parameter.type);
    return h(
      "div",
      { class: "parameter", role: "group", "aria-label": `Tham số ${number}` },
      h(
        "div",
        { class: "parameter-row" },
        field(`param-${index}-id`, "Tên", panel.text(`param-${index}-id`, parameter.id, set("id"))),
        field(`param-${index}-type`, "Kiểu", panel.select(`param-${index}-type`, types, parameter.type || "any", set("type"))),
      ),
      field(`param-${index}-value`, "Giá trị (biểu thức)", panel.text(`param-${index}-value`, parameter.value, set("value"))),
      remove,
    );
  });
  const add = h("button", { type: "button", class: "button-secondary button-small", id: "add-parameter" }, "Thêm tham số");
  add.addEventListener("click", () => {
    const commands = [];
    if (!list) {
      list = panel.moddle.create("spiffworkflow:Parameters", { parameters: [] });
      list.$parent = operator;
      commands.push(panel.update(element, operator, { parameterList: list }));
    }
    const parameter = panel.moddle.create("spiffworkflow:Parameter", { id: `tham_so_${parameters.length + 1}`, type: "any", value: "" });
    parameter.$parent = list;
    commands.push(panel.update(element, list, { parameters: [...list.get("parameters"), parameter] }));
    panel.run(commands);
  });
  return h(
    "div",
    { class: "properties-parameters" },
    h("p", { class: "properties-parameters-title" }, "Tham số (biểu thức trên dữ liệu hồ sơ)"),
    blocks.length ? blocks : h("p", { class: "muted" }, "Chưa có tham số."),
    add,
  );
}

function retryFields(panel, element, operator) {
  const retry = operator.get("retry");
  const set = (name) => (value) => {
    if (value && !/^\d+$/.test(value)) return "Nhập một số nguyên không âm.";
    const commands = [];
    let target = retry;
    if (!target) {
      if (!value) return null;
      target = panel.moddle.create("spiffworkflow:Retry", {});
      target.$parent = operator;
      commands.push(panel.update(element, operator, { retry: target }));
    }
    commands.push(panel.update(element, target, { [name]: value ? Number(value) : undefined }));
    panel.run(commands);
    return null;
  };
  const text = (value) => (value === undefined || value === null ? "" : String(value));
  return [
    panel.field(
      "prop-retries",
      "Số lần thử lại khi lỗi (retries)",
      panel.text("prop-retries", text(retry?.retries), set("retries")),
      "Để trống: theo cấu hình máy chủ.",
    ),
    panel.field(
      "prop-backoff",
      "Chờ trước lần thử lại đầu, giây (backoff_base)",
      panel.text("prop-backoff", text(retry?.backoff_base), set("backoff_base")),
    ),
  ];
}
