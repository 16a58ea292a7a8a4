"""Task queues: officials work the tasks of their agency and lane; applicants answer their own."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import request
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from dossiers.access import check_act, queue_filter
from dossiers.deadlines import dossier_flags
from dossiers.status import STATUS_NAMES, Status
from engine.errors import ValidationError

from . import context
from .auth import principal
from .schemas import DEADLINE_FLAGS, PageInfo, PageQuery

blp = Blueprint("tasks", __name__, url_prefix="/api/v1/tasks", description="Officials' task queues")


class TaskQuery(PageQuery):
    procedure_code = fields.String(validate=validate.Length(max=40))
    status = fields.Integer(validate=validate.Range(min=1, max=10))
    lane = fields.String(validate=validate.OneOf(["applicant", "reception", "specialist", "leader"]))
    overdue = fields.Boolean()
    due_before = fields.AwareDateTime()
    deadline = fields.String(
        validate=validate.OneOf(["due_soon", "overdue", "apology_required"]),
        metadata={"description": "only tasks of dossiers with this deadline flag set"},
    )


class TaskSchema(Schema):
    id = fields.String(required=True)
    instance_id = fields.String(required=True)
    element_id = fields.String(required=True)
    title = fields.String(allow_none=True)
    lane = fields.String(allow_none=True)
    form_ref = fields.String(allow_none=True)
    created_at = fields.DateTime()
    dossier_code = fields.String()
    procedure_code = fields.String()
    dossier_status = fields.Integer()
    dossier_status_name = fields.Method(
        "dump_status_name", metadata={"description": "the Vietnamese name of dossier_status"}
    )
    due_at = fields.DateTime(allow_none=True)
    claimed_by = fields.String(allow_none=True)
    claimed_at = fields.DateTime(allow_none=True)
    due_soon = fields.Boolean(metadata={"description": DEADLINE_FLAGS["due_soon"]})
    overdue = fields.Boolean(metadata={"description": DEADLINE_FLAGS["overdue"]})
    apology_required = fields.Boolean(metadata={"description": DEADLINE_FLAGS["apology_required"]})
    form = fields.Dict(
        allow_none=True, metadata={"description": "the JSON Schema of the form to fill, if any"}
    )

    def dump_status_name(self, task: dict[str, Any]) -> str | None:
        status = task.get("dossier_status")
        return STATUS_NAMES[Status(status)] if status is not None else None


class TaskPage(Schema):
    items = fields.List(fields.Nested(TaskSchema), required=True)
    page = fields.Nested(PageInfo, required=True)


class CountsQuery(Schema):
    procedure_code = fields.String(validate=validate.Length(max=40))


class LaneCountSchema(Schema):
    lane = fields.String(required=True)
    total = fields.Integer(required=True, metadata={"description": "ready tasks in this lane"})
    overdue = fields.Integer(required=True, metadata={"description": DEADLINE_FLAGS["overdue"]})
    due_soon = fields.Integer(required=True, metadata={"description": DEADLINE_FLAGS["due_soon"]})


class TaskCountsSchema(Schema):
    lanes = fields.List(fields.Nested(LaneCountSchema), required=True)
    total = fields.Integer(required=True)
    overdue = fields.Integer(required=True)
    due_soon = fields.Integer(required=True)


class CompleteSchema(Schema):
    data = fields.Dict(keys=fields.String(), load_default=dict)


class ClaimSchema(Schema):
    task_id = fields.String(required=True)
    claimed_by = fields.String(required=True)
    claimed_at = fields.DateTime(required=True)


class ClaimArgs(Schema):
    force = fields.Boolean(load_default=False, metadata={"description": "take over (leaders and admins)"})


class CompletedSchema(Schema):
    instance_id = fields.String(required=True, attribute="id")
    status = fields.String(required=True)
    tasks = fields.List(fields.Nested(TaskSchema))


@blp.route("")
class Tasks(MethodView):
    @blp.arguments(TaskQuery, location="query")
    @blp.response(200, TaskPage)
    @blp.doc(security=[{"bearer": []}])
    def get(self, query: dict[str, Any]) -> dict[str, Any]:
        """The caller's queue, earliest due first: by procedure, status, lane, overdue, due before, deadline
        flag (due_soon, overdue, apology_required)."""
        where = queue_filter(principal())
        if "lane" in query:
            where["lanes"] = [lane for lane in where.get("lanes", [query["lane"]]) if lane == query["lane"]]
        where.update(
            procedure_code=query.get("procedure_code"),
            status=query.get("status"),
            deadline=query.get("deadline"),
        )
        now: datetime = context.engine().now()
        due_before = query.get("due_before")
        if query.get("overdue"):
            due_before = min(due_before, now) if due_before else now
        where["due_before"] = due_before
        offset = (query["page"] - 1) * query["per_page"]
        items, total = context.dossiers().task_queue(where, offset=offset, limit=query["per_page"])
        return {
            "items": items,
            "page": {"page": query["page"], "per_page": query["per_page"], "total": total},
        }


@blp.route("/counts")
class Counts(MethodView):
    @blp.arguments(CountsQuery, location="query")
    @blp.response(200, TaskCountsSchema)
    @blp.doc(security=[{"bearer": []}])
    def get(self, query: dict[str, Any]) -> dict[str, Any]:
        """How many tasks the caller's queue (the same as GET /tasks) holds per lane and in all, with how
        many of them are overdue and due soon; optionally of one procedure."""
        where = {**queue_filter(principal()), "procedure_code": query.get("procedure_code")}
        return context.dossiers().task_counts(where)


@blp.route("/<string:task_id>")
class Task(MethodView):
    @blp.response(200, TaskSchema)
    @blp.doc(security=[{"bearer": []}])
    def get(self, task_id: str) -> Any:
        """One ready task with the JSON Schema of the form it asks for; its ETag guards the completion."""
        found = context.dossiers().task_context(task_id)
        task, dossier = found.task, found.dossier
        check_act(principal(), dossier, task["lane"])
        return (
            {
                **task,
                "dossier_code": dossier["code"],
                "procedure_code": dossier["procedure_code"],
                "dossier_status": dossier["status"],
                "due_at": dossier["due_at"],
                **dossier_flags(dossier),
                "form": context.dossiers().form_schema_for(task, dossier),
            },
            200,
            {"ETag": f'"{found.row_version}"'},
        )


@blp.route("/<string:task_id>/complete")
class Complete(MethodView):
    @blp.arguments(CompleteSchema)
    @blp.response(200, CompletedSchema)
    @blp.doc(security=[{"bearer": []}])
    def post(self, body: dict[str, Any], task_id: str) -> dict[str, Any]:
        """Complete a task with its form data (checked against the form schema); 409 if no longer ready."""
        found = context.dossiers().task_context(task_id)
        who = principal()
        check_act(who, found.dossier, found.task["lane"])
        result: dict[str, Any] = context.dossiers().complete_task(
            task_id, body["data"], actor=who.username, expected_version=_if_match(), known=found
        )
        return result


def _if_match() -> int | None:
    """The row version an ``If-Match`` header carries (the ETag of GET /tasks/<id>), if any."""
    header = request.headers.get("If-Match")
    if header is None or header.strip() == "*":
        return None
    value = header.strip().removeprefix("W/").strip('"')
    if not value.isdigit():
        raise ValidationError("If-Match must be an ETag from this API", {"If-Match": ["not an ETag"]})
    return int(value)


@blp.route("/<string:task_id>/claim")
class Claim(MethodView):
    @blp.arguments(ClaimArgs, location="query")
    @blp.response(200, ClaimSchema)
    @blp.doc(security=[{"bearer": []}])
    def post(self, args: dict[str, Any], task_id: str) -> dict[str, Any]:
        """Take a task to work on it; 409 if someone else has it (leaders may ``force`` a takeover)."""
        found = context.dossiers().task_context(task_id)
        who = principal()
        check_act(who, found.dossier, found.task["lane"])
        force = bool(args["force"]) and who.has("leader", "admin")
        claim: dict[str, Any] = context.dossiers().engine.claim_task(task_id, who.username, force=force)
        return claim


@blp.route("/<string:task_id>/unclaim")
class Unclaim(MethodView):
    @blp.arguments(ClaimArgs, location="query")
    @blp.response(204)
    @blp.doc(security=[{"bearer": []}])
    def post(self, args: dict[str, Any], task_id: str) -> None:
        """Give a task back to the queue (someone else's only with ``force``, for leaders)."""
        found = context.dossiers().task_context(task_id)
        who = principal()
        check_act(who, found.dossier, found.task["lane"])
        force = bool(args["force"]) and who.has("leader", "admin")
        context.dossiers().engine.unclaim_task(task_id, who.username, force=force)
