"""Monitoring one process instance: where it stands on its diagrams, its data, timers, incidents and trail."""

from __future__ import annotations

from typing import Any

from flask import Response
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from dossiers.monitoring import DATA_VALUE_LIMIT, instance_diagram, instance_report

from . import context
from .auth import principal

blp = Blueprint(
    "instances",
    __name__,
    url_prefix="/api/v1/instances",
    description="Giám sát quy trình: one process instance as officials, analysts and admins monitor it",
)


class DefinitionRef(Schema):
    key = fields.String(required=True)
    version = fields.Integer(required=True)


class CallerRef(Schema):
    process_key = fields.String(required=True)
    element_id = fields.String(required=True, metadata={"description": "the call activity"})


class ProcessStateSchema(Schema):
    process_key = fields.String(required=True)
    version = fields.Integer(
        allow_none=True, metadata={"description": "the deployed version this instance draws it from"}
    )
    called_from = fields.Nested(
        CallerRef, allow_none=True, metadata={"description": "null for the main process"}
    )
    completed = fields.List(fields.String(), required=True, metadata={"description": "BPMN element ids"})
    active = fields.List(
        fields.String(),
        required=True,
        metadata={"description": "ready tasks, waiting events and timers, running call activities"},
    )
    failed = fields.List(fields.String(), required=True, metadata={"description": "tasks in error"})


class DossierRef(Schema):
    code = fields.String(required=True)
    procedure_code = fields.String(required=True)
    agency_code = fields.String(required=True)
    level = fields.Integer()
    status = fields.Dict(metadata={"description": "{code, name}: TrangThaiHoSo"})
    submitted_at = fields.DateTime()
    received_at = fields.DateTime(allow_none=True)
    due_at = fields.DateTime(allow_none=True)


class ReadyTaskSchema(Schema):
    id = fields.String(required=True)
    element_id = fields.String(required=True)
    title = fields.String(allow_none=True)
    lane = fields.String(allow_none=True)
    created_at = fields.DateTime()


class TimerSchema(Schema):
    task_id = fields.String(required=True)
    element_id = fields.String(required=True)
    process_key = fields.String(allow_none=True, metadata={"description": "the diagram that shows it"})
    kind = fields.String(required=True, metadata={"description": "timer (BPMN) or retry (a service task)"})
    due_at = fields.DateTime(required=True)
    due = fields.Boolean(metadata={"description": "its time has come but it has not fired yet"})
    leased = fields.Boolean(metadata={"description": "a worker holds it now"})
    claimed_by = fields.String(allow_none=True)
    lease_until = fields.DateTime(allow_none=True)


class SubscriptionSchema(Schema):
    message_name = fields.String(required=True)
    element_id = fields.String(required=True)
    correlation = fields.Dict()


class IncidentSchema(Schema):
    id = fields.Integer(required=True)
    task_id = fields.String()
    element_id = fields.String()
    kind = fields.String()
    message = fields.String()
    attempts = fields.Integer()
    created_at = fields.DateTime()


class AuditSchema(Schema):
    id = fields.Integer(required=True)
    at = fields.DateTime(required=True)
    actor = fields.String(required=True)
    action = fields.String(required=True)
    element_id = fields.String(allow_none=True)
    task_id = fields.String(allow_none=True)
    details = fields.Dict(allow_none=True)


class InstanceMonitorSchema(Schema):
    id = fields.String(required=True)
    process_key = fields.String(required=True)
    business_key = fields.String(allow_none=True)
    status = fields.String(required=True, metadata={"description": "running, incident, completed, cancelled"})
    row_version = fields.Integer()
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
    completed_at = fields.DateTime(allow_none=True)
    definition = fields.Nested(DefinitionRef, required=True)
    dossier = fields.Nested(DossierRef, allow_none=True, metadata={"description": "null: runs no dossier"})
    processes = fields.List(
        fields.Nested(ProcessStateSchema),
        required=True,
        metadata={"description": "the main process first, then each called process that ran"},
    )
    data = fields.Dict(
        required=True,
        metadata={
            "description": f"the process data; a variable over {DATA_VALUE_LIMIT} bytes of JSON is replaced "
            'by {"truncated": true, "bytes": n}'
        },
    )
    data_truncated = fields.List(fields.String(), metadata={"description": "variables not shown whole"})
    tasks = fields.List(fields.Nested(ReadyTaskSchema))
    timers = fields.List(fields.Nested(TimerSchema), metadata={"description": "pending, earliest first"})
    subscriptions = fields.List(fields.Nested(SubscriptionSchema), metadata={"description": "message waits"})
    incidents = fields.List(fields.Nested(IncidentSchema), metadata={"description": "open incidents"})
    history = fields.List(
        fields.Nested(AuditSchema), metadata={"description": "the audit trail, oldest first"}
    )


@blp.route("/<string:instance_id>")
class InstanceMonitor(MethodView):
    @blp.response(200, InstanceMonitorSchema)
    @blp.doc(security=[{"bearer": []}])
    def get(self, instance_id: str) -> dict[str, Any]:
        """One process instance for monitoring: its diagrams' completed and active elements, data, timers,
        message waits, incidents and audit trail.

        For the officials of the dossier's agency, analysts and admins. Applicants are refused (403), even
        for their own dossier, since this shows internal data; an official of another agency gets 404.
        """
        return instance_report(context.engine(), principal(), instance_id)


@blp.route("/<string:instance_id>/processes/<string:process_key>/xml")
class InstanceDiagram(MethodView):
    @blp.response(200, content_type="application/xml")
    @blp.doc(security=[{"bearer": []}])
    def get(self, instance_id: str, process_key: str) -> Response:
        """The BPMN XML of a process this instance runs (its main process or a called one), in its version.

        Who may read it: as for the instance itself.
        """
        xml = instance_diagram(context.engine(), principal(), instance_id, process_key)
        return Response(xml, mimetype="application/xml")
