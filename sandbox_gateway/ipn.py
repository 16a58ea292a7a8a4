"""Sending the IPN (Instant Payment Notification) as VNPay does: a GET of signed parameters.

The merchant's JSON answer says whether to stop: ``RspCode`` 00 (confirmed) or 02 (already confirmed).
Anything else, a timeout or a network error is tried again a few times with a growing pause.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from handlers import http
from payments import vnpay_protocol as vnp

log = logging.getLogger("motcua.sandbox_gateway")
FINAL_ANSWERS = (vnp.RSP_CONFIRMED, vnp.RSP_ALREADY_CONFIRMED)
MAX_ANSWER_BYTES = 64 * 1024

HttpGet = Callable[[str, float], tuple[int, bytes]]


def urllib_get(url: str, timeout: float) -> tuple[int, bytes]:
    """GET an http(s) ``url`` with the standard library; return the HTTP status and the body.

    Raises:
        ValueError: the URL is not http(s).
        OSError: the network failed or the server did not answer within ``timeout`` seconds.
    """
    return http.send(
        "GET",
        url,
        headers={"User-Agent": "motcua-sandbox-vnpay"},
        timeout=timeout,
        max_bytes=MAX_ANSWER_BYTES,
    )


def with_query(url: str, query: str) -> str:
    """Return ``url`` with ``query`` appended (after ``?``, or ``&`` when it has a query already)."""
    return f"{url}{'&' if '?' in url else '?'}{query}"


@dataclass
class IpnSender:
    """Delivers IPNs with retries.

    Args:
        timeout: seconds to wait for each answer.
        attempts: how many times to try in all.
        backoff: seconds before the second attempt; each further pause doubles.
        http_get: how to GET (tests may pass their own).
        sleep: how to pause.
    """

    timeout: float = 5.0
    attempts: int = 3
    backoff: float = 0.5
    http_get: HttpGet = field(default=urllib_get)
    sleep: Callable[[float], None] = field(default=time.sleep)

    def send(self, url: str) -> str | None:
        """GET ``url`` until the merchant answers 00 or 02, or the attempts run out.

        Returns:
            The last ``RspCode`` the merchant answered, or None when no attempt got a readable answer.
        """
        last: str | None = None
        for attempt in range(1, self.attempts + 1):
            if attempt > 1:
                self.sleep(self.backoff * 2 ** (attempt - 2))
            answer = self._attempt(url, attempt)
            last = answer or last
            if answer in FINAL_ANSWERS:
                break
        return last

    def _attempt(self, url: str, attempt: int) -> str | None:
        try:
            status, body = self.http_get(url, self.timeout)
        except (OSError, ValueError) as exc:
            log.warning("IPN attempt %d to %s failed: %s", attempt, _endpoint(url), exc)
            return None
        rsp_code = _rsp_code(body) if status == 200 else None
        log.info("IPN attempt %d to %s: HTTP %d, RspCode %s", attempt, _endpoint(url), status, rsp_code)
        return rsp_code


def _rsp_code(body: bytes) -> str | None:
    try:
        answer = json.loads(body)
    except ValueError:
        return None
    code = answer.get("RspCode") if isinstance(answer, dict) else None
    return code if isinstance(code, str) and len(code) <= 4 else None


def _endpoint(url: str) -> str:
    """The URL without its query (the parameters are long and say nothing the logs need)."""
    return url.split("?", 1)[0]
