"""Decision 766 style indicators per receiving agency and month (officials: their agency; analysts: any)."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from dossiers.indicators import MonthRange, agency_scope, indicators
from dossiers.visits import local_day

from . import context
from .auth import principal

blp = Blueprint(
    "indicators",
    __name__,
    url_prefix="/api/v1/stats",
    description="Chỉ số phục vụ người dân, doanh nghiệp (Decision 766/QĐ-TTg style), per agency and month",
)
MONTH = validate.Regexp(r"^[0-9]{4}-(0[1-9]|1[0-2])$", error="not a month (YYYY-MM)")
BASIS = (
    "A dossier counts in the calendar month (Asia/Ho_Chi_Minh) in which it was received, or submitted when "
    "it was never received; all its counts (finished, paid, rated...) go to that month."
)


class IndicatorQuery(Schema):
    from_ = fields.String(
        data_key="from", validate=MONTH, metadata={"description": "YYYY-MM (default: 'to' - 11)"}
    )
    to = fields.String(validate=MONTH, metadata={"description": "YYYY-MM, included (default: this month)"})
    agency_code = fields.String(
        validate=validate.Length(min=1, max=40),
        metadata={"description": "one receiving agency (default: officials their own, others all)"},
    )


class ScoreGroupSchema(Schema):
    group = fields.String(required=True)
    weight = fields.Integer(required=True)
    rate = fields.Float(allow_none=True)
    points = fields.Float(allow_none=True)


class ScoreSchema(Schema):
    indicative = fields.Boolean(
        required=True, metadata={"description": "always true: not the official index"}
    )
    points = fields.Float(required=True)
    max_points = fields.Integer(required=True, metadata={"description": "weights of the groups measured"})
    value = fields.Float(allow_none=True, metadata={"description": "points / max_points x 100"})
    groups = fields.List(fields.Nested(ScoreGroupSchema), required=True)


class IndicatorValues(Schema):
    dossiers = fields.Integer(required=True, metadata={"description": "dossiers of the month"})
    received = fields.Integer(required=True)
    received_online = fields.Integer(required=True, metadata={"description": "received, submitted online"})
    finished = fields.Integer(required=True, metadata={"description": "a result was decided (outcome set)"})
    finished_on_time = fields.Integer(required=True, metadata={"description": "finished early or on time"})
    with_fee = fields.Integer(required=True, metadata={"description": "received, of a procedure with a fee"})
    paid_online = fields.Integer(required=True, metadata={"description": "of those, paid online"})
    rated = fields.Integer(required=True)
    rating_sum = fields.Integer(required=True)
    satisfied = fields.Integer(required=True, metadata={"description": "rated 4 or 5"})
    results_electronic = fields.Integer(
        required=True, metadata={"description": "finished, electronic result"}
    )
    on_time_rate = fields.Float(allow_none=True, metadata={"description": "finished_on_time / finished"})
    online_rate = fields.Float(allow_none=True, metadata={"description": "received_online / received"})
    online_payment_rate = fields.Float(allow_none=True, metadata={"description": "paid_online / with_fee"})
    satisfaction_rate = fields.Float(allow_none=True, metadata={"description": "satisfied / rated"})
    average_rating = fields.Float(allow_none=True, metadata={"description": "rating_sum / rated (1-5)"})
    digitisation_rate = fields.Float(
        allow_none=True, metadata={"description": "results_electronic / finished"}
    )
    score = fields.Nested(ScoreSchema, required=True)


class AgencyMonthSchema(IndicatorValues):
    agency_code = fields.String(required=True)
    agency_name = fields.String(allow_none=True)
    month = fields.String(required=True)


class MonthSchema(IndicatorValues):
    month = fields.String(required=True)


class AgencySchema(Schema):
    code = fields.String(required=True)
    name = fields.String(required=True)


class IndicatorsSchema(Schema):
    from_ = fields.String(data_key="from", required=True)
    to = fields.String(required=True)
    agency_code = fields.String(allow_none=True, metadata={"description": "null: every agency"})
    month_basis = fields.String(required=True, metadata={"description": BASIS})
    agencies = fields.List(fields.Nested(AgencySchema), metadata={"description": "the agencies one may ask"})
    rows = fields.List(fields.Nested(AgencyMonthSchema), required=True, metadata={"description": "with data"})
    months = fields.List(fields.Nested(MonthSchema), required=True, metadata={"description": "every month"})
    totals = fields.Nested(IndicatorValues, required=True, metadata={"description": "the whole period"})


@blp.route("/indicators")
class Indicators(MethodView):
    @blp.arguments(IndicatorQuery, location="query")
    @blp.response(200, IndicatorsSchema)
    @blp.doc(security=[{"bearer": []}])
    def get(self, query: dict[str, Any]) -> dict[str, Any]:
        """On-time, online, online payment, satisfaction and digitisation rates per agency and month.

        Officials see their own agency (asking for another is refused); analysts and admins any, or all.
        A dossier counts in the calendar month (Asia/Ho_Chi_Minh) of its reception, or of its submission
        when never received. The weighted score covers the groups measurable from dossiers and is
        indicative only (weights 18/20/12/10/18/22 as commonly cited; publicity is not measured).
        """
        who = principal()
        agency_code = agency_scope(who, query.get("agency_code"))
        today = local_day(context.engine().now())
        period = MonthRange.parse(query.get("from_"), query.get("to"), today)
        found = indicators(context.engine().store, period, agency_code)
        agencies = found.pop("agencies")
        if not who.has("analyst", "admin"):
            agencies = {code: name for code, name in agencies.items() if code == agency_code}
        months = period.months()
        return {
            "from_": months[0],
            "to": months[-1],
            "agency_code": agency_code,
            "month_basis": BASIS,
            "agencies": [{"code": code, "name": name} for code, name in agencies.items()],
            **found,
        }
