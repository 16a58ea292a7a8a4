"""A small load client for the HTTP benchmarks: keep-alive connections, closed-loop clients, percentiles.

The client must not be what limits a load test on a 2-core machine that also runs the server and
PostgreSQL, so it is cheap on purpose: one raw HTTP/1.1 socket per client thread (no ``http.client`` or
``requests``, whose per-request Python costs several times more), the clients spread over a few forked
processes so that no single GIL serialises them, and every process reports the CPU it used.

``run_phase`` runs one phase: ``clients`` closed-loop clients (each sends its next request as soon as the
previous answer arrived, no think time), each doing ``warmup`` unrecorded operations, then all starting
together at a barrier and doing ``per_client`` recorded operations.  An operation is a function given the
client's ``Connection``, the client number and the operation number; it returns the requests it made as
``Sample`` tuples (label, seconds, status), so one operation may make several requests (a task page's
GET, claim and complete).  ``summarise`` turns samples into throughput and latency percentiles.

Used by ``bench/http_load.py``; other load scripts (the fault test) may import it too::

    from bench._http import Connection, run_phase, summarise
"""

from __future__ import annotations

import math
import multiprocessing as mp
import os
import resource
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

__all__ = [
    "Connection",
    "HttpError",
    "Phase",
    "Response",
    "Sample",
    "percentile",
    "run_phase",
    "summarise",
]


class HttpError(Exception):
    """The connection failed or the answer was not HTTP."""


class Response(NamedTuple):
    """One answer: status, headers (lower-case names) and body bytes."""

    status: int
    headers: dict[str, str]
    body: bytes


class Sample(NamedTuple):
    """One timed request: what it was, how long it took (seconds) and its status (0: no answer)."""

    label: str
    seconds: float
    status: int


class Connection:
    """One keep-alive HTTP/1.1 connection to ``host:port`` that reconnects when the server closed it.

    Args:
        host, port: the server.
        timeout: seconds to wait for an answer.
    """

    def __init__(self, host: str, port: int, timeout: float = 30.0) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self.sock: socket.socket | None = None
        self.buffer = b""
        self.reconnects = 0

    def _connect(self) -> socket.socket:
        sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock, self.buffer = sock, b""
        return sock

    def close(self) -> None:
        """Close the socket (the next request opens a new one)."""
        if self.sock is not None:
            self.sock.close()
        self.sock, self.buffer = None, b""

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> Response:
        """Send one request and read its answer.

        A reused connection that the server closed while idle (its keep-alive ran out) gives no byte of
        answer: the request is sent again once on a new connection, as browsers do.

        Raises:
            HttpError: no answer, or not HTTP.
        """
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        if body is not None or method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(body or b'')}")
        raw = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")
        reused = self.sock is not None
        try:
            return self._exchange(raw)
        except (OSError, HttpError) as exc:
            self.close()
            if not (reused and isinstance(exc, _NoAnswer | ConnectionError)):
                raise HttpError(f"{method} {path}: {exc}") from exc
        self.reconnects += 1
        try:
            return self._exchange(raw)
        except (OSError, HttpError) as exc:
            self.close()
            raise HttpError(f"{method} {path}: {exc}") from exc

    def _exchange(self, raw: bytes) -> Response:
        sock = self.sock or self._connect()
        sock.sendall(raw)
        head = self._read_until(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/"):
            raise HttpError(f"not an HTTP answer: {status_line[:80]!r}")
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            body = self._read_exactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            body = self._read_chunked()
        else:
            body = self._read_to_close()
        if headers.get("connection", "").lower() == "close" or parts[0] == "HTTP/1.0":
            self.close()
        return Response(int(parts[1]), headers, body)

    def _recv(self) -> bytes:
        assert self.sock is not None
        chunk = self.sock.recv(65536)
        if not chunk:
            raise _NoAnswer("the server closed the connection")
        return chunk

    def _read_until(self, marker: bytes) -> bytes:
        first = True
        while (at := self.buffer.find(marker)) < 0:
            try:
                self.buffer += self._recv()
            except _NoAnswer:
                if first and not self.buffer:
                    raise
                raise HttpError("the answer was cut short") from None
            first = False
        found, self.buffer = self.buffer[:at], self.buffer[at + len(marker) :]
        return found

    def _read_exactly(self, size: int) -> bytes:
        while len(self.buffer) < size:
            try:
                self.buffer += self._recv()
            except _NoAnswer:
                raise HttpError("the answer was cut short") from None
        found, self.buffer = self.buffer[:size], self.buffer[size:]
        return found

    def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        while True:
            size = int(self._read_until(b"\r\n").split(b";")[0], 16)
            if size == 0:
                self._read_until(b"\r\n")
                return b"".join(parts)
            parts.append(self._read_exactly(size))
            self._read_exactly(2)

    def _read_to_close(self) -> bytes:
        try:
            while True:
                self.buffer += self._recv()
        except _NoAnswer:
            found, self.buffer = self.buffer, b""
            self.close()
            return found


class _NoAnswer(HttpError):
    """The server closed the connection before answering (a keep-alive that ran out)."""


def timed(conn: Connection, label: str, method: str, path: str, **kwargs: Any) -> tuple[Sample, Response]:
    """Send one request and time it; a failed exchange gives status 0 and an empty answer."""
    started = time.perf_counter()
    try:
        answer = conn.request(method, path, **kwargs)
    except HttpError:
        return Sample(label, time.perf_counter() - started, 0), Response(0, {}, b"")
    return Sample(label, time.perf_counter() - started, answer.status), answer


Operation = Callable[[Connection, int, int], Sequence[Sample]]


@dataclass
class Phase:
    """What one phase measured: every sample, the wall time from the start barrier to the last answer,
    and the CPU seconds the client processes used while measuring."""

    clients: int
    samples: list[Sample] = field(default_factory=list)
    wall: float = 0.0
    client_cpu: float = 0.0
    reconnects: int = 0
    failures: list[str] = field(default_factory=list)


def run_phase(
    host: str,
    port: int,
    operation: Operation,
    *,
    clients: int,
    per_client: int,
    warmup: int = 0,
    processes: int = 2,
    max_seconds: float = 120.0,
) -> Phase:
    """Run ``clients`` closed-loop clients over at most ``processes`` forked processes.

    Each client does ``warmup`` unrecorded operations, waits for every other client at a barrier, then does
    ``per_client`` recorded ones (fewer if ``max_seconds`` ran out since the barrier).  Operations are
    numbered per client from 0, warm-up included, so a client can pick its own work items.

    Returns:
        The samples, the wall time of the recorded part, and the client processes' CPU seconds in it.
    """
    ctx = mp.get_context("fork")
    procs = max(1, min(processes, clients))
    barrier = ctx.Barrier(procs + 1)  # each process once (its last ready client), and this one
    results: Any = ctx.Queue()
    spread = [list(range(clients))[p::procs] for p in range(procs)]
    workers = [
        ctx.Process(
            target=_client_process,
            args=(host, port, operation, ids, per_client, warmup, barrier, results, max_seconds),
            daemon=True,
        )
        for ids in spread
    ]
    for worker in workers:
        worker.start()
    phase = Phase(clients)
    try:
        barrier.wait(timeout=max_seconds + 600)  # every client connected and warmed up
    except threading.BrokenBarrierError:
        phase.failures.append("a client did not reach the start barrier")
    started = time.perf_counter()
    ends = []
    for _ in workers:
        samples, cpu, reconnects, failures, end_offset = results.get(timeout=max_seconds + 600)
        phase.samples.extend(samples)
        phase.client_cpu += cpu
        phase.reconnects += reconnects
        phase.failures.extend(failures)
        ends.append(end_offset)
    for worker in workers:
        worker.join(timeout=30)
    # Each process reports when its last answer came, relative to the barrier it saw.
    phase.wall = max(ends) if ends else time.perf_counter() - started
    return phase


def _client_process(
    host: str,
    port: int,
    operation: Operation,
    ids: list[int],
    per_client: int,
    warmup: int,
    barrier: Any,
    results: Any,
    max_seconds: float,
) -> None:
    out: list[list[Sample]] = [[] for _ in ids]
    failures: list[str] = []
    connections = [Connection(host, port) for _ in ids]
    clock: dict[str, float] = {}
    usage: dict[str, float] = {}
    ready = threading.Barrier(len(ids), action=lambda: _start(barrier, clock, usage))

    def client(slot: int) -> None:
        conn, number = connections[slot], ids[slot]
        try:
            for op in range(warmup):
                operation(conn, number, op)
        except Exception as exc:  # a broken warm-up still lets the others start
            failures.append(f"client {number} warm-up: {type(exc).__name__}: {exc}")
        ready.wait()
        deadline = clock["start"] + max_seconds
        try:
            for op in range(warmup, warmup + per_client):
                out[slot].extend(operation(conn, number, op))
                if time.perf_counter() > deadline:
                    failures.append(f"client {number} stopped at the {max_seconds:.0f} s limit")
                    break
        except Exception as exc:
            failures.append(f"client {number}: {type(exc).__name__}: {exc}")
        clock[f"end{slot}"] = time.perf_counter()

    threads = [threading.Thread(target=client, args=(slot,), daemon=True) for slot in range(len(ids))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    cpu = _cpu_seconds() - usage.get("cpu", _cpu_seconds())
    end = max((v for k, v in clock.items() if k.startswith("end")), default=clock.get("start", 0.0))
    for conn in connections:
        conn.close()
    samples = [s for per in out for s in per]
    results.put((samples, cpu, sum(c.reconnects for c in connections), failures, end - clock["start"]))


def _start(barrier: Any, clock: dict[str, float], usage: dict[str, float]) -> None:
    """Run by the last of a process's clients to get ready: wait for the other processes, then go."""
    barrier.wait()
    clock["start"] = time.perf_counter()
    usage["cpu"] = _cpu_seconds()


def _cpu_seconds() -> float:
    used = resource.getrusage(resource.RUSAGE_SELF)
    return used.ru_utime + used.ru_stime


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of sorted values, nearest rank (no interpolation)."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def summarise(samples: Sequence[Sample], wall: float, label: str | None = None) -> dict[str, Any]:
    """Throughput (requests per second of wall time), latency percentiles in ms and the error count of the
    samples with ``label`` (all when None).  An error is an answer that is not 2xx, or no answer."""
    chosen = [s for s in samples if label is None or s.label == label]
    times = sorted(s.seconds * 1000 for s in chosen)
    errors = [s.status for s in chosen if not 200 <= s.status < 300]
    return {
        "requests": len(chosen),
        "rps": len(chosen) / wall if wall > 0 else math.nan,
        "p50": percentile(times, 50),
        "p90": percentile(times, 90),
        "p99": percentile(times, 99),
        "max": times[-1] if times else math.nan,
        "errors": len(errors),
        "error_statuses": sorted(set(errors)),
    }


def cpu_of(pids: Sequence[int]) -> float:
    """CPU seconds (user + system) the processes ``pids`` used so far (Linux /proc); gone ones count 0."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick
