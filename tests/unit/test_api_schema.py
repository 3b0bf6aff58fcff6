"""Schemathesis against the API's own OpenAPI schema: generated requests (bounded examples, as
the admin and as a tenant) on a real SQLite store never get a 500."""
from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from tenet.api.app import create_app
from tenet.model.load import load_intent
from tenet.site import Site
from tenet.store.intent import write_intent
from tenet.store.open import open_store

from test_api import ACME, ADMIN, DOC, TOKENS

STORE = "/tmp/tenet-unit-api-schema.db"  # one store for the module: generated writes pile up, as on a real one


def _app():
    for suffix in ("", "-wal", "-shm"):
        try:
            __import__("os").remove(STORE + suffix)
        except FileNotFoundError:
            pass
    s = open_store(f"sqlite:///{STORE}")
    write_intent(s, load_intent(DOC))
    s.close()
    return create_app(Site(f"sqlite:///{STORE}"), lambda: TOKENS)


schemathesis.experimental.OPEN_API_3_1.enable()  # FastAPI writes 3.1
schema = schemathesis.from_asgi("/openapi.json", _app())


@schema.parametrize()
@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
@pytest.mark.parametrize("token", [ADMIN, ACME], ids=["admin", "tenant"])
def test_no_request_gets_a_500(case, token):
    waits = bool(case.query and case.query.get("wait") == "applied")
    if waits:
        case.query["timeout"] = 0.05  # no controller runs here: a wait ends in 504, quickly
    response = case.call_asgi(headers={"Authorization": f"Bearer {token}"})
    if waits and response.status_code == 504:
        assert "not published" in response.json()["detail"] or "not applied" in response.json()["detail"]
        return
    case.validate_response(response, checks=(not_a_server_error,))
