"""The procedure catalogue in the database, seeded from workflows/ and bound to conforming BPMN."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from engine.bpmn_levels import check_level
from engine.errors import DefinitionError, NotFoundError, ValidationError
from engine.facade import Engine

from . import store
from .catalogue import dump_procedure, load_forms, load_procedures
from .catalogue_schemas import ProcedureSchema
from .procedure_terms import decree_42_class


class Catalogue:
    """The procedures citizens can read about and submit dossiers for."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.forms: dict[str, dict[str, Any]] = {}

    def seed(self, folder: Path, actor: str = "seed") -> list[dict[str, Any]]:
        """Load procedures and forms from ``folder`` (procedures/, forms/) into the catalogue; idempotent.

        Each procedure's BPMN must be deployed and conform to the procedure's level.

        Raises:
            ValidationError: a file is malformed (names the file and field).
            DefinitionError: a procedure is bound to a BPMN that is missing or below its level.
        """
        if not (folder / "procedures").is_dir():
            return []
        forms = load_forms(folder / "forms")
        procedures = load_procedures(folder / "procedures", forms)
        self.forms = forms
        with self.engine.store.unit_of_work() as uow:
            for procedure in procedures:
                self._check_binding(uow, procedure)
                store.upsert_procedure(uow.conn, self._procedure_row(procedure))
        return [{"code": p["code"], "level": p["level"], "bpmn": p["bpmn"]} for p in procedures]

    def bind(self, code: str, bpmn: str) -> dict[str, Any]:
        """Run a procedure's dossiers on another deployed process, which must conform to its level.

        New dossiers start on it; running ones stay on their definition version.

        Raises:
            NotFoundError: no such procedure.
            ValidationError: the process key is malformed.
            DefinitionError: the process is not deployed or does not conform to the procedure's level.
        """
        if not isinstance(bpmn, str) or not re.fullmatch(r"[a-z][a-z0-9_]*_l[1-4]", bpmn):
            raise ValidationError("The process key must look like '<name>_l<level>'", {"bpmn": ["bad key"]})
        procedure = self.typed(code)
        procedure.pop("decree_42_class", None)
        procedure = {**procedure, "bpmn": bpmn}
        with self.engine.store.unit_of_work() as uow:
            self._check_binding(uow, procedure)
            store.upsert_procedure(uow.conn, self._procedure_row(procedure))
        return self.get(code)

    def _check_binding(self, uow: Any, procedure: Mapping[str, Any]) -> None:
        head = uow.latest_definition(procedure["bpmn"])
        if head is None:
            raise DefinitionError(
                f"Procedure {procedure['code']} is bound to '{procedure['bpmn']}', which is not deployed",
                element_id=procedure["bpmn"],
            )
        row = uow.definition(head.id)
        problems = check_level(
            [(row.source_file, bytes(row.xml))],
            int(procedure["level"]),
            process_key=procedure["bpmn"],
            resolve_missing=self.engine.resolver(uow),
        )
        if problems:
            raise DefinitionError(
                f"Procedure {procedure['code']} is level {procedure['level']} but '{procedure['bpmn']}' "
                f"does not conform: {problems[0].message}",
                file=row.source_file,
                problems=[p.to_dict() for p in problems],
            )

    def _procedure_row(self, procedure: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "code": procedure["code"],
            "name": procedure["name"],
            "level": procedure["level"],
            "bpmn": procedure["bpmn"],
            "agency_code": procedure["agency"]["code"],
            "sector": procedure["sector"],
            "decree_class": decree_42_class(procedure),
            "record": json.dumps(dump_procedure(procedure), ensure_ascii=False),
            "updated_at": self.engine.now(),
        }

    def list(self) -> list[dict[str, Any]]:
        """Return the public catalogue."""
        with self.engine.store.unit_of_work(write=False) as uow:
            return store.list_procedures(uow.conn)

    def get(self, code: str) -> dict[str, Any]:
        """Return one procedure's level-1 information.

        Raises:
            NotFoundError: no such procedure.
        """
        with self.engine.store.unit_of_work(write=False) as uow:
            found = store.get_procedure(uow.conn, code)
        if found is None:
            raise NotFoundError(f"No procedure {code}", procedure_code=code)
        return found

    def typed(self, code: str) -> dict[str, Any]:
        """Return one procedure with typed values (Decimal amounts), as the fee and time rules need.

        Raises:
            NotFoundError: no such procedure.
        """
        record = self.get(code)
        decree_class = record.pop("decree_42_class")
        record.pop("updated_at")
        return {**ProcedureSchema().load(record), "decree_42_class": decree_class}
