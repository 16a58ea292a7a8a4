"""Payment providers behind one interface: create a payment, verify a notification, query a transaction.

A provider speaks one gateway's protocol and nothing else: it never touches the database.  Which provider
serves an agency is configuration (``ProviderRegistry``); a provider whose merchant secret is not configured
refuses at use with ``PaymentUnavailableError`` (the API answers 503), never with a default secret.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from engine.errors import MotcuaError

# POST a JSON document to a URL and return the JSON answer (tests and the scheduler may pass their own).
HttpPost = Callable[[str, dict[str, Any], float], dict[str, Any]]

# What a provider says a transaction became.
PAID = "paid"
FAILED = "failed"
PENDING = "pending"
NOT_FOUND = "not_found"


class PaymentUnavailableError(MotcuaError):
    """Online payment cannot be offered now: the provider is not configured, or could not be reached."""

    code = "payment_unavailable"


class InvalidNotification(MotcuaError):
    """A notification whose signature (or merchant) does not check out: it is not from the provider."""

    code = "invalid_notification"


@dataclass(frozen=True)
class PaymentOrder:
    """What we ask a provider to collect: one attempt to pay one dossier's fees."""

    txn_ref: str
    amount: Decimal
    order_info: str
    client_ip: str
    created_at: datetime
    expires_at: datetime
    return_url: str
    locale: str = "vn"


@dataclass(frozen=True)
class Checkout:
    """Where to send the citizen's browser, and the fields the redirect carries."""

    redirect_url: str
    fields: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Notification:
    """A notification (IPN or browser return) whose signature checked out, read into our terms.

    ``amount`` is None when the amount field is not a whole number of dong; ``paid`` is whether the
    provider says the money was taken.
    """

    txn_ref: str
    amount: Decimal | None
    paid: bool
    response_code: str
    transaction_status: str
    transaction_no: str | None = None
    bank_code: str | None = None
    paid_at: datetime | None = None


@dataclass(frozen=True)
class TransactionState:
    """What the provider says about one of our transactions when asked (reconciliation).

    ``state`` is ``PAID``, ``FAILED``, ``PENDING`` (not finished) or ``NOT_FOUND`` (never reached the
    provider); ``response_code`` is the payment's own code when known.
    """

    state: str
    amount: Decimal | None = None
    response_code: str | None = None
    transaction_no: str | None = None
    bank_code: str | None = None
    paid_at: datetime | None = None
    message: str = ""


class PaymentProvider(Protocol):
    """One payment gateway."""

    name: str

    def create_payment(self, order: PaymentOrder) -> Checkout:
        """Return the signed redirect that lets the citizen pay ``order``."""
        ...

    def verify_notification(self, params: Mapping[str, str]) -> Notification:
        """Check a notification's signature and read it.

        Raises:
            InvalidNotification: the signature is missing or wrong, or it is for another merchant.
        """
        ...

    def query_transaction(self, payment: Mapping[str, Any]) -> TransactionState:
        """Ask the provider what became of a payment row (``txn_ref``, ``created_at``, ``amount``).

        Raises:
            PaymentUnavailableError: the provider could not be reached or gave no trustworthy answer.
        """
        ...


class ProviderRegistry:
    """Chooses the provider of each agency, by configuration, and builds providers when first used.

    Args:
        factories: provider name to a function building it (it raises ``PaymentUnavailableError`` when its
            configuration is missing).
        by_agency: (agency code, provider name) pairs; agencies not listed use ``default``.
        default: the provider name of every other agency.
    """

    def __init__(
        self,
        factories: Mapping[str, Callable[[], PaymentProvider]],
        by_agency: tuple[tuple[str, str], ...] = (),
        default: str = "vnpay",
    ) -> None:
        self.factories = dict(factories)
        self.by_agency = dict(by_agency)
        self.default = default
        self._built: dict[str, PaymentProvider] = {}

    def name_for(self, agency_code: str | None) -> str:
        """Return the provider name configured for an agency."""
        return self.by_agency.get(agency_code or "", self.default)

    def for_agency(self, agency_code: str | None) -> PaymentProvider:
        """Return the provider of an agency (``get`` of its configured name)."""
        return self.get(self.name_for(agency_code))

    def get(self, name: str) -> PaymentProvider:
        """Return the provider called ``name``.

        Raises:
            PaymentUnavailableError: no such provider, or it is not configured.
        """
        if name not in self._built:
            factory = self.factories.get(name)
            if factory is None:
                raise PaymentUnavailableError(
                    f"Payment provider '{name}' is not known; the providers are {', '.join(self.factories)}",
                    provider=name,
                )
            self._built[name] = factory()
        return self._built[name]
