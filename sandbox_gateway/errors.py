"""What the sandbox gateway refuses, as the domain errors its pages show."""

from __future__ import annotations

from engine.errors import ConflictError, ForbiddenError, MotcuaError

# The codes VNPay's payment page shows on its error page, and their texts.
MERCHANT_INVALID = "02"
BAD_FORMAT = "03"
EXPIRED = "15"
BAD_SIGNATURE = "70"
ALREADY_EXISTS = "01"
PAGE_ERRORS = {
    MERCHANT_INVALID: "Merchant không hợp lệ",
    BAD_FORMAT: "Dữ liệu gửi sang không đúng định dạng",
    EXPIRED: "Giao dịch đã quá thời gian chờ thanh toán",
    BAD_SIGNATURE: "Sai chữ ký",
    ALREADY_EXISTS: "Giao dịch đã tồn tại",
}


class PaymentRefused(MotcuaError):
    """The payment page refuses a request, as VNPay's error page would.

    Attributes:
        vnp_code: the code of VNPay's error page (``PAGE_ERRORS``).
        fields: the parameters at fault, when known.
    """

    code = "payment_refused"

    def __init__(self, vnp_code: str, *fields: str) -> None:
        super().__init__(PAGE_ERRORS[vnp_code], vnp_code=vnp_code, fields=list(fields) or None)
        self.vnp_code = vnp_code
        self.fields = fields


class ChoiceForbidden(ForbiddenError):
    """A choice was posted without the token of the page that offered it (or for no known transaction)."""

    code = "choice_forbidden"


class AlreadyDecided(ConflictError):
    """The customer already chose the outcome of this transaction; it cannot be chosen again.

    Attributes:
        txn_ref: the merchant's reference of the transaction.
        response_code: the ``vnp_ResponseCode`` it ended with.
    """

    code = "already_decided"

    def __init__(self, txn_ref: str, response_code: str | None) -> None:
        super().__init__(
            "Giao dịch này đã có kết quả, không thể chọn lại",
            txn_ref=txn_ref,
            response_code=response_code,
        )
        self.txn_ref = txn_ref
        self.response_code = response_code
