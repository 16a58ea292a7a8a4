"""The real Flask app through its test client, on the per-backend test database, with one user per role."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from argon2 import PasswordHasher
from flask.testing import FlaskClient

from accounts.service import Accounts
from api import create_app
from dossiers.catalogue import load_workflow_forms
from dossiers.service import DossierService
from engine.facade import Engine
from motcua.bundle import bundled_bpmn
from motcua.settings import Settings
from tests.dossiers.conftest import WORKFLOWS, vn

POLICE = "000.00.14.H26"  # the agency of the judicial-record procedure
COMMUNE = "000.01.01.H26"
PASSWORD = "mật-khẩu-thử-nghiệm-2026"
LINK_SECRET = "bí-mật-ký-đường-dẫn-kết-quả"  # MOTCUA_LINK_SECRET of the test app (api/results.py)
PUBLIC_URL = "https://dichvucong.example.vn"
USERS = {
    "citizen": ({"applicant"}, None),
    "citizen2": ({"applicant"}, None),
    "desk": ({"reception"}, POLICE),
    "desk2": ({"reception"}, POLICE),
    "specialist": ({"specialist"}, POLICE),
    "leader": ({"leader"}, POLICE),
    "desk_other": ({"reception"}, COMMUNE),
    "analyst": ({"analyst"}, None),
    "admin": ({"admin"}, None),
    "integrator": ({"integrator"}, None),
}


@dataclass
class Portal:
    """The app, its services and a token per user."""

    client: FlaskClient
    engine: Engine
    dossiers: DossierService
    accounts: Accounts
    clock: Any
    tokens: dict[str, str] = field(default_factory=dict)

    def login(self, username: str) -> str:
        if username not in self.tokens:
            response = self.client.post(
                "/api/v1/auth/token", json={"username": username, "password": PASSWORD}
            )
            assert response.status_code == 200, response.get_json()
            self.tokens[username] = response.get_json()["access_token"]
        return self.tokens[username]

    def call(self, method: str, path: str, user: str | None = None, **kwargs: Any) -> Any:
        headers = dict(kwargs.pop("headers", {}))
        if user is not None:
            headers["Authorization"] = f"Bearer {self.login(user)}"
        return self.client.open(path, method=method, headers=headers, **kwargs)


@pytest.fixture
def portal(make_engine: Callable[..., Engine], clock: Any) -> Portal:
    clock.current = vn(2026, 3, 2, 9, 0)
    engine = make_engine()
    engine.deploy(bundled_bpmn(WORKFLOWS), deployed_by="seed")
    dossiers = DossierService(engine, load_workflow_forms(WORKFLOWS))
    dossiers.seed_catalogue(WORKFLOWS)
    # Cheap argon2 parameters keep the suite fast; production uses argon2-cffi's defaults.
    accounts = Accounts(
        engine.store, clock, hasher=PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )
    for username, (roles, agency) in USERS.items():
        accounts.create_user(
            username, PASSWORD, roles=roles, full_name=f"Người dùng {username}", agency_code=agency
        )
    settings = replace(Settings.from_env(), link_secret=LINK_SECRET, public_url=PUBLIC_URL)
    app = create_app(settings, engine=engine, dossiers=dossiers, accounts=accounts, TESTING=True)
    return Portal(app.test_client(), engine, dossiers, accounts, clock)
