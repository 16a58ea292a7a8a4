// Forms generated from a JSON Schema (the procedures' declaration forms, the officials' task forms).
//
// STABLE INTERFACE (other pages import it; keep these signatures):
//
//   renderForm(container, schema, { prefix = "", values = {}, idPrefix = "f", disabled = false })
//     Replaces the children of `container` with labelled inputs for `schema` (an object schema), filled with
//     `values` (or each property's `default`). Every input's `name` is the dotted path the API uses in the
//     `errors` of a 422 problem: with prefix "form_data", property ho_ten is "form_data.ho_ten" and the third
//     field of the first row of an array is "form_data.qua_trinh_cu_tru.0.noi_cu_tru"; so ui.showErrors(form,
//     error) puts each message under its input. The root (when `prefix` is given) and every array or object is a
//     <fieldset> carrying its own path as `name`, so errors about the whole group land there too.
//     Rendering: title -> <label>, description -> hint, required -> "*" mark and aria-required;
//     string: enum or oneOf[{const, title}] -> <select>, format date -> type=date, email -> type=email,
//     phone-like names or format "tel" -> type=tel, maxLength > 300 or format "textarea" -> <textarea>;
//     integer / number -> type=number; boolean -> checkbox; object -> nested <fieldset>; array of scalars or of
//     objects -> repeatable rows with "Thêm ..." / "Xóa ..." buttons (real <button>s, keyboard usable).
//     `disabled: true` renders everything read-only. Returns the container.
//
//   readForm(container, schema, { prefix = "" }) -> the JSON value the inputs hold, shaped by `schema`:
//     empty text is left out (so "required" is reported by the server, not a "" that breaks minLength),
//     numbers are numbers, checkboxes booleans, array rows in order (row indexes match the input names).
//
//   localizeErrors(errors, schema, { prefix = "" }) -> a copy of a problem's `errors` ({path: [messages]}) with
//     Vietnamese messages, derived from the schema rule that failed (jsonschema and marshmallow speak English).
//
//   friendlyError(apiError, schema, { prefix = "" }) -> an object to give ui.showErrors: Vietnamese title and
//     summary for the HTTP status, and localized field messages (schema may be null for plain API fields).
//
//   renderValues(schema, values) -> a <dl class="facts"> showing declared values read-only with their titles.
import { clear, h } from "./ui.js";

const PHONE_NAME = /(^|_)(dien_thoai|so_dien_thoai|phone|tel)$/;

// -- paths and ids ------------------------------------------------------------------------------------------
function join(prefix, key) {
  return prefix === "" ? String(key) : `${prefix}.${key}`;
}

function idFor(state, path) {
  return `${state.idPrefix}-${(path || "root").replace(/[^A-Za-z0-9_-]/g, "-")}`;
}

function required(schema, key) {
  return Array.isArray(schema.required) && schema.required.includes(key);
}

function titleOf(schema, key) {
  return schema.title || key;
}

function choices(schema) {
  if (Array.isArray(schema.enum)) return schema.enum.map((value) => ({ value, title: String(value) }));
  if (Array.isArray(schema.oneOf) && schema.oneOf.every((option) => "const" in option)) {
    return schema.oneOf.map((option) => ({ value: option.const, title: option.title || String(option.const) }));
  }
  return null;
}

function typeOf(schema) {
  if (Array.isArray(schema.type)) return schema.type.find((type) => type !== "null") || "string";
  if (schema.type) return schema.type;
  if (schema.properties) return "object";
  if (schema.items) return "array";
  return "string";
}

// -- rendering ----------------------------------------------------------------------------------------------
export function renderForm(container, schema, { prefix = "", values = {}, idPrefix = "f", disabled = false } = {}) {
  const state = { idPrefix, disabled };
  clear(container);
  const body = objectFields(state, schema || {}, prefix, values || {});
  if (prefix) {
    const root = h(
      "fieldset",
      { class: "field schema-form", name: prefix, id: idFor(state, prefix), disabled },
      schema?.title ? h("legend", {}, schema.title) : null,
      schema?.description ? h("p", { class: "hint" }, schema.description) : null,
      body,
    );
    container.append(root);
  } else {
    container.append(...body);
    if (disabled) container.querySelectorAll("input, select, textarea, button").forEach((node) => (node.disabled = true));
  }
  return container;
}

function objectFields(state, schema, path, values) {
  return Object.entries(schema.properties || {}).map(([key, property]) =>
    field(state, property, join(path, key), values?.[key], required(schema, key), key),
  );
}

function field(state, schema, path, value, isRequired, key) {
  const type = typeOf(schema);
  const initial = value === undefined ? schema.default : value;
  if (type === "object") return objectGroup(state, schema, path, initial, isRequired, key);
  if (type === "array") return arrayGroup(state, schema, path, initial, isRequired, key);
  if (type === "boolean") return checkbox(state, schema, path, initial, isRequired, key);
  return scalar(state, schema, path, initial, isRequired, key);
}

function mark(isRequired) {
  return isRequired ? h("span", { class: "required", "aria-hidden": "true" }, " *") : null;
}

function hint(state, schema, path) {
  if (!schema.description) return { node: null, id: null };
  const id = `${idFor(state, path)}-hint`;
  return { node: h("p", { class: "hint", id }, schema.description), id };
}

function scalar(state, schema, path, value, isRequired, key) {
  const id = idFor(state, path);
  const help = hint(state, schema, path);
  const common = {
    id,
    name: path,
    "aria-required": isRequired ? "true" : null,
    "aria-describedby": help.id,
    readonly: schema.readOnly || null,
    disabled: state.disabled,
  };
  return h(
    "div",
    { class: "field" },
    h("label", { for: id }, titleOf(schema, key), mark(isRequired)),
    help.node,
    control(schema, key, common, value),
  );
}

function control(schema, key, attrs, value) {
  const options = choices(schema);
  const type = typeOf(schema);
  if (options) {
    const text = (item) => (typeof item === "string" ? item : JSON.stringify(item));
    const select = h(
      "select",
      attrs,
      h("option", { value: "" }, "— Chọn —"),
      options.map((option) => h("option", { value: text(option.value) }, option.title)),
    );
    select.value = value === undefined || value === null ? "" : text(value);
    return select;
  }
  if (type === "integer" || type === "number") {
    return h("input", {
      ...attrs,
      type: "number",
      inputmode: type === "integer" ? "numeric" : "decimal",
      step: type === "integer" ? "1" : "any",
      min: schema.minimum,
      max: schema.maximum,
      value: value ?? null,
    });
  }
  if (schema.format === "textarea" || (schema.maxLength || 0) > 300) {
    const area = h("textarea", { ...attrs, rows: 4, maxlength: schema.maxLength });
    area.value = value ?? "";
    return area;
  }
  const inputType =
    { date: "date", email: "email", tel: "tel", "date-time": "datetime-local" }[schema.format] ||
    (PHONE_NAME.test(key || "") ? "tel" : "text");
  return h("input", {
    ...attrs,
    type: inputType,
    maxlength: schema.maxLength,
    autocomplete: inputType === "email" ? "email" : inputType === "tel" ? "tel" : null,
    value: value ?? null,
  });
}

function checkbox(state, schema, path, value, isRequired, key) {
  const id = idFor(state, path);
  const help = hint(state, schema, path);
  const box = h("input", {
    type: "checkbox",
    id,
    name: path,
    "aria-required": isRequired ? "true" : null,
    "aria-describedby": help.id,
    disabled: state.disabled || schema.readOnly,
  });
  box.checked = value === true;
  return h(
    "div",
    { class: "field field-check" },
    box,
    h("label", { for: id }, titleOf(schema, key), mark(isRequired)),
    help.node,
  );
}

function objectGroup(state, schema, path, value, isRequired, key) {
  return h(
    "fieldset",
    { class: "field", name: path, id: idFor(state, path) },
    h("legend", {}, titleOf(schema, key), mark(isRequired)),
    schema.description ? h("p", { class: "hint" }, schema.description) : null,
    objectFields(state, schema, path, value || {}),
  );
}

function arrayGroup(state, schema, path, value, isRequired, key) {
  const group = h("fieldset", { class: "field repeat", name: path, id: idFor(state, path) });
  const rows = Array.isArray(value) ? value.slice() : [];
  while (rows.length < (schema.minItems || 0)) rows.push(undefined);
  drawArray(state, group, schema, path, rows, isRequired, key);
  return group;
}

function drawArray(state, group, schema, path, rows, isRequired, key) {
  const items = schema.items || { type: "string" };
  const itemTitle = items.title || "mục";
  clear(group).append(h("legend", {}, titleOf(schema, key), mark(isRequired)));
  if (schema.description) group.append(h("p", { class: "hint" }, schema.description));
  const list = h("ol", { class: "repeat-rows" });
  rows.forEach((row, index) => {
    const rowPath = join(path, index);
    const isObject = typeOf(items) === "object";
    const inner = isObject
      ? h("fieldset", { class: "repeat-row", name: rowPath, id: idFor(state, rowPath) },
          h("legend", {}, `${itemTitle} ${index + 1}`), objectFields(state, items, rowPath, row || {}))
      : field(state, { ...items, title: `${itemTitle} ${index + 1}` }, rowPath, row, false, String(index));
    const remove = state.disabled
      ? null
      : h("button", {
          type: "button",
          class: "button-secondary",
          "aria-label": `Xóa ${itemTitle.toLowerCase()} ${index + 1}`,
          disabled: rows.length <= (schema.minItems || 0),
          onclick: () => {
            const current = readArray(group, schema, path);
            current.splice(index, 1);
            drawArray(state, group, schema, path, current, isRequired, key);
            group.querySelector(".repeat-add")?.focus();
          },
        }, "Xóa");
    list.append(h("li", {}, inner, remove));
  });
  group.append(list);
  if (!state.disabled && !(schema.maxItems && rows.length >= schema.maxItems)) {
    group.append(
      h("button", {
        type: "button",
        class: "button-secondary repeat-add",
        onclick: () => {
          const current = readArray(group, schema, path);
          current.push(undefined);
          drawArray(state, group, schema, path, current, isRequired, key);
          const added = group.querySelectorAll(".repeat-rows > li");
          added[added.length - 1]?.querySelector("input, select, textarea")?.focus();
        },
      }, `Thêm ${itemTitle.toLowerCase()}`),
    );
  }
}

// -- reading ------------------------------------------------------------------------------------------------
export function readForm(container, schema, { prefix = "" } = {}) {
  return readObject(container, schema || {}, prefix) || {};
}

function byName(container, name) {
  return container.querySelector(`[name="${CSS.escape(name)}"]`);
}

function readValue(container, schema, path) {
  const type = typeOf(schema);
  if (type === "object") return readObject(container, schema, path);
  if (type === "array") return readArray(container, schema, path);
  const input = byName(container, path);
  if (!input) return undefined;
  if (type === "boolean") return input.checked;
  const raw = input.value;
  if (raw === "") return undefined;
  if (choices(schema) && type !== "string") {
    try {
      return JSON.parse(raw);
    } catch (error) {
      return raw;
    }
  }
  if (type === "integer" || type === "number") {
    const number = Number(raw);
    return Number.isFinite(number) ? number : raw;
  }
  return raw;
}

function readObject(container, schema, path) {
  const result = {};
  for (const [key, property] of Object.entries(schema.properties || {})) {
    const value = readValue(container, property, join(path, key));
    if (value !== undefined) result[key] = value;
  }
  return result;
}

function readArray(container, schema, path) {
  const items = schema.items || { type: "string" };
  const rows = [];
  for (let index = 0; ; index += 1) {
    const rowPath = join(path, index);
    if (!byName(container, rowPath) && !container.querySelector(`[name^="${CSS.escape(rowPath)}."]`)) break;
    const value = readValue(container, items, rowPath);
    rows.push(value === undefined ? (typeOf(items) === "object" ? {} : "") : value);
  }
  return rows;
}

// -- errors in Vietnamese -----------------------------------------------------------------------------------
function schemaAt(schema, parts) {
  let node = schema;
  for (const part of parts) {
    if (!node) return null;
    if (typeOf(node) === "array") node = node.items;
    else node = (node.properties || {})[part];
  }
  return node || null;
}

const GENERIC = [
  [/^(required|Missing data for required field\.?)$/i, () => "Vui lòng nhập thông tin này."],
  [/Not a valid email/i, () => "Địa chỉ thư điện tử không hợp lệ."],
  [/Not a valid (integer|number)/i, () => "Vui lòng nhập một số."],
  [/Not a valid (date|datetime)/i, () => "Ngày không hợp lệ."],
  [/Unknown field/i, () => "Trường này không thuộc mẫu khai."],
  [/^(.+): larger than (\d+) MiB$/, (m) => `${m[1]}: tệp lớn hơn ${m[2]} MB.`],
  [/^(.+): the content is not PDF, JPEG or PNG/, (m) => `${m[1]}: nội dung không phải PDF, JPEG hoặc PNG.`],
  [/^at most (\d+) files$/, (m) => `Chỉ được đính kèm tối đa ${m[1]} tệp mỗi lần.`],
  [/^at least one file$/, () => "Vui lòng chọn ít nhất một tệp."],
  [/^Must be one of|must be one of/i, () => "Vui lòng chọn một giá trị trong danh sách."],
  [/does not match|String does not match expected pattern/i, () => "Không đúng định dạng yêu cầu."],
  [/Length must be between (\d+) and (\d+)/i, (m) => `Độ dài phải từ ${m[1]} đến ${m[2]} ký tự.`],
  [/Shorter than minimum length (\d+)/i, (m) => `Cần ít nhất ${m[1]} ký tự.`],
  [/Longer than maximum length (\d+)/i, (m) => `Không được quá ${m[1]} ký tự.`],
  [/Must be greater than or equal to (\S+) and less than or equal to (\S+)\./i, (m) => `Giá trị phải từ ${m[1]} đến ${m[2]}.`],
];

function fromRule(message, node) {
  if (!node) return null;
  const type = typeOf(node);
  if (/^required$|^Missing data for required field/.test(message)) {
    if (choices(node)) return "Vui lòng chọn một giá trị.";
    if (type === "boolean") return "Bạn cần đánh dấu xác nhận này.";
    if (type === "array") return `Cần khai ít nhất ${node.minItems || 1} mục.`;
    if (node.format === "date") return "Vui lòng nhập ngày.";
    return "Vui lòng nhập thông tin này.";
  }
  if (/should be non-empty|is too short/.test(message)) {
    return type === "array" ? `Cần khai ít nhất ${node.minItems || 1} mục.` : "Vui lòng nhập thông tin này.";
  }
  if (/is too long|expected to be empty/.test(message)) {
    return type === "array" ? `Chỉ được khai tối đa ${node.maxItems} mục.` : `Không được quá ${node.maxLength} ký tự.`;
  }
  if (/is not a 'date'/.test(message)) return "Ngày không hợp lệ.";
  if (/is not a 'email'/.test(message)) return "Địa chỉ thư điện tử không hợp lệ.";
  if (/is not a '/.test(message)) return "Không đúng định dạng yêu cầu.";
  if (/does not match/.test(message)) return patternMessage(message, node);
  if (/less than the minimum of|less than or equal to the minimum/.test(message)) return `Giá trị nhỏ nhất là ${node.minimum ?? node.exclusiveMinimum}.`;
  if (/greater than the maximum of|greater than or equal to the maximum/.test(message)) return `Giá trị lớn nhất là ${node.maximum ?? node.exclusiveMaximum}.`;
  if (/is not one of|is not valid under any of the given schemas/.test(message) && choices(node)) {
    return "Vui lòng chọn một giá trị trong danh sách.";
  }
  if (/was expected/.test(message)) {
    return type === "boolean" ? "Bạn cần đánh dấu xác nhận này." : "Giá trị này không được chấp nhận trong trường hợp đã khai.";
  }
  if (/is not of type/.test(message)) {
    return { integer: "Vui lòng nhập một số nguyên.", number: "Vui lòng nhập một số." }[type] || "Kiểu dữ liệu không đúng.";
  }
  if (/Additional properties are not allowed/.test(message)) return "Có thông tin không thuộc mẫu khai.";
  if (/is not valid under any of the given schemas/.test(message)) return anyOfMessage(node);
  return null;
}

function patternMessage(message, node) {
  const pattern = (message.match(/does not match '(.*)'$/) || [])[1] || node.pattern || "";
  let found = pattern.match(/^\^\[0-9\]\{(\d+)\}\$$/);
  if (found) return `Không đúng định dạng: cần đúng ${found[1]} chữ số.`;
  found = pattern.match(/^\^\[A-Za-z0-9\]\{(\d+),(\d+)\}\$$/);
  if (found) return `Không đúng định dạng: gồm ${found[1]} đến ${found[2]} chữ cái hoặc chữ số, không dấu cách.`;
  if (pattern.includes("+84")) return "Số điện thoại không hợp lệ: bắt đầu bằng 0 hoặc +84, 10-11 chữ số.";
  if (pattern.includes("[0-9]{4}") && pattern.includes("/")) return "Không đúng định dạng: nhập tháng/năm dạng MM/YYYY.";
  return "Không đúng định dạng yêu cầu.";
}

function anyOfMessage(node) {
  const groups = (node.anyOf || node.oneOf || []).map((branch) => branch.required || []);
  if (groups.length && groups.every((names) => names.length)) {
    const titles = groups.map((names) => names.map((name) => node.properties?.[name]?.title || name).join(" và "));
    return `Cần khai ít nhất một trong các mục: ${titles.join("; ")}.`;
  }
  return "Thông tin khai chưa thỏa điều kiện của mẫu.";
}

function translate(message, node) {
  const byRule = fromRule(message, node);
  if (byRule) return byRule;
  for (const [pattern, make] of GENERIC) {
    const found = message.match(pattern);
    if (found) return make(found);
  }
  return message;
}

export function localizeErrors(errors, schema, { prefix = "" } = {}) {
  const result = {};
  for (const [key, messages] of Object.entries(errors || {})) {
    const list = Array.isArray(messages) ? messages.map(String) : [String(messages)];
    let node = null;
    if (schema && (prefix === "" || key === prefix || key.startsWith(`${prefix}.`))) {
      const rest = prefix === "" ? key : key.slice(prefix.length + 1);
      node = schemaAt(schema, rest === "" ? [] : rest.split("."));
    }
    result[key] = [...new Set(list.map((message) => translate(message, node)))];
  }
  return result;
}

const TITLES = {
  0: "Không kết nối được máy chủ",
  400: "Yêu cầu không hợp lệ",
  401: "Phiên đăng nhập đã hết hạn",
  403: "Bạn không có quyền thực hiện thao tác này",
  404: "Không tìm thấy",
  409: "Không thực hiện được ở bước hiện tại của hồ sơ",
  412: "Dữ liệu đã thay đổi, vui lòng tải lại trang",
  413: "Tệp đính kèm quá lớn (tối đa 10 MB mỗi tệp)",
  415: "Tệp đính kèm phải là PDF, JPEG hoặc PNG",
  422: "Thông tin chưa hợp lệ",
  429: "Bạn thao tác quá nhanh, vui lòng thử lại sau ít phút",
};

export function friendlyError(apiError, schema, { prefix = "" } = {}) {
  const status = apiError?.status ?? 0;
  const errors = localizeErrors(apiError?.errors || {}, schema, { prefix });
  const count = Object.keys(errors).length;
  const title = TITLES[status] || (status >= 500 ? "Hệ thống đang bận, vui lòng thử lại sau" : "Không thực hiện được");
  let message = count ? `Vui lòng sửa ${count} mục được đánh dấu bên dưới.` : "";
  if (status === 0) message = apiError.message;
  if ((status === 413 || status === 415) && apiError?.problem?.filenames?.length) {
    message = `Tệp: ${apiError.problem.filenames.join(", ")}.`;
  }
  return { status, problem: { title }, message, errors };
}

// -- read-only display --------------------------------------------------------------------------------------
function shown(schema, value) {
  if (value === undefined || value === null || value === "") return "—";
  if (typeof value === "boolean") return value ? "Có" : "Không";
  const options = choices(schema || {});
  if (options) return options.find((option) => option.value === value)?.title ?? String(value);
  if ((schema || {}).format === "date" && /^\d{4}-\d{2}-\d{2}$/.test(value)) return value.split("-").reverse().join("/");
  return String(value);
}

export function renderValues(schema, values) {
  const list = h("dl", { class: "facts" });
  for (const [key, property] of Object.entries(schema?.properties || {})) {
    const value = values?.[key];
    const type = typeOf(property);
    let shownValue;
    if (type === "object") shownValue = renderValues(property, value || {});
    else if (type === "array") {
      shownValue = h(
        "ol",
        {},
        (value || []).map((row) => h("li", {}, typeOf(property.items || {}) === "object" ? renderValues(property.items, row) : shown(property.items, row))),
      );
    } else shownValue = shown(property, value);
    list.append(h("dt", {}, titleOf(property, key)), h("dd", {}, shownValue));
  }
  return list;
}
