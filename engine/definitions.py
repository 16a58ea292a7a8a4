"""Process definitions: deploy BPMN as versions, lint it, and hand out parsed specs cached per version."""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Sequence
from typing import Any

from SpiffWorkflow.bpmn.specs.bpmn_process_spec import BpmnProcessSpec
from sqlalchemy.exc import IntegrityError

from . import bpmn, bpmn_lint, sandbox
from .bpmn import Resolver
from .bpmn_levels import check_level
from .errors import ConflictError, NotFoundError
from .runtime import Clock
from .state import StateCodec
from .store import Store, UnitOfWork

Specs = tuple[BpmnProcessSpec, dict[str, BpmnProcessSpec]]


class Definitions:
    """Deployed process definitions.

    Args:
        store: the database.
        codec: serializes specs for storage.
        clock: stamps deployments.
        known_operators: service operators with handlers, for linting (None: not checked).
    """

    def __init__(
        self, store: Store, codec: StateCodec, clock: Clock, known_operators: Collection[str] | None = None
    ) -> None:
        self.store = store
        self.codec = codec
        self.clock = clock
        self.known_operators = known_operators
        self._specs: dict[int, Specs] = {}
        self._lock = threading.Lock()

    def deploy(
        self, documents: Sequence[tuple[str, bytes]], deployed_by: str = "system"
    ) -> list[dict[str, Any]]:
        """Validate BPMN documents and store each process as a new definition version when it changed.

        Args:
            documents: (file name, XML bytes) pairs; call activities may reference processes in any of
                them or processes already deployed.
            deployed_by: who deploys.

        Returns:
            One dict per process: key, version, sha256, created (False when identical content was
            already the latest version).

        Raises:
            DefinitionError: a document is unsafe, malformed or invalid (names file, line, element).
            ConflictError: another deployment of the same process committed at the same moment.
        """
        results = []
        try:
            with self.store.unit_of_work() as uow:
                processes = bpmn.load_documents(documents, resolve_missing=self.resolver(uow))
                for process in processes:
                    results.append(self._store_version(uow, process, deployed_by))
        except IntegrityError as exc:
            raise ConflictError("Another deployment of the same process happened at the same time") from exc
        return results

    def resolver(self, uow: UnitOfWork) -> Callable[[str], tuple[str, bytes] | None]:
        def resolve(process_id: str) -> tuple[str, bytes] | None:
            head = uow.latest_definition(process_id)
            if head is None:
                return None
            row = uow.definition(head.id)
            return (row.source_file, bytes(row.xml)) if row is not None else None

        return resolve

    def _store_version(self, uow: UnitOfWork, process: Any, deployed_by: str) -> dict[str, Any]:
        latest = uow.latest_definition(process.key)
        if latest is not None and latest.sha256 == process.sha256:
            return {
                "key": process.key,
                "version": latest.version,
                "sha256": latest.sha256,
                "created": False,
                "id": latest.id,
            }
        version = 1 if latest is None else latest.version + 1
        definition_id = uow.insert_definition(
            {
                "key": process.key,
                "version": version,
                "name": process.name,
                "sha256": process.sha256,
                "source_file": process.source_file,
                "deployed_at": self.clock.now(),
                "deployed_by": deployed_by,
                "xml": process.xml,
                "spec_json": self.codec.dump_specs(process.spec, process.subprocess_specs),
            }
        )
        return {
            "key": process.key,
            "version": version,
            "sha256": process.sha256,
            "created": True,
            "id": definition_id,
        }

    def lint(
        self,
        documents: Sequence[tuple[str, bytes]],
        *,
        level: int | None = None,
        fallback: Resolver | None = None,
    ) -> list[dict[str, Any]]:
        """Check BPMN documents without deploying them; return every problem found (empty when clean).

        Args:
            documents: (file name, XML bytes) pairs.
            level: also check conformance to this service level (``engine.bpmn_levels``).
            fallback: finds processes that are neither given nor deployed (e.g. bundled fragments).
        """
        with self.store.unit_of_work(write=False) as uow:
            deployed = self.resolver(uow)

            def resolve(process_id: str) -> tuple[str, bytes] | None:
                found = deployed(process_id)
                return found if found is not None or fallback is None else fallback(process_id)

            problems = bpmn_lint.lint_documents(
                documents,
                known_operators=self.known_operators,
                check_expression=sandbox.check_script,
                resolve_missing=resolve,
            )
            if level is not None and not problems:
                problems = check_level(documents, level, resolve_missing=resolve)
        return [problem.to_dict() for problem in problems]

    def list(self, key: str | None = None) -> list[dict[str, Any]]:
        """Return deployed definition versions (newest first per key)."""
        with self.store.unit_of_work(write=False) as uow:
            return [dict(row._mapping) for row in uow.list_definitions(key)]

    def specs(self, uow: UnitOfWork, definition_id: int) -> Specs:
        specs = self._specs.get(definition_id)
        if specs is None:
            row = uow.definition(definition_id)
            if row is None:
                raise NotFoundError(f"Definition {definition_id} does not exist")
            specs = self.codec.load_specs(row.spec_json)
            with self._lock:
                self._specs[definition_id] = specs
        return specs

    # -- instances --------------------------------------------------------------------------------
