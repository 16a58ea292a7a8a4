"""Tables of the dossier domain: procedures, dossiers and their history, codes, the calendar overrides.

They share the engine's metadata so that one Alembic history (``motcua/migrations``) manages the schema.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    Numeric,
    String,
    Table,
    Text,
    text,
)

from engine.tables import BigId, UTCDateTime, metadata

# Dossiers whose life is not over: every status but the final ones (status.FINAL: 3, 7, 8, 10).
FLAGGED_PREDICATE = "finished_at IS NULL AND (overdue_at IS NOT NULL OR due_soon_at IS NOT NULL)"
LIVE_PREDICATE = "status NOT IN (3, 7, 8, 10)"

procedures = Table(
    "procedures",
    metadata,
    Column("code", String(40), primary_key=True),
    Column("name", String(500), nullable=False),
    Column("level", Integer, nullable=False),
    Column("bpmn", String(200), nullable=False),
    Column("agency_code", String(40), nullable=False),
    Column("sector", String(200), nullable=False),
    Column("decree_class", String(20), nullable=False),
    Column("record", Text, nullable=False),  # the whole level-1 record as JSON
    Column("updated_at", UTCDateTime, nullable=False),
)

# Extra days off and make-up working days announced by the government, on top of the holidays package.
calendar_days = Table(
    "calendar_days",
    metadata,
    Column("day", Date, primary_key=True),
    Column("working", Boolean, nullable=False),
    Column("note", String(500), nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

# The last sequence number used per receiving agency per day; dossier codes are never reused.
dossier_counters = Table(
    "dossier_counters",
    metadata,
    Column("agency_code", String(40), primary_key=True),
    Column("day", String(6), primary_key=True),
    Column("last", Integer, nullable=False),
)

dossiers = Table(
    "dossiers",
    metadata,
    Column("code", String(64), primary_key=True),
    Column("procedure_code", String(40), ForeignKey("procedures.code"), nullable=False, index=True),
    Column("level", Integer, nullable=False),
    Column("instance_id", String(36), ForeignKey("instances.id"), unique=True),
    Column("agency_code", String(40), nullable=False),
    Column("owner", String(200), nullable=False, index=True),
    Column("applicant", Text, nullable=False),
    Column("channel", Integer, nullable=False),
    Column("delivery_method", String(10)),
    Column("status", Integer, nullable=False, index=True),
    Column("submitted_at", UTCDateTime, nullable=False),
    Column("received_at", UTCDateTime),
    Column("due_at", UTCDateTime, index=True),
    Column("original_due_at", UTCDateTime),
    Column("finished_at", UTCDateTime),
    Column("outcome", String(10)),
    Column("supplement_items", Text),
    Column("refusal_reason", Text),
    Column("apology", Text),
    Column("withdrawn_at", UTCDateTime),
    Column("rating", Integer),
    Column("rating_comment", Text),
    Column("rated_at", UTCDateTime),
    # Set once by the deadline job: when the dossier was found about to be late, and found late.
    Column("due_soon_at", UTCDateTime),
    Column("overdue_at", UTCDateTime),
    Column("updated_at", UTCDateTime, nullable=False),
    # Open dossiers by due time (the deadline job, overdue counts): finished ones never enter it.
    Index(
        "ix_dossiers_open_due",
        "due_at",
        postgresql_where=text("finished_at IS NULL"),
        sqlite_where=text("finished_at IS NULL"),
    ),
    # The task queue (dossiers/store.py): an agency's live dossiers (not in a final status, about a tenth of
    # them) in instance order, carrying what the queue filters, orders and counts on, so that the queue is a
    # merge join of this small index with ``ix_ready_tasks_lane_instance_id``, and never reads the dossiers
    # an agency finished years ago.
    Index(
        "ix_dossiers_live",
        "agency_code",
        "instance_id",
        postgresql_include=["due_at", "procedure_code", "status", "finished_at", "due_soon_at", "overdue_at"],
        postgresql_where=text(LIVE_PREDICATE),
        sqlite_where=text(LIVE_PREDICATE),
    ),
    # The same by due date: a queue page walks it until the page is full (the earliest due come first).
    Index(
        "ix_dossiers_live_due",
        "agency_code",
        "due_at",
        postgresql_include=[
            "instance_id",
            "procedure_code",
            "status",
            "finished_at",
            "due_soon_at",
            "overdue_at",
        ],
        postgresql_where=text(LIVE_PREDICATE),
        sqlite_where=text(LIVE_PREDICATE),
    ),
    # An agency's dossiers newest first (officials' GET /dossiers), and of one status; their counts.
    Index("ix_dossiers_agency_submitted", "agency_code", "submitted_at", "code"),
    Index("ix_dossiers_agency_status_submitted", "agency_code", "status", "submitted_at", "code"),
    # The indicators (dossiers/indicator_store.py): an agency's dossiers received in a period (with the index
    # above for those never received, by submission).
    Index("ix_dossiers_agency_received", "agency_code", "received_at"),
    # An agency's running dossiers marked about to be late or late (the deadline job's flags): the few whose
    # tasks the officials' counts of overdue and due-soon work look at.
    Index(
        "ix_dossiers_flagged",
        "agency_code",
        "instance_id",
        postgresql_include=["due_soon_at", "overdue_at", "status"],
        postgresql_where=text(FLAGGED_PREDICATE),
        sqlite_where=text(FLAGGED_PREDICATE),
    ),
)

# The open (ready) tasks of each dossier with its receiving agency and lane, kept by the dossier tracker in
# the engine's own transaction (dossiers/lifecycle.py).  The engine's ready_tasks know no agencies, so
# without this an agency's queue count joined every ready task of a lane, all agencies together, with the
# agency's live dossiers; with it an official's counts read only the agency's own entries.
dossier_tasks = Table(
    "dossier_tasks",
    metadata,
    Column("task_id", String(36), primary_key=True),
    Column("instance_id", String(36), nullable=False, index=True),
    Column("agency_code", String(40), nullable=False),
    Column("lane", String(200)),
    Index("ix_dossier_tasks_agency_lane", "agency_code", "lane"),
)

# Every interval the clock stood still while waiting for the applicant (supplement, payment).
dossier_pauses = Table(
    "dossier_pauses",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("dossier_code", String(64), ForeignKey("dossiers.code"), nullable=False, index=True),
    Column("reason", String(20), nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("ended_at", UTCDateTime),
)

# The process-control slip: every hop desk -> specialist -> leader -> desk.
dossier_handovers = Table(
    "dossier_handovers",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("dossier_code", String(64), ForeignKey("dossiers.code"), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("element_id", String(200), nullable=False),
    Column("from_role", String(40)),
    Column("to_role", String(40)),
    Column("actor", String(200), nullable=False),
    Column("result", String(200)),
    Column("note", Text),
    Index("ix_dossier_handovers_dossier_code_at", "dossier_code", "at"),
)

# Files an applicant attaches to a dossier: kept whole, with their SHA-256.
attachments = Table(
    "attachments",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("dossier_code", String(64), ForeignKey("dossiers.code"), nullable=False, index=True),
    Column("filename", String(255), nullable=False),
    Column("content_type", String(100), nullable=False),
    Column("size", Integer, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("content", LargeBinary, nullable=False),
    Column("uploaded_by", String(200), nullable=False),
    Column("uploaded_at", UTCDateTime, nullable=False),
)

# Visitors of the public portal, per day, as salted hashes that cannot be traced back to a person.
visits = Table(
    "visits",
    metadata,
    Column("day", Date, primary_key=True),
    Column("visitor", String(64), primary_key=True),
    Column("first_seen", UTCDateTime, nullable=False),
    Column("last_seen", UTCDateTime, nullable=False, index=True),
    Column("hits", Integer, nullable=False),
)

# Integrators' subscriptions to dossier events.  The secret signs every delivery, so it is kept (not hashed).
webhooks = Table(
    "webhooks",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("owner", String(200), nullable=False, index=True),
    Column("url", String(2000), nullable=False),
    Column("secret", String(100), nullable=False),
    Column("events", String(500), nullable=False),  # comma-separated event names, or "*"
    Column("active", Boolean, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

# The outbox: one row per (event, webhook), written in the transaction that caused the event.
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("webhook_id", BigId, ForeignKey("webhooks.id"), nullable=False, index=True),
    Column("event", String(100), nullable=False),
    Column("dossier_code", String(64), ForeignKey("dossiers.code")),
    Column("payload", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    # When to try next; NULL once delivered or given up, so the index holds only the pending work.
    Column("due_at", UTCDateTime, index=True),
    Column("attempts", Integer, nullable=False),
    Column("last_status", Integer),
    Column("last_error", String(500)),
    Column("delivered_at", UTCDateTime),
    Column("gave_up_at", UTCDateTime),
)


# The result document of an approved dossier (the electronic result), with its SHA-256; and when, how and to
# whom it was actually handed over (status 10), kept apart from when it was decided (created_at).
result_documents = Table(
    "result_documents",
    metadata,
    Column("dossier_code", String(64), ForeignKey("dossiers.code"), primary_key=True),
    Column("filename", String(200), nullable=False),
    Column("media_type", String(100), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("content", LargeBinary, nullable=False),
    Column("approved_by", String(200)),
    Column("created_at", UTCDateTime, nullable=False),
    Column("collected_at", UTCDateTime),
    Column("collected_by", String(200)),  # online: the applicant's username; desk, post: the receiver's name
    Column("collected_via", String(10)),  # online | post | desk
    Column("handed_over_by", String(200)),  # the desk official, or the post's integrator account
    Column("receiver_id_number", String(20)),  # desk: the ID document the receiver showed
)

# A postal order carrying a dossier's result (public post), and the states the post reported.
postal_orders = Table(
    "postal_orders",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("dossier_code", String(64), ForeignKey("dossiers.code"), nullable=False, unique=True),
    Column("tracking_number", String(40), nullable=False, unique=True),
    Column("recipient", Text, nullable=False),
    Column("address", Text, nullable=False),
    Column("phone", String(20)),
    Column("postage", Numeric(14, 0), nullable=False),
    Column("status", String(12), nullable=False),  # registered | collecting | delivered | cancelled
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

postal_events = Table(
    "postal_events",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("postal_order_id", BigId, ForeignKey("postal_orders.id"), nullable=False, index=True),
    Column("status", String(12), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("note", Text),
    Column("actor", String(200), nullable=False),
)
