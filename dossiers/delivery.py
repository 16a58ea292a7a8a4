"""Result delivery kept in step with the process: the result document, the postal order, the hand-over.

``DeliveryTracker`` is an engine listener like ``DossierTracker`` (and registered after it), so what it writes
commits with the process step that caused it, or not at all:

- the leader's approval (a task completed with ``approval`` = ``approve``) stores the result document, a PDF,
  with its SHA-256, and tells webhooks ``dossier.result_ready``;
- the process starting to wait for the post (the element with role ``delivery_post_wait``) registers the
  postal order with its tracking number, once: a retried ``delivery.post`` task has not reached the wait;
- message ``result.collected`` (the applicant's first download) records who collected the electronic result;
  ``post.delivered`` and ``post.cancelled`` record the post's report on the order, refusing a state that may
  not follow the order's current one (``dossiers/postal.py``);
- a reception task that brings the dossier to status 10 is the hand-over at the desk: it records who handed
  the result to whom (``handed_over_to`` and, at level 4, ``receiver_id_number``, both required there).

Whichever way a message arrives (the result link, the postal endpoint, ``/api/v1/messages``, the CLI), the
record and the process move together; a refused record rolls the step back with a domain error.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Connection

from engine.errors import ValidationError
from engine.runtime import InstanceChange
from payments.fees import DEFAULT_POSTAGE_VND, whole_dong

from . import delivery_store, documents, store, webhooks
from .postal import CANCELLED, DELIVERED, check_transition
from .status import Status, status_at

RESULT_COLLECTED = "result.collected"
POST_DELIVERED = "post.delivered"
POST_CANCELLED = "post.cancelled"
POST_WAIT_ROLE = "delivery_post_wait"
MEDIA_TYPE = "application/pdf"
_ID_NUMBER = re.compile(r"^[A-Za-z0-9]{6,20}$")


def result_filename(code: str) -> str:
    """Return the file name a dossier's result document is downloaded as."""
    return f"ket-qua-{code}.pdf"


def receiver_note(given: Mapping[str, Any]) -> str | None:
    """Return the process-control slip's note for a hand-over at the desk: who received the result."""
    name = str(given.get("handed_over_to") or "").strip()
    if not name:
        return None
    number = str(given.get("receiver_id_number") or "").strip()
    return f"Người nhận kết quả: {name}" + (f", giấy tờ tùy thân số {number}" if number else "")


def _details(entry: Mapping[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(entry.get("details") or "{}")
    return found


def _hop(
    dossier: Mapping[str, Any], change: InstanceChange, entry: Mapping[str, Any], **row: Any
) -> dict[str, Any]:
    """A row of the process-control slip for a delivery step."""
    return {
        "dossier_code": dossier["code"],
        "at": change.now,
        "element_id": entry["element_id"] or "delivery",
        "actor": change.actor,
        **row,
    }


_MESSAGES = (RESULT_COLLECTED, POST_DELIVERED, POST_CANCELLED)


def _delivery_steps(change: InstanceChange) -> tuple[list[Any], list[Any], list[Any]]:
    """Sort out, from the change alone, what concerns delivery: approvals (entry, data given), desk
    hand-overs that returned the result (data given), and delivery messages (entry)."""
    returned = status_at(change.projection.position) == Status.RESULT_RETURNED
    approvals, hand_overs, messages = [], [], []
    for entry in change.audit:
        if entry["action"] == "task_completed":
            given = change.submitted.get(entry["task_id"] or "", {})
            if given.get("approval") == "approve":
                approvals.append((entry, given))
            elif returned and _details(entry).get("lane") == "reception":
                hand_overs.append(given)
        elif entry["action"] == "message_received" and _details(entry).get("message") in _MESSAGES:
            messages.append(entry)
    return approvals, hand_overs, messages


class DeliveryTracker:
    """The engine listener that stores results, registers postal orders and records every hand-over.

    Args:
        postage_vnd: the postage of an order whose process data does not say (``postage``).
    """

    def __init__(self, postage_vnd: int = DEFAULT_POSTAGE_VND) -> None:
        self.postage_vnd = postage_vnd

    def __call__(self, conn: Connection, change: InstanceChange) -> None:
        """Apply one instance change to the delivery records of the dossier it belongs to.

        Runs in every unit of work, so it decides from the change alone whether there is anything to do
        before it reads the dossier (most steps are not about delivery).
        """
        if change.business_key is None:
            return
        approvals, hand_overs, messages = _delivery_steps(change)
        post_wait = any(
            p.get("properties", {}).get("role") == POST_WAIT_ROLE for p in change.projection.position
        )
        if not (approvals or hand_overs or messages or post_wait):
            return
        dossier = store.get_dossier(conn, change.business_key)
        if dossier is None or dossier["instance_id"] != change.instance_id:
            return
        for entry, given in approvals:
            self._store_result(conn, dossier, change, entry["actor"], given)
        for given in hand_overs:
            self._handed_over(conn, dossier, change, given)
        for entry in messages:
            self._message(conn, dossier, change, entry)
        if post_wait:
            self._register_order(conn, dossier, change)

    @staticmethod
    def _store_result(
        conn: Connection,
        dossier: Mapping[str, Any],
        change: InstanceChange,
        leader: str,
        given: Mapping[str, Any],
    ) -> None:
        code = dossier["code"]
        procedure = store.get_procedure(conn, dossier["procedure_code"]) or {
            "code": dossier["procedure_code"]
        }
        text = change.data.get("draft_result") or given.get("draft_result") or ""
        approval = {
            "at": change.now,
            "leader": delivery_store.full_name(conn, leader),
            "note": given.get("approval_note"),
        }
        pdf = documents.render_result(dossier, procedure, str(text), approval)
        digest = hashlib.sha256(pdf).hexdigest()
        values = {
            "dossier_code": code,
            "filename": result_filename(code),
            "media_type": MEDIA_TYPE,
            "sha256": digest,
            "content": pdf,
            "approved_by": leader,
            "created_at": change.now,
        }
        if delivery_store.insert_result_once(conn, values):
            payload = {
                "code": code,
                "procedure_code": dossier["procedure_code"],
                "sha256": digest,
                "delivery_method": dossier["delivery_method"],
                "at": change.now.astimezone(UTC).isoformat(),
            }
            webhooks.enqueue(conn, webhooks.RESULT_READY, payload, change.now, dossier_code=code)

    @staticmethod
    def _handed_over(
        conn: Connection, dossier: Mapping[str, Any], change: InstanceChange, given: Mapping[str, Any]
    ) -> None:
        name = str(given.get("handed_over_to") or "").strip()
        number = str(given.get("receiver_id_number") or "").strip()
        errors: dict[str, list[str]] = {}
        if int(dossier["level"]) >= 4 and not name:
            errors["handed_over_to"] = ["required: the full name of who received the result"]
        if len(name) > 200:
            errors["handed_over_to"] = ["at most 200 characters"]
        if (int(dossier["level"]) >= 4 or number) and not _ID_NUMBER.match(number):
            errors["receiver_id_number"] = [
                "required: the receiver's ID document number, 6-20 letters or digits"
            ]
        if errors:
            raise ValidationError("The hand-over must record who received the result", errors)
        values = {
            "collected_at": change.now,
            "collected_by": name or None,
            "collected_via": "desk",
            "handed_over_by": change.actor,
            "receiver_id_number": number or None,
        }
        delivery_store.mark_collected(conn, dossier["code"], values)

    # -- messages ---------------------------------------------------------------------------------
    def _message(
        self, conn: Connection, dossier: Mapping[str, Any], change: InstanceChange, entry: Mapping[str, Any]
    ) -> None:
        name = _details(entry).get("message")
        if name == RESULT_COLLECTED:
            values = {"collected_at": change.now, "collected_by": change.actor, "collected_via": "online"}
            delivery_store.mark_collected(conn, dossier["code"], values)
            hop = _hop(dossier, change, entry, from_role="reception", to_role="applicant", result="collected")
            store.add_handovers(conn, [{**hop, "note": "Công dân tải kết quả điện tử"}])
        elif name in (POST_DELIVERED, POST_CANCELLED):
            self._post_report(
                conn, dossier, change, entry, DELIVERED if name == POST_DELIVERED else CANCELLED
            )

    @staticmethod
    def _post_report(
        conn: Connection,
        dossier: Mapping[str, Any],
        change: InstanceChange,
        entry: Mapping[str, Any],
        status: str,
    ) -> None:
        code = dossier["code"]
        order = delivery_store.order_of(conn, code, for_update=True)
        if order is None:  # a process started on an older frag_delivery, which registered no order
            return
        number = order["tracking_number"]
        check_transition(number, order["status"], status)
        event = change.data.get("postal_event")
        event = event if isinstance(event, Mapping) and event.get("status") == status else {}
        at = datetime.fromisoformat(event["at"]) if event.get("at") else change.now
        note = event.get("note") or None
        delivery_store.set_order_status(conn, order["id"], status, change.now)
        delivery_store.add_event(
            conn, order["id"], {"status": status, "at": at, "note": note, "actor": change.actor}
        )
        if status == DELIVERED:
            values = {
                "collected_at": at,
                "collected_by": order["recipient"],
                "collected_via": "post",
                "handed_over_by": change.actor,
            }
            delivery_store.mark_collected(conn, code, values)
            hop = _hop(dossier, change, entry, from_role="reception", to_role="applicant", result="delivered")
            store.add_handovers(conn, [{**hop, "note": f"Bưu chính đã phát bưu gửi {number}"}])
        else:
            hop = _hop(dossier, change, entry, from_role="post", to_role="reception", result="cancelled")
            text = (
                f"Bưu gửi {number} bị hủy phát" + (f" ({note})" if note else "") + "; trả kết quả tại một cửa"
            )
            store.add_handovers(conn, [{**hop, "note": text}])

    # -- the postal order -------------------------------------------------------------------------
    def _register_order(self, conn: Connection, dossier: Mapping[str, Any], change: InstanceChange) -> None:
        if delivery_store.order_of(conn, dossier["code"]) is not None:
            return
        request = change.data.get("postal_request")
        request = request if isinstance(request, Mapping) else {}
        applicant = dossier.get("applicant") or {}
        postage = change.data.get("postage")
        values = {
            "dossier_code": dossier["code"],
            "recipient": request.get("recipient") or applicant.get("name") or "",
            "address": request.get("address") or applicant.get("address") or "",
            "phone": (str(request.get("phone") or applicant.get("phone") or "")[:20]) or None,
            "postage": whole_dong(self.postage_vnd if postage is None else postage, "postage"),
        }
        delivery_store.register_order(conn, values, change.now, change.actor)
