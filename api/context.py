"""The services of the running app, as the views reach them (set up once by ``create_app``)."""

from __future__ import annotations

from flask import current_app

from accounts.service import Accounts
from dossiers.service import DossierService
from engine.facade import Engine


def engine() -> Engine:
    """Return the engine facade of this app."""
    found: Engine = current_app.extensions["motcua.engine"]
    return found


def dossiers() -> DossierService:
    """Return the dossier service of this app."""
    found: DossierService = current_app.extensions["motcua.dossiers"]
    return found


def accounts() -> Accounts:
    """Return the accounts service of this app."""
    found: Accounts = current_app.extensions["motcua.accounts"]
    return found
