"""What applicants and the post do with a dossier's result: signed download links, collection, postal events.

A mixin of ``DossierService`` (``dossiers/service.py``).  Every change reaches the process as a message
(``result.collected``, ``post.delivered``, ``post.cancelled``), and ``DeliveryTracker``
(``dossiers/delivery.py``) records it in the same unit of work; only a ``collecting`` report, which does not
move the process, is written here directly.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from engine.errors import ConflictError, ForbiddenError, NotFoundError, ValidationError
from engine.facade import Engine

from . import delivery_store
from .delivery import POST_CANCELLED, POST_DELIVERED, RESULT_COLLECTED
from .postal import COLLECTING, DELIVERED, REPORTED, check_transition
from .result_links import ResultLinks

_MESSAGES = {DELIVERED: POST_DELIVERED, "cancelled": POST_CANCELLED}


class DossierDelivery:
    """Result delivery; ``DossierService`` is built on it and provides what is declared here."""

    engine: Engine
    _get: Callable[[str], dict[str, Any]]

    # -- the electronic result --------------------------------------------------------------------
    def _online_result(self, code: str, username: str) -> dict[str, Any]:
        """Return the dossier of ``username`` whose result is delivered online and exists.

        Raises:
            NotFoundError: no such dossier.
            ForbiddenError: it is not ``username``'s.
            ConflictError: its result is not delivered online, or there is no result yet.
        """
        dossier = self._get(code)
        if dossier["owner"] != username:
            raise ForbiddenError("Only the applicant may collect the electronic result")
        if dossier["delivery_method"] != "online":
            raise ConflictError(
                f"The result of dossier {code} is delivered {dossier['delivery_method'] or 'at the desk'}, "
                "not online",
                dossier_code=code,
            )
        with self.engine.store.unit_of_work(write=False) as uow:
            found = delivery_store.result_of(uow.conn, code)
        if found is None:
            raise ConflictError(f"Dossier {code} has no result yet", dossier_code=code)
        return dossier

    def result_link(self, code: str, username: str, links: ResultLinks) -> dict[str, Any]:
        """Return ``{"url", "expires_at"}``: a signed link for the applicant to download the result.

        Raises:
            NotFoundError, ForbiddenError, ConflictError: as ``_online_result``.
            LinksNotConfigured: no link secret is set.
        """
        self._online_result(code, username)
        return links.issue(code, username, self.engine.now())

    def collect_result(self, code: str, username: str) -> dict[str, Any]:
        """Return the result document (with ``content``) to its applicant; the first time, deliver
        ``result.collected`` so that the dossier reaches status 10 (recorded by ``DeliveryTracker``).

        Later calls return the same document and change nothing.  Two first downloads at once deliver the
        message once: the engine accepts one, and the other finds the result collected.

        Raises:
            NotFoundError, ForbiddenError: as ``_online_result``.
            ConflictError: not delivered online, no result, or the process does not wait for it yet.
        """
        self._online_result(code, username)
        found = self._result_row(code)
        if found["collected_at"] is None:
            try:
                self.engine.send_message(RESULT_COLLECTED, {"dossier_code": code}, {}, actor=username)
            except (NotFoundError, ConflictError) as exc:
                if self._result_row(code)["collected_at"] is None:
                    raise ConflictError(
                        f"The result of dossier {code} is not released for collection yet", dossier_code=code
                    ) from exc
            found = self._result_row(code)
        return found

    def _result_row(self, code: str) -> dict[str, Any]:
        with self.engine.store.unit_of_work(write=False) as uow:
            found = delivery_store.result_of(uow.conn, code, content=True)
        if found is None:
            raise NotFoundError(f"Dossier {code} has no result", dossier_code=code)
        return found

    # -- public post ------------------------------------------------------------------------------
    def postal_order(self, code: str) -> dict[str, Any]:
        """Return the postal order of a dossier with its events.

        Raises:
            NotFoundError: the dossier has no postal order.
        """
        with self.engine.store.unit_of_work(write=False) as uow:
            order = delivery_store.order_of(uow.conn, code)
            if order is None:
                raise NotFoundError(f"Dossier {code} has no postal order", dossier_code=code)
            order["events"] = delivery_store.events_of(uow.conn, order["id"])
        return order

    def report_postal_event(
        self, tracking: str, status: str, actor: str, *, at: datetime | None = None, note: str | None = None
    ) -> dict[str, Any]:
        """Record what the post reports about an order: ``collecting``, ``delivered`` or ``cancelled``.

        ``delivered`` sends ``post.delivered`` (the dossier reaches status 10), ``cancelled`` sends
        ``post.cancelled`` (the result goes back to the desk); the order and its event are written in the
        same unit of work.

        Args:
            tracking: the order's tracking number.
            status: the new state.
            actor: who reports (the post's integrator account).
            at: when it happened (default: now); between the order's registration and now.
            note: the post's remark.

        Returns:
            The order with its events.

        Raises:
            NotFoundError: no order with this tracking number.
            ValidationError: an unknown status, or ``at`` in the future or before the order.
            ConflictError: the order cannot go from its state to ``status``, or its process no longer waits.
        """
        now = self.engine.now()
        if status not in REPORTED:
            raise ValidationError(
                "Unknown postal status", {"status": [f"must be one of {', '.join(REPORTED)}"]}
            )
        if at is not None and at > now:
            raise ValidationError("A postal event cannot happen in the future", {"at": ["is in the future"]})
        moves_process = status != COLLECTING  # then the tracker writes, with the message, under its lock
        with self.engine.store.unit_of_work(write=not moves_process) as uow:
            order = delivery_store.order_by_tracking(uow.conn, tracking, for_update=not moves_process)
            if order is None:
                raise NotFoundError(f"No postal order {tracking}", tracking_number=tracking)
            check_transition(tracking, order["status"], status)
            if at is not None and at < order["created_at"]:
                raise ValidationError(
                    "A postal event cannot precede the order", {"at": ["is before the order was registered"]}
                )
            if not moves_process:
                delivery_store.set_order_status(uow.conn, order["id"], status, now)
                event = {"status": status, "at": at or now, "note": note, "actor": actor}
                delivery_store.add_event(uow.conn, order["id"], event)
        if moves_process:
            event = {
                "status": status,
                "at": (at or now).isoformat(),
                "note": note,
                "tracking_number": tracking,
            }
            try:
                self.engine.send_message(
                    _MESSAGES[status],
                    {"dossier_code": order["dossier_code"]},
                    {"postal_event": event},
                    actor=actor,
                )
            except NotFoundError as exc:
                raise ConflictError(
                    f"The process of dossier {order['dossier_code']} no longer waits for the post",
                    dossier_code=order["dossier_code"],
                ) from exc
        return self.postal_order(order["dossier_code"])
