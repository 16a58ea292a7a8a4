"""Relational schema of the engine (SQLAlchemy Core), shared by SQLite and PostgreSQL.

The ``instances`` row holds the authoritative serialized workflow state.  The other instance tables are
projections of that state (ready tasks, wake-ups, message subscriptions) kept in step with it in the same
transaction, so that queues and schedulers never deserialize a workflow to answer a query.  ``audit`` and
``incidents`` are append-mostly history.  Alembic migrations under ``motcua/migrations`` create these tables.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.types import TypeDecorator

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC in Python, on SQLite (no time zones) as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# SQLite only autoincrements INTEGER PRIMARY KEY; BigInteger elsewhere.
BigId = BigInteger().with_variant(Integer(), "sqlite")

definitions = Table(
    "definitions",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("key", String(200), nullable=False),
    Column("version", Integer, nullable=False),
    Column("name", String(500)),
    Column("sha256", String(64), nullable=False),
    Column("source_file", String(500), nullable=False),
    Column("deployed_at", UTCDateTime, nullable=False),
    Column("deployed_by", String(200), nullable=False),
    Column("xml", LargeBinary, nullable=False),
    Column("spec_json", Text, nullable=False),
    UniqueConstraint("key", "version"),
    Index("ix_definitions_key_sha256", "key", "sha256"),
)

instances = Table(
    "instances",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("definition_id", BigId, ForeignKey("definitions.id"), nullable=False, index=True),
    Column("process_key", String(200), nullable=False, index=True),
    Column("business_key", String(200), index=True),
    Column("status", String(20), nullable=False, index=True),
    Column("state", Text, nullable=False),
    Column("state_format", Integer, nullable=False),
    Column("row_version", Integer, nullable=False),
    Column("started_by", String(200)),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("completed_at", UTCDateTime),
)

ready_tasks = Table(
    "ready_tasks",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("instance_id", String(36), ForeignKey("instances.id"), nullable=False, index=True),
    Column("element_id", String(200), nullable=False),
    Column("title", String(500)),
    Column("lane", String(200)),
    Column("form_ref", String(500)),
    Column("created_at", UTCDateTime, nullable=False),
    # A lane's tasks in instance order: the task queue joins them with the live dossiers of an agency
    # (dossiers/store.py, ``ix_dossiers_live``) and orders a page of them without reading the table.
    Index("ix_ready_tasks_lane_instance_id", "lane", "instance_id", postgresql_include=["created_at", "id"]),
)

# Wake-ups: BPMN timers waiting for their time, and service tasks waiting for their next retry.
timers = Table(
    "timers",
    metadata,
    Column("task_id", String(36), primary_key=True),
    Column("instance_id", String(36), ForeignKey("instances.id"), nullable=False, index=True),
    Column("element_id", String(200), nullable=False),
    Column("kind", String(10), nullable=False),
    Column("due_at", UTCDateTime, nullable=False, index=True),
    # A worker that took the wake-up holds it until ``lease_until``; after that any worker may take it again
    # (a worker killed mid-run loses nothing).  Firing deletes the row in the instance's own transaction.
    Column("claimed_by", String(100)),
    Column("lease_until", UTCDateTime),
    Index("ix_timers_kind_due_at", "kind", "due_at"),
)

# What each scheduler job of each worker process did: one row per (worker, job), updated after runs.
job_runs = Table(
    "job_runs",
    metadata,
    Column("worker", String(100), primary_key=True),
    Column("job", String(50), primary_key=True),
    Column("runs", BigInteger, nullable=False, default=0),
    Column("items", BigInteger, nullable=False, default=0),
    Column("failures", BigInteger, nullable=False, default=0),
    Column("last_started_at", UTCDateTime),
    Column("last_finished_at", UTCDateTime),
    Column("last_duration_ms", Float),
    Column("last_items", Integer),
    Column("last_lag_ms", Float),
    Column("max_lag_ms", Float),
    Column("last_error", Text),
)

message_subscriptions = Table(
    "message_subscriptions",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("instance_id", String(36), ForeignKey("instances.id"), nullable=False, index=True),
    Column("task_id", String(36), nullable=False),
    Column("element_id", String(200), nullable=False),
    Column("message_name", String(200), nullable=False, index=True),
    Column("correlation", Text, nullable=False),
    UniqueConstraint("task_id", "message_name"),
)

# One row per correlation value of a subscription, so delivery finds its instance by index.
subscription_keys = Table(
    "subscription_keys",
    metadata,
    Column(
        "subscription_id", BigId, ForeignKey("message_subscriptions.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("name", String(200), primary_key=True),
    Column("value", String(500), nullable=False),
    Index("ix_subscription_keys_name_value", "name", "value"),
)

audit = Table(
    "audit",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("instance_id", String(36), ForeignKey("instances.id"), nullable=False, index=True),
    Column("task_id", String(36)),
    Column("element_id", String(200)),
    Column("action", String(40), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("details", Text),
)

incidents = Table(
    "incidents",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("instance_id", String(36), ForeignKey("instances.id"), nullable=False, index=True),
    Column("task_id", String(36), nullable=False),
    Column("element_id", String(200), nullable=False),
    Column("kind", String(40), nullable=False),
    Column("message", Text, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("resolved_at", UTCDateTime),
    Column("resolved_by", String(200)),
    # The open ones (what admins work through and /metrics counts), however many were resolved before.
    Index(
        "ix_incidents_open",
        "id",
        postgresql_where=text("resolved_at IS NULL"),
        sqlite_where=text("resolved_at IS NULL"),
    ),
)

# Integrators' Idempotency-Key: one started instance per (caller, key), recorded in the start's transaction.
start_requests = Table(
    "start_requests",
    metadata,
    Column("owner", String(200), primary_key=True),
    Column("key", String(200), primary_key=True),
    Column("request_sha256", String(64), nullable=False),
    Column("instance_id", String(36), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

# Who is working on a ready task.  Kept apart from ready_tasks, which is rewritten from the workflow.
task_claims = Table(
    "task_claims",
    metadata,
    Column("task_id", String(36), primary_key=True),
    Column("instance_id", String(36), ForeignKey("instances.id"), nullable=False, index=True),
    Column("claimed_by", String(200), nullable=False),
    Column("claimed_at", UTCDateTime, nullable=False),
)

# Analysts' unfinished BPMN (engine/drafts.py): one draft per process key and analyst, never run, and never
# a version until deployed through ``Engine.deploy``.
definition_drafts = Table(
    "definition_drafts",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("key", String(200), nullable=False),
    Column("owner", String(200), nullable=False, index=True),
    Column("name", String(500)),
    Column("base_version", Integer),
    Column("sha256", String(64), nullable=False),
    Column("xml", LargeBinary, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("key", "owner"),
)
