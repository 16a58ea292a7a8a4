"""The marshmallow schemas of the procedure catalogue's files, and the checks of a form's JSON Schema.

Loading is strict: unknown keys, enum values, a ``bpmn`` key of another level and (given ``known_forms``) a
component whose form does not exist are errors.  Strings are NFC-normalised before anything else looks at
them.  Amounts are Decimal (dumped as strings); a fee ``amount`` of null is fixed locally.  Reading the files
and flattening the errors is ``dossiers/catalogue.py``'s work.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Collection, Iterable, Mapping
from functools import partial
from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

CHANNEL_KINDS = ("in_person", "online", "post")
TIME_UNITS = ("working_days", "working_hours", "days")
FEE_UNITS = ("per_request", "per_page", "per_copy")
FEE_MODES = ("before", "after", "exempt", "none")
AGENCY_LEVELS = ("province", "district", "commune")
APPLICANT_KINDS = ("citizen", "organisation", "foreigner", "overseas_vietnamese")
DELIVERY_METHODS = ("online", "desk", "post")
JSON_TYPES = ("string", "number", "integer", "boolean", "object", "array", "null")
DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"

PROCEDURE_CODE = re.compile(r"^[0-9]\.[0-9]{6}$")
AGENCY_CODE = re.compile(r"^[0-9A-Z]{3}\.[0-9A-Z]{2}\.[0-9A-Z]{2}\.[A-Z][0-9]{2}$")
BPMN_KEY = re.compile(r"^[a-z][a-z0-9_]*_l([1-4])$")
SLUG = re.compile(r"^[a-z][a-z0-9_]*$")


def nfc(value: Any) -> Any:
    """Return ``value`` with every string in it (dict keys included) normalised to Unicode NFC."""
    if isinstance(value, str):
        return unicodedata.normalize("NFC", value)
    if isinstance(value, list):
        return [nfc(item) for item in value]
    if isinstance(value, dict):
        return {nfc(key): nfc(item) for key, item in value.items()}
    return value


_text = partial(fields.String, validate=validate.Length(min=1))
_money = partial(fields.Decimal, as_string=True, validate=validate.Range(min=0))


def _choice(choices: Iterable[str], **kwargs: Any) -> fields.String:
    return fields.String(validate=validate.OneOf(tuple(choices)), **kwargs)


def _pattern(regex: re.Pattern[str], **kwargs: Any) -> fields.String:
    return fields.String(validate=validate.Regexp(regex, error="Must match {regex}."), **kwargs)


def _count(minimum: int, **kwargs: Any) -> fields.Integer:
    return fields.Integer(strict=True, validate=validate.Range(min=minimum), **kwargs)


def _add(errors: dict[str, Any], key: str, message: str) -> None:
    errors.setdefault(key, []).append(message)


def _duplicates(values: Iterable[Any]) -> list[Any]:
    return [value for value, count in Counter(values).items() if count > 1]


class _Strict(ma.Schema):
    """Unknown keys are errors; strings are NFC-normalised before anything else looks at them."""

    class Meta:
        unknown = ma.RAISE

    @ma.pre_load
    def _normalise(self, data: Any, **kwargs: Any) -> Any:
        return nfc(data)


class AgencySchema(_Strict):
    name = _text(required=True)
    code = _pattern(AGENCY_CODE, required=True)
    level = _choice(AGENCY_LEVELS, required=True)


class ApplicantTypeSchema(_Strict):
    kind = _choice(APPLICANT_KINDS, required=True)
    label = _text(required=True)


class ChannelSchema(_Strict):
    kind = _choice(CHANNEL_KINDS, required=True)
    processing_time = fields.Float(required=True, validate=validate.Range(min=0))
    unit = _choice(TIME_UNITS, required=True)
    description = _text(required=True)


class TierSchema(_Strict):
    from_unit = _count(2, required=True)
    amount = _money(required=True)


class FeeSchema(_Strict):
    code = _text(required=True)
    amount = _money(required=True, allow_none=True)
    unit = _choice(FEE_UNITS, required=True)
    max_amount = _money(load_default=None, allow_none=True)
    tiers = fields.List(fields.Nested(TierSchema), load_default=list)
    description = _text(required=True)
    mode = _choice(FEE_MODES, required=True)

    @ma.validates_schema
    def _check_fee(self, data: dict[str, Any], **kwargs: Any) -> None:
        errors: dict[str, Any] = {}
        starts = [tier["from_unit"] for tier in data.get("tiers") or ()]
        if starts and data.get("unit") == "per_request":
            _add(errors, "tiers", "Tiers need a per_page or per_copy unit.")
        if starts != sorted(set(starts)):
            _add(errors, "tiers", "Tiers must have strictly increasing from_unit.")
        if data.get("amount") is None and (starts or data.get("max_amount") is not None):
            _add(errors, "amount", "A locally fixed fee (amount null) cannot have tiers or max_amount.")
        if errors:
            raise ma.ValidationError(errors)


class CopiesSchema(_Strict):
    original = _count(0, required=True)
    copy = _count(0, required=True)


class ComponentSchema(_Strict):
    name = _text(required=True)
    form = _pattern(SLUG, required=True, allow_none=True)
    copies = fields.Nested(CopiesSchema, required=True)
    required = fields.Boolean(required=True)
    in_person_required = fields.Boolean(load_default=False)


class LegalBasisSchema(_Strict):
    number = _text(required=True)
    title = _text(required=True)
    date = fields.Date(required=True)


class CaseSchema(_Strict):
    code = _pattern(SLUG, required=True)
    name = _text(required=True)
    processing_time = fields.Float(load_default=None, allow_none=True, validate=validate.Range(min=0))
    unit = _choice(TIME_UNITS, load_default=None, allow_none=True)
    fees = fields.List(fields.Nested(FeeSchema), load_default=None, allow_none=True)

    @ma.validates_schema
    def _check_case(self, data: dict[str, Any], **kwargs: Any) -> None:
        if (data.get("processing_time") is None) != (data.get("unit") is None):
            raise ma.ValidationError("processing_time and unit go together.", "unit")


def _level_errors(data: Mapping[str, Any]) -> dict[str, Any]:
    """Problems where the service level disagrees with the process key, channels, delivery or forms."""
    errors: dict[str, Any] = {}
    level = data["level"]
    bpmn = data.get("bpmn")
    match = BPMN_KEY.match(bpmn) if bpmn else None
    if match and int(match[1]) != level:
        _add(errors, "bpmn", f"Process key '{bpmn}' is for level {match[1]}, the procedure is level {level}.")
    online = any(channel["kind"] == "online" for channel in data["channels"])
    if level >= 3 and not online:
        _add(errors, "channels", f"A level {level} procedure needs an online channel.")
    if level <= 2 and online:
        _add(errors, "channels", f"A level {level} procedure takes no online submission.")
    delivery = data.get("delivery_methods") or []
    if level == 4 and not delivery:
        _add(errors, "delivery_methods", "A level 4 procedure names its delivery methods.")
    if level < 4 and "online" in delivery:
        _add(errors, "delivery_methods", "Only level 4 returns the result online.")
    if level >= 2 and not any(component["form"] for component in data["components"]):
        _add(errors, "level", f"A level {level} procedure needs at least one component with a form.")
    return errors


def _uniqueness_errors(data: Mapping[str, Any]) -> dict[str, Any]:
    errors: dict[str, Any] = {}
    checks = {
        "channels": [channel["kind"] for channel in data["channels"]],
        "fees": [fee["code"] for fee in data["fees"]],
        "cases": [case["code"] for case in data.get("cases") or ()],
        "delivery_methods": list(data.get("delivery_methods") or ()),
    }
    for key, values in checks.items():
        for value in _duplicates(values):
            _add(errors, key, f"'{value}' appears more than once.")
    return errors


class ProcedureSchema(_Strict):
    """One procedure record; pass ``known_forms`` to check that every component's form exists."""

    code = _pattern(PROCEDURE_CODE, required=True)
    name = _text(required=True)
    sector = _text(required=True)
    agency = fields.Nested(AgencySchema, required=True)
    applicant_types = fields.List(
        fields.Nested(ApplicantTypeSchema), required=True, validate=validate.Length(min=1)
    )
    level = fields.Integer(strict=True, required=True, validate=validate.Range(min=1, max=4))
    bpmn = _pattern(BPMN_KEY, load_default=None)
    channels = fields.List(fields.Nested(ChannelSchema), required=True, validate=validate.Length(min=1))
    fees = fields.List(fields.Nested(FeeSchema), required=True)
    components = fields.List(fields.Nested(ComponentSchema), required=True, validate=validate.Length(min=1))
    steps = fields.List(_text(), required=True, validate=validate.Length(min=1))
    conditions = fields.List(_text(), load_default=list)
    result = _text(required=True)
    legal_basis = fields.List(fields.Nested(LegalBasisSchema), required=True, validate=validate.Length(min=1))
    cases = fields.List(fields.Nested(CaseSchema), load_default=list)
    delivery_methods = fields.List(_choice(DELIVERY_METHODS), load_default=lambda: ["desk"])
    in_person_required = fields.Boolean(load_default=False)
    notes = fields.List(_text(), load_default=list)

    def __init__(self, *, known_forms: Collection[str] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.known_forms = known_forms

    @ma.validates_schema
    def _check_procedure(self, data: dict[str, Any], **kwargs: Any) -> None:
        errors = {**_level_errors(data)}
        for key, messages in _uniqueness_errors(data).items():
            errors.setdefault(key, []).extend(messages)
        missing = {
            index: {"form": [f"Unknown form '{component['form']}'."]}
            for index, component in enumerate(data["components"])
            if self.known_forms is not None
            and component["form"]
            and component["form"] not in self.known_forms
        }
        if missing:
            errors["components"] = missing
        if errors:
            raise ma.ValidationError(errors)

    @ma.post_load
    def _default_bpmn(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        if data.get("bpmn") is None:
            data["bpmn"] = f"dossier_l{data['level']}"
        return data


def _json_schema_problems(node: Any, path: str, errors: dict[str, list[str]]) -> None:
    """Check an object schema: titled, typed properties, a valid ``required`` and no extra properties."""
    if not isinstance(node, dict) or node.get("type") != "object":
        _add(errors, f"{path}.type", "Must be an object schema (type 'object').")
        return
    properties = node.get("properties")
    if not isinstance(properties, dict) or not properties:
        _add(errors, f"{path}.properties", "Must list the form's fields.")
        return
    if node.get("additionalProperties") is not False:
        _add(errors, f"{path}.additionalProperties", "Must be false.")
    required = node.get("required", [])
    names_ok = isinstance(required, list) and all(isinstance(name, str) for name in required)
    if not names_ok or _duplicates(required) or not set(required) <= set(properties):
        _add(errors, f"{path}.required", "Must list distinct names of declared properties.")
    for name, prop in properties.items():
        _property_problems(prop, f"{path}.properties.{name}", errors)


def _property_problems(prop: Any, where: str, errors: dict[str, list[str]]) -> None:
    """A property needs a non-empty ``title`` and a JSON type; nested objects are checked in turn."""
    if not isinstance(prop, dict) or not isinstance(prop.get("title"), str) or not prop["title"]:
        _add(errors, where, "Each property needs a Vietnamese 'title'.")
        return
    kind = prop.get("type")
    items = prop.get("items")
    if kind not in JSON_TYPES:
        _add(errors, f"{where}.type", f"Must be one of {', '.join(JSON_TYPES)}.")
    elif kind == "object":
        _json_schema_problems(prop, where, errors)
    elif kind == "array" and isinstance(items, dict) and items.get("type") == "object":
        _json_schema_problems(items, f"{where}.items", errors)


class FormSchema(_Strict):
    """A form definition: an id, a Vietnamese title and a JSON Schema (draft 2020-12) of its fields."""

    id = _pattern(SLUG, required=True)
    title = _text(required=True)
    schema = fields.Dict(keys=fields.String(), required=True)

    @ma.validates_schema
    def _check_form(self, data: dict[str, Any], **kwargs: Any) -> None:
        errors: dict[str, list[str]] = {}
        if data["schema"].get("$schema") != DRAFT_2020_12:
            _add(errors, "schema.$schema", f"Must be '{DRAFT_2020_12}'.")
        _json_schema_problems(data["schema"], "schema", errors)
        if errors:
            raise ma.ValidationError(errors)
