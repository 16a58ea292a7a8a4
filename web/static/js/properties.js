// The properties panel of the modeler: the extensions our engine reads (workflows/CONVENTIONS.md), edited for
// the selected element. Every edit is a bpmn-js modeling command (updateProperties / updateModdleProperties,
// grouped into one command when it takes several), so undo and redo work and the saved XML carries it.
import { clear, h } from "./ui.js";
import { LANES, ROLES, STATUSES, isA, typeName, withCurrent } from "./properties-common.js";
import { operatorFields, timerFields } from "./properties-tasks.js";

const ID_PATTERN = /^[A-Za-z_][A-Za-z0-9_.-]*$/;
const TASKS = ["bpmn:UserTask", "bpmn:ManualTask", "bpmn:Task"];

/** Several modeling commands as one: one undo step (its sub-commands run in preExecute). */
class MultiCommand {
  constructor(commandStack) {
    this.commandStack = commandStack;
  }

  preExecute(context) {
    for (const [command, commandContext] of context.commands) this.commandStack.execute(command, commandContext);
  }
}
MultiCommand.$inject = ["commandStack"];

export class PropertiesPanel {
  /**
   * @param modeler the bpmn-js Modeler
   * @param container where the panel is drawn
   * @param options `operators` (service operators the engine serves), `processKeys` (deployed process ids)
   */
  constructor(modeler, container, { operators = [], processKeys = [] } = {}) {
    this.modeler = modeler;
    this.container = container;
    this.operators = operators;
    this.processKeys = processKeys;
    for (const name of ["modeling", "moddle", "elementRegistry", "selection", "canvas", "commandStack"]) {
      this[name] = modeler.get(name);
    }
    this.commandStack.registerHandler("motcua.multi", MultiCommand);
    const bus = modeler.get("eventBus");
    for (const event of ["selection.changed", "elements.changed", "import.done"]) bus.on(event, () => this.schedule());
  }

  /** Redraw after the current event (and after the browser moved the focus), once per burst of changes. */
  schedule() {
    if (this.pending) return;
    this.pending = true;
    setTimeout(() => {
      this.pending = false;
      this.render();
    }, 0);
  }

  /** Run modeling commands `[[command, context], ...]` as one undoable step. */
  run(commands) {
    if (!commands.length) return;
    if (commands.length === 1) this.commandStack.execute(commands[0][0], commands[0][1]);
    else this.commandStack.execute("motcua.multi", { commands });
  }

  update(element, moddleElement, properties) {
    return ["element.updateModdleProperties", { element, moddleElement, properties }];
  }

  subject() {
    const selected = this.selection.get();
    if (selected.length > 1) return { many: selected.length };
    if (selected.length === 1) return selected[0].labelTarget || selected[0];
    const root = this.canvas.getRootElement();
    const pools = this.elementRegistry.filter((element) => element.type === "bpmn:Participant");
    return isA(root, "bpmn:Collaboration") && pools.length === 1 ? pools[0] : root;
  }

  render() {
    const active = document.activeElement;
    const focused = active && this.container.contains(active) ? active.id : null;
    const subject = this.subject();
    const form = h("form", { method: "post", novalidate: true, id: "properties-form", class: "properties-form" });
    form.addEventListener("submit", (event) => event.preventDefault());
    form.append(this.picker(subject));
    if (subject.many) {
      form.append(h("p", { class: "muted" }, `Đang chọn ${subject.many} phần tử. Chọn một phần tử để sửa thuộc tính.`));
    } else {
      form.append(...this.sections(subject));
    }
    clear(this.container).append(form);
    if (focused) document.getElementById(focused)?.focus();
  }

  // -- fields ------------------------------------------------------------------------------------------
  field(id, label, control, hint) {
    const hintId = hint ? `${id}-hint` : null;
    if (hintId) control.setAttribute("aria-describedby", hintId);
    return h(
      "div",
      { class: "field" },
      h("label", { for: id }, label),
      hint ? h("p", { class: "hint", id: hintId }, hint) : null,
      control,
    );
  }

  text(id, value, commit, { list, placeholder, multiline } = {}) {
    const input = multiline
      ? h("textarea", { id, name: id, rows: 3 }, value || "")
      : h("input", { type: "text", id, name: id, value: value || "", list, placeholder, autocomplete: "off" });
    const apply = () => {
      if (input.value.trim() !== (value || "")) this.commit(input, () => commit(input.value.trim()));
    };
    input.addEventListener("change", apply);
    if (!multiline) {
      // Enter applies the value at once (the form has no submit button to do it).
      input.addEventListener("keydown", (event) => {
        if (event.key === "Enter") {
          event.preventDefault();
          apply();
        }
      });
    }
    return input;
  }

  select(id, options, value, commit) {
    const control = h(
      "select",
      { id, name: id },
      options.map(([optionValue, text]) => h("option", { value: optionValue, selected: optionValue === (value || "") }, text)),
    );
    control.addEventListener("change", () => this.commit(control, () => commit(control.value)));
    return control;
  }

  checkbox(id, label, checked, commit) {
    const box = h("input", { type: "checkbox", id, name: id, checked: Boolean(checked) });
    box.addEventListener("change", () => this.commit(box, () => commit(box.checked)));
    return h("div", { class: "field field-check" }, box, " ", h("label", { for: id }, label));
  }

  /** Apply an edit; a refusal (a message) is shown under the control and nothing changes. */
  commit(control, apply) {
    const refusal = apply();
    const box = control.closest(".field");
    box?.querySelector(".field-error")?.remove();
    control.removeAttribute("aria-invalid");
    if (typeof refusal === "string") {
      const errorId = `${control.id}-error`;
      box?.append(h("p", { class: "field-error", id: errorId }, refusal));
      control.setAttribute("aria-invalid", "true");
      control.setAttribute("aria-describedby", `${control.getAttribute("aria-describedby") || ""} ${errorId}`.trim());
    }
  }

  // -- the element picker, so that the keyboard can reach every element ---------------------------------
  picker(subject) {
    const elements = this.elementRegistry.filter((element) => !element.labelTarget && element.parent);
    const options = [["", "Toàn bộ sơ đồ"]].concat(
      elements.map((element) => {
        const name = element.businessObject.name;
        return [element.id, `${name ? `${name} — ` : ""}${element.id} (${typeName(element.type)})`];
      }),
    );
    const current = subject.many || !subject.parent ? "" : subject.id;
    const control = this.select("element-picker", options, current, (id) => {
      const element = id ? this.elementRegistry.get(id) : null;
      this.selection.select(element || []);
      if (element) this.canvas.scrollToElement(element);
    });
    return this.field("element-picker", "Phần tử", control, "Chọn phần tử cần sửa (hoặc bấm vào phần tử trên sơ đồ).");
  }

  sections(element) {
    const bo = element.businessObject;
    const parts = [h("p", { class: "properties-type" }, "Loại: ", h("strong", {}, typeName(bo.$type)))];
    if (isA(element, "bpmn:Participant") && bo.processRef) parts.push(...this.processFields(element, bo.processRef));
    else if (isA(element, "bpmn:Process")) parts.push(...this.processFields(element, bo));
    else if (isA(element, "bpmn:Collaboration")) parts.push(h("p", { class: "muted" }, "Chọn một bể để sửa quy trình."));
    else parts.push(this.idField(element));
    if (isA(element, "bpmn:Lane")) parts.push(this.laneField(element));
    else if (!isA(element, "bpmn:Process", "bpmn:Collaboration", "bpmn:Participant")) parts.push(this.nameField(element));
    if (isA(element, "bpmn:FlowNode")) parts.push(...this.flowNodeFields(element));
    if (isA(element, "bpmn:SequenceFlow")) parts.push(...this.flowFields(element));
    if (isA(element, "bpmn:BaseElement") && !isA(element, "bpmn:Collaboration")) parts.push(this.documentationField(element));
    return parts;
  }

  idField(element) {
    const control = this.text("prop-id", element.businessObject.id, (id) => {
      const problem = this.badId(id, element.businessObject);
      if (problem) return problem;
      this.modeling.updateProperties(element, { id });
      return null;
    });
    return this.field("prop-id", "Mã phần tử (id)", control, "Chữ cái không dấu, chữ số, _ . -; không trùng.");
  }

  badId(id, owner) {
    if (!ID_PATTERN.test(id)) return "Mã phải bắt đầu bằng chữ cái hoặc _ và chỉ gồm chữ cái không dấu, chữ số, _ . -";
    const holder = this.moddle.ids.assigned(id);
    if (holder && holder !== owner) return "Mã này đã được dùng cho phần tử khác.";
    return null;
  }

  nameField(element) {
    const control = this.text("prop-name", element.businessObject.name, (name) => {
      this.modeling.updateProperties(element, { name: name || undefined });
    });
    return this.field("prop-name", "Tên", control);
  }

  processFields(element, process) {
    const rename = (id) => {
      const problem = this.badId(id, process);
      if (problem) return problem;
      if (element.businessObject === process) {
        this.modeling.updateProperties(element, { id });
      } else {
        this.run([
          ["id.updateClaim", { id: process.id, element: process, claiming: false }],
          ["id.updateClaim", { id, element: process, claiming: true }],
          this.update(element, process, { id }),
        ]);
      }
      return null;
    };
    const setName = (name) => {
      const commands = [this.update(element, process, { name: name || undefined })];
      if (element.businessObject !== process) commands.push(this.update(element, element.businessObject, { name: name || undefined }));
      this.run(commands);
    };
    return [
      this.field(
        "prop-process-id",
        "Mã quy trình (process id)",
        this.text("prop-process-id", process.id, rename),
        "Là khoá của quy trình khi lưu nháp và triển khai, ví dụ dossier_l3.",
      ),
      this.field("prop-process-name", "Tên quy trình", this.text("prop-process-name", process.name, setName)),
      this.checkbox("prop-executable", "Quy trình thực thi được (isExecutable)", process.isExecutable, (checked) =>
        this.run([this.update(element, process, { isExecutable: checked })]),
      ),
    ];
  }

  laneField(element) {
    const name = element.businessObject.name || "";
    const options = withCurrent([["", "(chưa chọn)"], ...LANES.map(([value, text]) => [value, `${value} — ${text}`])], name);
    const control = this.select("prop-lane", options, name, (value) => {
      this.modeling.updateProperties(element, { name: value || undefined });
    });
    const hint = "Tên làn là vai trò: người trong vai trò đó làm các nhiệm vụ của làn.";
    return this.field("prop-lane", "Vai trò xử lý của làn (tên làn)", control, hint);
  }

  documentationField(element) {
    const docs = element.businessObject.documentation || [];
    const control = this.text(
      "prop-documentation",
      docs[0]?.text,
      (text) => {
        const rest = docs.slice(1);
        const documentation = text ? [this.moddle.create("bpmn:Documentation", { text }), ...rest] : rest;
        this.run([this.update(element, element.businessObject, { documentation })]);
      },
      { multiline: true },
    );
    return this.field("prop-documentation", "Mô tả (documentation)", control);
  }

  // -- flow nodes: lane, role, status, form, operator, timer, call ---------------------------------------
  laneOf(element) {
    const lane = this.elementRegistry.find(
      (candidate) => candidate.type === "bpmn:Lane" && (candidate.businessObject.flowNodeRef || []).includes(element.businessObject),
    );
    return lane ? lane.businessObject.name || lane.id : null;
  }

  flowNodeFields(element) {
    const lane = this.laneOf(element);
    const properties = this.spiffProperties(element);
    const fields = [
      h(
        "p",
        { class: "properties-lane" },
        "Làn: ",
        h("strong", {}, lane || "không thuộc làn nào"),
        h("span", { class: "muted" }, " — kéo phần tử sang làn khác để đổi vai trò xử lý."),
      ),
    ];
    const extensions = h(
      "fieldset",
      {},
      h("legend", {}, "Thuộc tính một cửa"),
      h("p", { class: "hint" }, "Ghi trong spiffworkflow:properties của phần tử."),
    );
    const statuses = withCurrent([["", "(không đặt)"], ...STATUSES], properties.dossier_status);
    const roles = withCurrent([["", "(không có)"], ...ROLES.map(([value, text]) => [value, `${value} — ${text}`])], properties.role);
    extensions.append(
      this.field(
        "prop-role",
        "Vai trò trong quy trình (role)",
        this.select("prop-role", roles, properties.role, (value) => this.setProperty(element, "role", value)),
        "Bộ kiểm tra mức độ dịch vụ công tìm các phần tử theo vai trò.",
      ),
      this.field(
        "prop-dossier-status",
        "Trạng thái hồ sơ khi dừng ở đây (dossier_status)",
        this.select("prop-dossier-status", statuses, properties.dossier_status, (value) =>
          this.setProperty(element, "dossier_status", value),
        ),
      ),
    );
    if (TASKS.some((type) => element.businessObject.$type === type)) {
      extensions.append(
        this.field(
          "prop-form-key",
          "Biểu mẫu (formKey)",
          this.text("prop-form-key", properties.formKey, (value) => this.setProperty(element, "formKey", value)),
          "Mã biểu mẫu trong workflows/forms/ hoặc tên biểu mẫu riêng của nhiệm vụ.",
        ),
      );
    }
    fields.push(extensions);
    if (isA(element, "bpmn:ServiceTask")) fields.push(operatorFields(this, element));
    if (isA(element, "bpmn:CallActivity")) fields.push(this.calledField(element));
    const timer = (element.businessObject.eventDefinitions || []).find((definition) => definition.$type === "bpmn:TimerEventDefinition");
    if (timer) fields.push(timerFields(this, element, timer));
    return fields;
  }

  /** The element's spiffworkflow:property values by name. */
  spiffProperties(element) {
    const values = {};
    for (const item of this.extensionValues(element.businessObject, "spiffworkflow:Properties")) {
      for (const property of item.get("properties")) values[property.name] = property.value;
    }
    return values;
  }

  extensionValues(bo, type) {
    const extensions = bo.get("extensionElements");
    return extensions ? extensions.get("values").filter((value) => value.$type === type) : [];
  }

  /** Commands giving `bo` an extensionElements with an element of `type` (created with `attrs`). */
  ensureExtension(element, type, attrs, commands) {
    const bo = element.businessObject;
    let extensions = bo.get("extensionElements");
    if (!extensions) {
      extensions = this.moddle.create("bpmn:ExtensionElements", { values: [] });
      extensions.$parent = bo;
      commands.push(this.update(element, bo, { extensionElements: extensions }));
    }
    let found = extensions.get("values").find((value) => value.$type === type);
    if (!found) {
      found = this.moddle.create(type, attrs);
      found.$parent = extensions;
      commands.push(this.update(element, extensions, { values: [...extensions.get("values"), found] }));
    }
    return found;
  }

  setProperty(element, name, value) {
    const commands = [];
    const existing = this.extensionValues(element.businessObject, "spiffworkflow:Properties")[0];
    if (!existing && !value) return;
    const container = existing || this.ensureExtension(element, "spiffworkflow:Properties", { properties: [] }, commands);
    const list = container.get("properties");
    const property = list.find((item) => item.name === name);
    if (property && value) commands.push(this.update(element, property, { value }));
    else if (property) commands.push(this.update(element, container, { properties: list.filter((item) => item !== property) }));
    else if (value) {
      const created = this.moddle.create("spiffworkflow:Property", { name, value });
      created.$parent = container;
      commands.push(this.update(element, container, { properties: [...list, created] }));
    }
    this.run(commands);
  }

  calledField(element) {
    const listId = "process-keys";
    const control = this.text(
      "prop-called-element",
      element.businessObject.calledElement,
      (value) => this.modeling.updateProperties(element, { calledElement: value || undefined }),
      { list: listId },
    );
    const hint = "Mã của quy trình con đã triển khai, ví dụ frag_reception.";
    const box = this.field("prop-called-element", "Quy trình được gọi (calledElement)", control, hint);
    box.append(h("datalist", { id: listId }, this.processKeys.map((key) => h("option", { value: key }))));
    return box;
  }

  // -- sequence flows -----------------------------------------------------------------------------------
  flowFields(element) {
    const bo = element.businessObject;
    const source = element.source;
    const condition = bo.conditionExpression?.body || "";
    const fields = [
      this.field(
        "prop-condition",
        "Điều kiện đi theo luồng (conditionExpression)",
        this.text("prop-condition", condition, (value) => {
          const conditionExpression = value ? this.moddle.create("bpmn:FormalExpression", { body: value }) : undefined;
          this.modeling.updateProperties(element, { conditionExpression });
        }),
        "Biểu thức Python trên dữ liệu hồ sơ, ví dụ reception_outcome == \"refused\". Để trống nếu luôn đi.",
      ),
    ];
    if (source && isA(source, "bpmn:ExclusiveGateway", "bpmn:InclusiveGateway")) {
      fields.push(
        this.checkbox(
          "prop-default-flow",
          "Nhánh mặc định của cổng (khi không điều kiện nào đúng)",
          source.businessObject.default === bo,
          (checked) => this.modeling.updateProperties(source, { default: checked ? bo : undefined }),
        ),
      );
    }
    return fields;
  }
}
