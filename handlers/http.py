"""Outbound HTTP for calls to other systems (webhooks, payment gateways): http(s) only, no redirects.

A 3xx answer is returned as it is, never followed: a receiver cannot bounce our request (and its signed body)
to another host.  The standard library only, so that nothing here depends on a client library's defaults.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Mapping

_OPENER = urllib.request.OpenerDirector()
for _handler in (
    urllib.request.ProxyHandler(),
    urllib.request.HTTPHandler(),
    urllib.request.HTTPSHandler(),
    urllib.request.HTTPDefaultErrorHandler(),
    urllib.request.HTTPErrorProcessor(),
):
    _OPENER.add_handler(_handler)


def send(
    method: str,
    url: str,
    *,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float,
    max_bytes: int = 64 * 1024,
) -> tuple[int, bytes]:
    """Send one request; return the HTTP status and at most ``max_bytes`` of the answer's body.

    Error statuses (4xx, 5xx) are returned like any other, with their body.

    Raises:
        ValueError: the URL is not http(s).
        OSError: the network failed or the server did not answer within ``timeout`` seconds.
    """
    if not url.lower().startswith(("http://", "https://")):
        raise ValueError(f"Not an http(s) URL: {url}")
    request = urllib.request.Request(url, data=body, headers=dict(headers or {}), method=method)  # noqa: S310
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            return int(response.status), response.read(max_bytes)
    except urllib.error.HTTPError as exc:
        try:
            return int(exc.code), exc.read(max_bytes)
        finally:
            exc.close()
