"""Assemble the engine from settings: the one place where configuration meets construction."""

from __future__ import annotations

from dossiers.service import DossierService
from dossiers.timer_functions import timer_functions
from engine.facade import Engine
from engine.runtime import RetryPolicy
from engine.store import Store, create_db_engine
from handlers import HandlerRegistry, default_registry
from payments.providers import HttpPost, ProviderRegistry
from payments.service import PaymentService
from payments.vnpay import VNPayProvider

from .settings import Settings


def build_engine(settings: Settings, registry: HandlerRegistry | None = None) -> Engine:
    """Return an engine on the configured database with the bundled service handlers."""
    settings.ensure_var_dir()
    registry = registry or default_registry()
    store = Store(create_db_engine(settings.database_url))
    engine = Engine(
        store,
        dispatcher=registry.dispatch,
        known_operators=list(registry),
        retry_policy=RetryPolicy(
            retries=settings.service_retries,
            backoff_base_seconds=settings.service_backoff,
            backoff_max_seconds=settings.service_backoff_max,
        ),
        script_time_limit=settings.script_time_limit,
        cache_size=settings.instance_cache,
    )
    # Timer expressions count working time by the calendar (with its admin overrides in the database).
    engine.add_timer_functions(timer_functions)
    return engine


def build_dossiers(engine: Engine, settings: Settings) -> DossierService:
    """Return the dossier service on ``engine``, with the bundled forms (declarations and task forms)."""
    from dossiers.catalogue import load_workflow_forms

    return DossierService(
        engine,
        load_workflow_forms(settings.workflows_dir),
        due_soon_working_hours=settings.due_soon_working_hours,
        postage_vnd=settings.postage_vnd,
    )


def build_payments(
    engine: Engine, dossiers: DossierService, settings: Settings, http_post: HttpPost | None = None
) -> PaymentService:
    """Return the payment service with the providers the settings configure (VNPay: its merchant secrets
    come from the settings only; without them, paying answers that payment is unavailable)."""

    def vnpay() -> VNPayProvider:
        return VNPayProvider(
            settings.vnpay_tmn_code,
            settings.vnpay_hash_secret,
            settings.vnpay_pay_url,
            settings.vnpay_api_url,
            http_post,
            clock=engine.now,
        )

    providers = ProviderRegistry({"vnpay": vnpay}, settings.payment_providers)
    return PaymentService(
        engine,
        dossiers,
        providers,
        public_url=settings.public_url,
        attempt_minutes=settings.payment_attempt_minutes,
    )
