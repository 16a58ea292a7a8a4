"""The ``motcua deploy``, ``lint`` and ``definitions`` commands: BPMN files in, deployed versions out.

Registered on the main group at the bottom of ``motcua/cli.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from engine.errors import ValidationError

from .cli_base import EXIT_ERROR, _emit, _engine, command
from .settings import Settings


def _read_files(paths: tuple[str, ...]) -> list[tuple[str, bytes]]:
    documents = []
    for name in paths:
        path = Path(name)
        if not path.is_file():
            raise ValidationError(f"{name}: no such file", {"file": [f"{name} does not exist"]})
        documents.append((str(path), path.read_bytes()))
    return documents


@click.command()
@click.argument("files", nargs=-1, required=True)
@click.option("--by", "deployed_by", default="cli", help="Who deploys (recorded with each version).")
@command
def deploy(files: tuple[str, ...], deployed_by: str, as_json: bool) -> None:
    """Validate and deploy BPMN files; print key, version and checksum per process."""
    results = _engine().deploy(_read_files(files), deployed_by=deployed_by)
    _emit(
        as_json,
        results,
        lambda rows: "\n".join(
            f"{r['key']}\tv{r['version']}\t{r['sha256']}\t{'deployed' if r['created'] else 'unchanged'}"
            for r in rows
        ),
    )


@click.command()
@click.argument("file")
@click.option("--level", type=click.IntRange(1, 4), help="Also check conformance to service level N (1-4).")
@command
def lint(file: str, level: int | None, as_json: bool) -> None:
    """Validate a BPMN file (and its conformance to a level); exit 1 with the list of problems.

    Call activities resolve to deployed processes, else to the bundled fragments under workflows/bpmn.
    """
    from .bundle import bundle_resolver

    fallback = bundle_resolver(Settings.from_env().workflows_dir)
    problems = _engine().lint(_read_files((file,)), level=level, fallback=fallback)
    _emit(
        as_json,
        {"file": file, "problems": problems},
        lambda p: (
            "\n".join(
                f"{x.get('file')}:{x.get('line') or '?'}: [{x.get('element_id') or '-'}] {x['message']}"
                for x in p["problems"]
            )
            or f"{file}: ok"
        ),
    )
    if problems:
        sys.exit(EXIT_ERROR)


@click.command()
@click.option("--key", help="Only the versions of this process.")
@command
def definitions(key: str | None, as_json: bool) -> None:
    """List deployed process definition versions."""
    rows = _engine().definitions(key)
    _emit(
        as_json,
        rows,
        lambda rs: (
            "\n".join(
                f"{r['key']}\tv{r['version']}\t{r['sha256'][:12]}\t{r['deployed_at']}\t{r['deployed_by']}"
                for r in rs
            )
            or "no definitions"
        ),
    )
