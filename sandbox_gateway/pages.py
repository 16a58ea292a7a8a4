"""The gateway's pages, in Vietnamese: self-contained (no scripts, no external assets), escaped by Jinja."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from decimal import Decimal

from jinja2 import DictLoader, Environment, StrictUndefined, select_autoescape

from payments import vnpay_protocol as vnp

from .bank import CHOICES, Offer

SANDBOX_NOTICE = "Cổng thanh toán thử nghiệm — không dùng tiền thật"

STYLE = """
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;color:#1a1a1a;
background:#f2f5f9}
header{background:#005baa;color:#fff;padding:.75rem 1rem}
header p{margin:0}
.brand{font-weight:700;font-size:1.25rem}
.notice{background:#fff4ce;color:#5c4500;border-bottom:2px solid #e0b400;padding:.5rem 1rem;font-weight:600}
main{max-width:40rem;margin:1.5rem auto;background:#fff;border-radius:8px;padding:1.25rem 1.5rem;
box-shadow:0 1px 4px rgba(0,0,0,.15)}
h1{font-size:1.4rem;margin-top:0}
h2{font-size:1.1rem}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.4rem 1rem}
dt{font-weight:600;color:#444}
dd{margin:0;overflow-wrap:anywhere}
.amount{font-size:1.3rem;font-weight:700;color:#b00020;white-space:nowrap}
.choices{display:grid;gap:.75rem}
.choices form{margin:0}
button{width:100%;font:inherit;font-weight:600;padding:.75rem 1rem;border-radius:6px;cursor:pointer;
border:2px solid #004a8c;background:#fff;color:#004a8c;text-align:left}
button.paid{background:#0b6e2e;border-color:#0b6e2e;color:#fff}
button:focus-visible{outline:3px solid #ffbf47;outline-offset:2px}
.hint{margin:.25rem 0 0;font-size:.875rem;color:#444}
.error{color:#b00020;font-weight:600}
"""
# The Content-Security-Policy names the page's one style block by its hash: nothing else may load or run.
STYLE_HASH = base64.b64encode(hashlib.sha256(STYLE.encode("utf-8")).digest()).decode("ascii")
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        f"default-src 'none'; style-src 'sha256-{STYLE_HASH}'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

_LAYOUT = """<!doctype html>
<html lang="vi">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }} — VNPAY thử nghiệm</title>
<style>{{ style|safe }}</style>
</head>
<body>
<header><p class="brand">VNPAY <span lang="en">sandbox</span></p></header>
<p class="notice" role="note">{{ notice }}</p>
<main>
<h1>{{ title }}</h1>
{% block content %}{% endblock %}
</main>
</body>
</html>
"""

_PAY = """{% extends "layout.html" %}{% block content %}
<section aria-labelledby="order-heading">
<h2 id="order-heading">Thông tin đơn hàng</h2>
<dl>
<dt>Đơn vị chấp nhận thanh toán</dt><dd>{{ merchant_name }} ({{ tmn_code }})</dd>
<dt>Mã đơn hàng</dt><dd>{{ txn_ref }}</dd>
<dt>Nội dung thanh toán</dt><dd>{{ order_info }}</dd>
<dt>Số tiền</dt><dd class="amount">{{ amount }}</dd>
<dt>Thanh toán trước</dt><dd>{{ expires }}</dd>
</dl>
</section>
<section aria-labelledby="choice-heading">
<h2 id="choice-heading">Chọn kết quả giao dịch</h2>
<p id="choice-help">Ngân hàng giả lập: kết quả bạn chọn được gửi tới đơn vị bằng thông báo IPN có chữ ký,
rồi trình duyệt quay lại trang của đơn vị.</p>
<div class="choices">
{% for choice in choices %}
<form method="post" action="{{ action }}">
<input type="hidden" name="transaction" value="{{ transaction_id }}">
<input type="hidden" name="token" value="{{ token }}">
<input type="hidden" name="choice" value="{{ choice.key }}">
<button type="submit" class="{{ choice.key }}"
 aria-describedby="hint-{{ choice.key }}">{{ choice.label }}</button>
<p class="hint" id="hint-{{ choice.key }}">Mã phản hồi {{ choice.response_code }}: {{ choice.text }}</p>
</form>
{% endfor %}
</div>
</section>
{% endblock %}
"""

_MESSAGE = """{% extends "layout.html" %}{% block content %}
<p class="error" role="alert">{{ message }}</p>
{% if code %}<p>Mã lỗi: {{ code }}</p>{% endif %}
{% if txn_ref %}<p>Mã đơn hàng: {{ txn_ref }}</p>{% endif %}
<p>Vui lòng quay lại trang của đơn vị và thực hiện lại giao dịch.</p>
{% endblock %}
"""

_TEMPLATES = Environment(
    loader=DictLoader({"layout.html": _LAYOUT, "pay.html": _PAY, "message.html": _MESSAGE}),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
)


@dataclass(frozen=True)
class ChoiceView:
    """One button of the payment page."""

    key: str
    label: str
    response_code: str
    text: str


def format_vnd(amount: Decimal | int) -> str:
    """Return an amount of dong as Vietnamese pages write it: ``150.000 ₫``."""
    return f"{int(amount):,}".replace(",", ".") + " ₫"


def pay_page(offer: Offer, action: str) -> str:
    """Return the payment page of a pending transaction, its choices posting to ``action``."""
    payment = offer.payment
    expires = vnp.parse_vnp_time(payment.expire_date).astimezone(vnp.GMT7)
    choices = [
        ChoiceView(c.key, c.label, c.response_code, vnp.RESPONSE_TEXT[c.response_code])
        for c in CHOICES.values()
    ]
    return _render(
        "pay.html",
        title="Thanh toán trực tuyến",
        merchant_name=offer.merchant.name,
        tmn_code=payment.tmn_code,
        txn_ref=payment.txn_ref,
        order_info=payment.order_info,
        amount=format_vnd(payment.dong),
        expires=expires.strftime("%H:%M:%S ngày %d/%m/%Y (GMT+7)"),
        choices=choices,
        action=action,
        transaction_id=offer.transaction_id,
        token=offer.token,
    )


def message_page(title: str, message: str, *, code: str | None = None, txn_ref: str | None = None) -> str:
    """Return a page that tells the customer why the gateway cannot go on."""
    return _render("message.html", title=title, message=message, code=code, txn_ref=txn_ref)


def _render(template: str, **context: object) -> str:
    return _TEMPLATES.get_template(template).render(style=STYLE, notice=SANDBOX_NOTICE, **context)
