"""Every setting of motcua, read from the environment in this one place.

| variable | default | meaning |
|---|---|---|
| MOTCUA_DATABASE_URL | sqlite:///<root>/var/motcua.db | database: SQLite file or postgresql+psycopg:// |
| MOTCUA_SCRIPT_TIME_LIMIT | 2.0 | seconds a BPMN script or expression may run |
| MOTCUA_SERVICE_RETRIES | 3 | default retries of a failing service task |
| MOTCUA_SERVICE_BACKOFF | 30 | seconds before the first retry (doubles each time) |
| MOTCUA_SERVICE_BACKOFF_MAX | 3600 | cap of the retry delay, in seconds |
| MOTCUA_INSTANCE_CACHE | 2000 | live instances kept in memory per process |
| MOTCUA_GC_THRESHOLDS | 2000,20,250 | garbage collector thresholds of `motcua serve` and `motcua worker` |
| MOTCUA_WORKFLOWS_DIR | <root>/workflows | the bundled procedures and BPMN |
| MOTCUA_HOST / MOTCUA_PORT | 127.0.0.1 / 8000 | where `motcua serve` listens |
| MOTCUA_THREADS | 2 | threads running the app in each `motcua serve` worker process (granian) |
| MOTCUA_ACCESS_LOG | on | the server's access log on stderr (off: a reverse proxy in front already logs) |
| MOTCUA_AUTH_CACHE_SECONDS | 2 | seconds a process believes a credential it found valid (0: ask every time) |
| MOTCUA_PROXY_HOPS | 0 | proxies in front whose X-Forwarded-For/-Proto/-Host are believed (1 behind nginx) |
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from engine.errors import ValidationError

ROOT = Path(__file__).resolve().parent.parent


def _not_negative(value: float, name: str) -> float:
    if value < 0:
        raise ValidationError(f"{name} must be 0 or more, got {value}", {name: ["negative"]})
    return value


def _default_database_url() -> str:
    return f"sqlite:///{ROOT / 'var' / 'motcua.db'}"


@dataclass(frozen=True)
class Settings:
    """The configuration of one motcua process."""

    database_url: str
    script_time_limit: float = 2.0
    service_retries: int = 3
    service_backoff: float = 30.0
    service_backoff_max: float = 3600.0
    instance_cache: int = 2000
    # Python's collector thresholds in long-running processes (``gc.set_threshold``; see ``tune_collector``).
    gc_thresholds: tuple[int, int, int] = (2000, 20, 250)
    workflows_dir: Path = ROOT / "workflows"
    host: str = "127.0.0.1"
    port: int = 8000
    threads: int = 2
    access_log: bool = True
    # accounts/credential_cache.py: a credential found valid is believed this long by the process.
    auth_cache_seconds: float = 2.0
    # Reverse proxies in front of `motcua serve` whose X-Forwarded-* headers are believed: the client's
    # address (login throttling, visitor counts, the IP sent to VNPay) is the one the nearest proxy saw.
    # 0 (default): no header is believed, so a client cannot forge its address when nothing is in front.
    proxy_hops: int = 0
    # Background work (see motcua/scheduler.py).  ``scheduler`` off: ``motcua serve`` runs no jobs
    # (a separate ``motcua worker`` does); unit tests build apps without it.
    scheduler: bool = True
    scheduler_tick: float = 1.0
    timer_lease: float = 30.0
    claim_ttl_hours: float = 8.0
    due_soon_working_hours: float = 8.0
    metrics_token: str | None = None
    # Level 4 (payments/, api/payments.py, sandbox_gateway/).  Secrets only ever come from the environment.
    public_url: str = "http://127.0.0.1:8000"
    vnpay_tmn_code: str | None = None
    vnpay_hash_secret: str | None = None
    vnpay_pay_url: str = "http://127.0.0.1:8000/sandbox/vnpay/paymentv2/vpcpay.html"
    vnpay_api_url: str = "http://127.0.0.1:8000/sandbox/vnpay/merchant_webapi/api/transaction"
    payment_providers: tuple[tuple[str, str], ...] = ()  # (agency code, provider name); others: vnpay
    payment_attempt_minutes: float = 15.0
    postage_vnd: int = 30000
    payment_sandbox: bool = False
    sandbox_ipn_url: str | None = None  # default: <public_url>/api/v1/payments/vnpay/ipn
    link_secret: str | None = None

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        """Build settings from environment variables (``os.environ`` by default).

        Raises:
            ValidationError: a variable holds a value of the wrong type, naming the variable.
        """
        env = dict(os.environ if env is None else env)

        def number(name: str, default: float, kind: type = float) -> float:
            raw = env.get(name)
            if raw is None or raw == "":
                return default
            try:
                return kind(raw)
            except ValueError as exc:
                raise ValidationError(
                    f"{name} must be a number, got {raw!r}", {name: ["not a number"]}
                ) from exc

        def positive(name: str, default: float, kind: type = float) -> float:
            value = number(name, default, kind)
            if value <= 0:
                raise ValidationError(f"{name} must be positive, got {value}", {name: ["must be positive"]})
            return value

        hops = number("MOTCUA_PROXY_HOPS", 0, int)
        if hops < 0:
            raise ValidationError(
                f"MOTCUA_PROXY_HOPS must be 0 or more, got {hops}", {"MOTCUA_PROXY_HOPS": ["negative"]}
            )
        return cls(
            database_url=env.get("MOTCUA_DATABASE_URL") or _default_database_url(),
            script_time_limit=number("MOTCUA_SCRIPT_TIME_LIMIT", 2.0),
            service_retries=int(number("MOTCUA_SERVICE_RETRIES", 3, int)),
            service_backoff=number("MOTCUA_SERVICE_BACKOFF", 30.0),
            service_backoff_max=number("MOTCUA_SERVICE_BACKOFF_MAX", 3600.0),
            instance_cache=int(number("MOTCUA_INSTANCE_CACHE", 2000, int)),
            gc_thresholds=_thresholds(env, "MOTCUA_GC_THRESHOLDS", cls.gc_thresholds),
            workflows_dir=Path(env.get("MOTCUA_WORKFLOWS_DIR") or ROOT / "workflows"),
            host=env.get("MOTCUA_HOST") or "127.0.0.1",
            port=int(number("MOTCUA_PORT", 8000, int)),
            threads=int(positive("MOTCUA_THREADS", 2, int)),
            access_log=_switch(env, "MOTCUA_ACCESS_LOG", default=True),
            auth_cache_seconds=_not_negative(
                number("MOTCUA_AUTH_CACHE_SECONDS", 2.0), "MOTCUA_AUTH_CACHE_SECONDS"
            ),
            proxy_hops=int(hops),
            scheduler=_switch(env, "MOTCUA_SCHEDULER", default=True),
            scheduler_tick=positive("MOTCUA_SCHEDULER_TICK", 1.0),
            timer_lease=positive("MOTCUA_TIMER_LEASE", 30.0),
            claim_ttl_hours=positive("MOTCUA_CLAIM_TTL_HOURS", 8.0),
            due_soon_working_hours=positive("MOTCUA_DUE_SOON_WORKING_HOURS", 8.0),
            metrics_token=env.get("MOTCUA_METRICS_TOKEN") or None,
            public_url=(env.get("MOTCUA_PUBLIC_URL") or "http://127.0.0.1:8000").rstrip("/"),
            vnpay_tmn_code=env.get("MOTCUA_VNPAY_TMN_CODE") or None,
            vnpay_hash_secret=env.get("MOTCUA_VNPAY_HASH_SECRET") or None,
            vnpay_pay_url=env.get("MOTCUA_VNPAY_PAY_URL") or cls.vnpay_pay_url,
            vnpay_api_url=env.get("MOTCUA_VNPAY_API_URL") or cls.vnpay_api_url,
            payment_providers=_mapping(env, "MOTCUA_PAYMENT_PROVIDERS"),
            payment_attempt_minutes=positive("MOTCUA_PAYMENT_ATTEMPT_MINUTES", 15.0),
            postage_vnd=int(number("MOTCUA_POSTAGE_VND", 30000, int)),
            payment_sandbox=_switch(env, "MOTCUA_PAYMENT_SANDBOX", default=False),
            sandbox_ipn_url=env.get("MOTCUA_SANDBOX_IPN_URL") or None,
            link_secret=env.get("MOTCUA_LINK_SECRET") or None,
        )

    def ensure_var_dir(self) -> None:
        """Create the folder of a SQLite database file when it does not exist."""
        if self.database_url.startswith("sqlite:///") and ":memory:" not in self.database_url:
            Path(self.database_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)


def _switch(env: dict[str, str], name: str, *, default: bool) -> bool:
    raw = (env.get(name) or "").strip().lower()
    if raw == "":
        return default
    if raw in {"1", "on", "true", "yes"}:
        return True
    if raw in {"0", "off", "false", "no"}:
        return False
    raise ValidationError(f"{name} must be on or off, got {raw!r}", {name: ["must be on or off"]})


def _thresholds(env: dict[str, str], name: str, default: tuple[int, int, int]) -> tuple[int, int, int]:
    """Read three positive whole numbers separated by commas (``gc.set_threshold``'s arguments)."""
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    parts = [p.strip() for p in raw.split(",")]
    if len(parts) != 3 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise ValidationError(
            f"{name} must be three positive whole numbers separated by commas, got {raw!r}",
            {name: ["three positive whole numbers, e.g. 10000,10,100"]},
        )
    return int(parts[0]), int(parts[1]), int(parts[2])


def tune_collector(settings: Settings) -> None:
    """Set the garbage collector of a long-running process (a ``motcua serve`` or ``motcua worker``).

    Python's defaults (700, 10, 10) run a full collection, which walks every object of the process (the
    cached instances included) and pauses its requests for as long (200 ms and more), every ~70,000 net
    allocations: every few hundred requests.  The defaults here (2000, 20, 250) keep young collections
    small (a young collection walks what the requests in flight still hold: 2 ms at most, where 10,000
    took up to 16 ms and its middle collections up to 60 ms), middle ones every 40,000 allocations, and a
    full one at most every 10,000,000 (``bench/gc_pauses.py``).  Dropped instances do not wait for it: the
    instance cache breaks their cycles (``engine.runtime.dispose``).
    """
    import gc

    gc.set_threshold(*settings.gc_thresholds)


def _mapping(env: dict[str, str], name: str) -> tuple[tuple[str, str], ...]:
    """Read ``KEY=value,KEY=value`` (e.g. agency code to payment provider) as sorted pairs."""
    raw = (env.get(name) or "").strip()
    pairs = []
    for part in filter(None, (p.strip() for p in raw.split(","))):
        key, sep, value = part.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ValidationError(f"{name} must be KEY=value pairs separated by commas", {name: [part]})
        pairs.append((key.strip(), value.strip()))
    return tuple(sorted(pairs))
