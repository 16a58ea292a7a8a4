"""Files applicants attach to their dossiers: the limits, the checks, and where they are kept.

A request attaches at most ``MAX_FILES`` files of at most ``MAX_FILE_BYTES`` each; a file is accepted by what
its bytes are (PDF, JPEG or PNG, by their signatures), never by the type or name the client declares.  Files
are checked before any transaction opens and are stored whole, with their SHA-256, in the ``attachments``
table: together with the dossier when it is submitted (``submit``), or on their own while the agency waits
for a supplement (``add_for_supplement``, status 5 only).  Whoever may see a dossier may read its files
(``access.check_see``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.engine import Connection

from engine.errors import ConflictError, ForbiddenError, NotFoundError, ValidationError

from . import store
from .access import Caller, check_see
from .service import DossierService, Submission
from .status import STATUS_NAMES, Status
from .tables import attachments as files_table

MAX_FILES = 10
MAX_FILE_BYTES = 10 * 1024 * 1024
MAX_FILENAME = 255
# What a file is, by how its bytes begin.
SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "application/pdf"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
)
ALLOWED_TYPES = tuple(content_type for _, content_type in SIGNATURES)
_EXTENSIONS = {"application/pdf": ".pdf", "image/jpeg": ".jpg", "image/png": ".png"}


class AttachmentRejected(ValidationError):
    """Some files cannot be attached; ``filenames`` names them (the API answers 413 or 415)."""

    code = "attachment_rejected"

    def __init__(self, message: str, filenames: Sequence[str], problems: Sequence[str]) -> None:
        super().__init__(message, {"attachments": list(problems)})
        self.filenames = list(filenames)
        self.details["filenames"] = self.filenames


class AttachmentTooLarge(AttachmentRejected):
    """A file is larger than ``MAX_FILE_BYTES``."""

    code = "attachment_too_large"


class UnsupportedAttachment(AttachmentRejected):
    """A file is not a PDF, JPEG or PNG document by its content."""

    code = "attachment_type_unsupported"


@dataclass(frozen=True)
class Upload:
    """A file as the client sent it.

    ``content`` may be cut short after ``MAX_FILE_BYTES + 1`` bytes: that is enough to know it is too large.
    """

    filename: str
    content: bytes
    declared_type: str | None = None


@dataclass(frozen=True)
class CheckedFile:
    """A file that passed the checks, with its cleaned name and its type by content."""

    filename: str
    content_type: str
    content: bytes
    sha256: str

    @property
    def size(self) -> int:
        return len(self.content)


# -- the checks ---------------------------------------------------------------------------------------
def sniff(content: bytes) -> str | None:
    """Return the content type of a PDF, JPEG or PNG document from its first bytes, or None."""
    return next((kind for magic, kind in SIGNATURES if content.startswith(magic)), None)


def clean_filename(raw: str | None, content_type: str | None = None) -> str:
    """Return a file name safe to store and to send back: NFC, no folders, no control characters, <= 255.

    A name that is empty once cleaned becomes ``attachment`` with the extension of its type.
    """
    name = unicodedata.normalize("NFC", raw or "").replace("\\", "/").rsplit("/", 1)[-1]
    kept = []
    for char in name:
        category = unicodedata.category(char)
        if category.startswith("Z"):
            kept.append(" ")
        elif not category.startswith("C"):  # control, format (e.g. right-to-left override), unassigned
            kept.append(char)
    name = "".join(kept).strip(" .")
    if not name:
        name = "attachment" + _EXTENSIONS.get(content_type or "", "")
    if len(name) > MAX_FILENAME:
        stem, dot, extension = name.rpartition(".")
        if dot and stem and len(extension) <= 16:
            name = stem[: MAX_FILENAME - len(extension) - 1].rstrip(" .") + "." + extension
        else:
            name = name[:MAX_FILENAME]
    return name


def check(uploads: Sequence[Upload]) -> list[CheckedFile]:
    """Check a request's files against the limits, every file before any is stored.

    Raises:
        ValidationError: more than ``MAX_FILES`` files (HTTP 422).
        AttachmentTooLarge: some file is over ``MAX_FILE_BYTES`` (HTTP 413), naming each such file.
        UnsupportedAttachment: some file is not a PDF, JPEG or PNG by content (HTTP 415), naming each.
    """
    if len(uploads) > MAX_FILES:
        raise ValidationError(
            f"At most {MAX_FILES} files can be attached at once; {len(uploads)} were sent",
            {"attachments": [f"at most {MAX_FILES} files"]},
        )
    too_large, unsupported, checked = [], [], []
    for upload in uploads:
        kind = sniff(upload.content)
        name = clean_filename(upload.filename, kind)
        if len(upload.content) > MAX_FILE_BYTES:
            too_large.append(name)
        elif kind is None:
            unsupported.append((name, upload.declared_type))
        else:
            digest = hashlib.sha256(upload.content).hexdigest()
            checked.append(CheckedFile(name, kind, upload.content, digest))
    if too_large:
        limit = f"{MAX_FILE_BYTES // (1024 * 1024)} MiB"
        raise AttachmentTooLarge(
            f"Each file must be at most {limit}; too large: {', '.join(too_large)}",
            too_large,
            [f"{name}: larger than {limit}" for name in too_large],
        )
    if unsupported:
        names = [name for name, _ in unsupported]
        raise UnsupportedAttachment(
            f"Only PDF, JPEG and PNG files can be attached; not one of them: {', '.join(names)}",
            names,
            [
                f"{name}: the content is not PDF, JPEG or PNG (declared {declared or 'no type'})"
                for name, declared in unsupported
            ],
        )
    return checked


# -- storing and reading ------------------------------------------------------------------------------
def store_files(
    conn: Connection, code: str, files: Sequence[CheckedFile], *, uploaded_by: str, at: datetime
) -> list[dict[str, Any]]:
    """Insert checked files of a dossier in the caller's transaction; return their metadata in order."""
    stored = []
    for file in files:
        values = {
            "dossier_code": code,
            "filename": file.filename,
            "content_type": file.content_type,
            "size": file.size,
            "sha256": file.sha256,
            "content": file.content,
            "uploaded_by": uploaded_by,
            "uploaded_at": at,
        }
        new_id = conn.execute(insert(files_table).values(values).returning(files_table.c.id)).scalar_one()
        stored.append(
            {
                "id": int(new_id),
                "filename": file.filename,
                "sha256": file.sha256,
                "size": file.size,
                "content_type": file.content_type,
            }
        )
    return stored


def _listed(conn: Connection, code: str) -> list[dict[str, Any]]:
    a = files_table.c
    columns = [c for c in files_table.c if c.name != "content"]
    query = select(*columns).where(a.dossier_code == code).order_by(a.id)
    return [dict(row._mapping) for row in conn.execute(query)]


def _visible(conn: Connection, caller: Caller, code: str) -> dict[str, Any]:
    dossier = store.get_dossier(conn, code)
    if dossier is None:
        raise NotFoundError(f"No dossier {code}", dossier_code=code)
    check_see(caller, dossier)
    return dossier


# -- the service functions ----------------------------------------------------------------------------
def submit(
    service: DossierService,
    procedure_code: str,
    submission: Submission,
    *,
    owner: str,
    attachments: Sequence[Upload] = (),
    idempotency_key: str | None = None,
) -> tuple[dict[str, Any], bool]:
    """Submit a dossier (``DossierService.submit_once``) with files, stored in the transaction opening it.

    The process data's ``attachments`` lists the stored files: id, filename, sha256, size, content_type.  When
    anything fails, neither the dossier nor any of its files is kept.

    Returns:
        (the dossier, True when this call opened it; False for a retry of an ``idempotency_key``).

    Raises:
        as ``check`` for the files (before anything is written), then as ``DossierService.submit_once``.
    """
    files = check(attachments)
    if not files:
        return service.submit_once(procedure_code, submission, owner=owner, idempotency_key=idempotency_key)
    now = service.engine.now()

    def store_attachments(conn: Connection, code: str) -> list[dict[str, Any]]:
        return store_files(conn, code, files, uploaded_by=owner, at=now)

    with_files = dataclasses.replace(
        submission, store_attachments=store_attachments, file_digests=[f.sha256 for f in files]
    )
    return service.submit_once(procedure_code, with_files, owner=owner, idempotency_key=idempotency_key)


def add_for_supplement(
    service: DossierService, code: str, uploads: Sequence[Upload], caller: Caller
) -> list[dict[str, Any]]:
    """Attach files to a dossier whose agency asked for a supplement (status 5); only its applicant may.

    The files are stored as they are; the applicant names them when completing the supplement task.

    Raises:
        ValidationError, AttachmentTooLarge, UnsupportedAttachment: as ``check``.
        NotFoundError: no such dossier, or the caller may not see it.
        ForbiddenError: the caller sees the dossier but is not its applicant.
        ConflictError: the dossier is not waiting for a supplement.
    """
    files = check(uploads)
    if not files:
        raise ValidationError("Attach at least one file", {"attachments": ["at least one file"]})
    with service.engine.store.unit_of_work() as uow:
        dossier = store.get_dossier(uow.conn, code, for_update=True)
        if dossier is None:
            raise NotFoundError(f"No dossier {code}", dossier_code=code)
        check_see(caller, dossier)
        if dossier["owner"] != caller.username:
            raise ForbiddenError("Only the applicant can add files to a dossier")
        if dossier["status"] != Status.SUPPLEMENT_REQUESTED:
            status = Status(dossier["status"])
            raise ConflictError(
                f"Files can be added only while a supplement is requested (status 5); "
                f"dossier {code} is in status {int(status)} ({STATUS_NAMES[status]})",
                dossier_code=code,
                dossier_status=int(status),
            )
        stored = store_files(uow.conn, code, files, uploaded_by=caller.username, at=service.engine.now())
        ids = [item["id"] for item in stored]
        return [row for row in _listed(uow.conn, code) if row["id"] in ids]


def list_for(service: DossierService, code: str, caller: Caller) -> list[dict[str, Any]]:
    """Return the files of a dossier (without their content) in the order they were stored.

    Raises:
        NotFoundError: no such dossier, or the caller may not see it.
    """
    with service.engine.store.unit_of_work(write=False) as uow:
        _visible(uow.conn, caller, code)
        return _listed(uow.conn, code)


def get(service: DossierService, code: str, attachment_id: int, caller: Caller) -> dict[str, Any]:
    """Return one file of a dossier with its content.

    Raises:
        NotFoundError: no such dossier or file, or the caller may not see the dossier.
    """
    with service.engine.store.unit_of_work(write=False) as uow:
        _visible(uow.conn, caller, code)
        a = files_table.c
        row = uow.conn.execute(
            select(files_table).where(a.dossier_code == code, a.id == attachment_id)
        ).first()
    if row is None:
        raise NotFoundError(f"Dossier {code} has no attachment {attachment_id}", dossier_code=code)
    found = dict(row._mapping)
    found["content"] = bytes(found["content"])
    return found
