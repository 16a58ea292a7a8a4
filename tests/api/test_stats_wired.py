"""The visit counter is part of the real app (not only registered by its own tests)."""

from __future__ import annotations

from tests.api.conftest import Portal


def test_the_app_serves_and_counts_visits(portal: Portal):
    portal.client.get("/api/v1/procedures", environ_base={"REMOTE_ADDR": "198.51.100.9"})
    counts = portal.client.get(
        "/api/v1/stats/visits", environ_base={"REMOTE_ADDR": "198.51.100.9"}
    ).get_json()
    assert counts["today"] == 1 and counts["online_now"] == 1 and counts["total"] == 1
