// The moddle descriptor of the SpiffWorkflow extension elements our engine reads (engine/bpmn_tree.py,
// engine/bpmn_lint.py), shaped after SpiffWorkflow's own XSD (spiffworkflow.xsd): with it bpmn-js reads and
// writes them as typed elements, so the properties panel edits them through modeling commands (undo works)
// and the saved XML carries them. Elements not listed here still survive a round trip untouched.
export const SPIFF_NS = "http://spiffworkflow.org/bpmn/schema/1.0/core";

export const spiffModdle = {
  name: "SpiffWorkflow",
  uri: SPIFF_NS,
  prefix: "spiffworkflow",
  xml: { tagAlias: "lowerCase" },
  associations: [],
  types: [
    {
      // <spiffworkflow:properties><spiffworkflow:property name="role" value="submission"/></...>
      name: "Properties",
      superClass: ["Element"],
      properties: [{ name: "properties", type: "Property", isMany: true }],
    },
    {
      name: "Property",
      superClass: ["Element"],
      properties: [
        { name: "name", type: "String", isAttr: true },
        { name: "value", type: "String", isAttr: true },
      ],
    },
    {
      // <spiffworkflow:serviceTaskOperator id="payment.request" resultVariable="payment_request">
      //   <spiffworkflow:parameters><spiffworkflow:parameter id="amount" type="any" value="fee_total"/>...
      //   <spiffworkflow:retry retries="2" backoff_base="10"/>
      name: "ServiceTaskOperator",
      superClass: ["Element"],
      properties: [
        // Not an XML ID (operator names contain dots and repeat across tasks): a plain attribute.
        { name: "id", type: "String", isAttr: true },
        { name: "resultVariable", type: "String", isAttr: true },
        { name: "parameterList", type: "Parameters" },
        { name: "retry", type: "Retry" },
      ],
    },
    {
      name: "Parameters",
      superClass: ["Element"],
      properties: [{ name: "parameters", type: "Parameter", isMany: true }],
    },
    {
      name: "Parameter",
      superClass: ["Element"],
      properties: [
        { name: "id", type: "String", isAttr: true },
        { name: "type", type: "String", isAttr: true },
        { name: "value", type: "String", isAttr: true },
      ],
    },
    {
      name: "Retry",
      superClass: ["Element"],
      properties: [
        { name: "retries", type: "Integer", isAttr: true },
        { name: "backoff_base", type: "Integer", isAttr: true },
      ],
    },
    {
      name: "InstructionsForEndUser",
      superClass: ["Element"],
      properties: [{ name: "text", type: "String", isBody: true }],
    },
  ],
  enumerations: [],
};
