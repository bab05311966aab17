"""Admin operations: a tenant's keys listed (how a lost key is found and revoked), keys that expire, and deleting
a tenant with its collections after confirmation."""

from __future__ import annotations

import secrets
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from sovrag.config import Settings
from sovrag.serve import create_app
from sovrag.serve.db import SqliteDatabase
from sovrag.serve.options import ServerOptions

ADMIN = "admin-" + secrets.token_hex(16)
AS_ADMIN = {"Authorization": f"Bearer {ADMIN}"}


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings, options=ServerOptions(admin_key=ADMIN))) as c:
        yield c


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _error(r, status: int, code: str) -> str:  # type: ignore[no-untyped-def]
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code, r.text
    return str(r.json()["error"]["message"])


def test_a_tenants_keys_are_listed_without_the_keys(client: TestClient) -> None:
    tid = client.post("/admin/tenants", json={"name": "acme"}, headers=AS_ADMIN).json()["id"]
    laptop = client.post(f"/admin/tenants/{tid}/keys", json={"name": "laptop"}, headers=AS_ADMIN).json()
    ci = client.post(f"/admin/tenants/{tid}/keys", json={"name": "ci", "expires_in_days": 30}, headers=AS_ADMIN).json()
    assert 29.9 * 86400 < ci["expires"] - time.time() <= 30 * 86400
    client.delete(f"/admin/keys/{laptop['id']}", headers=AS_ADMIN).raise_for_status()
    r = client.get(f"/admin/tenants/{tid}/keys", headers=AS_ADMIN)
    assert r.status_code == 200, r.text
    listed = {k["id"]: k for k in r.json()["data"]}
    assert set(listed) == {laptop["id"], ci["id"]}
    assert listed[laptop["id"]]["state"] == "revoked" and listed[ci["id"]]["state"] == "active"
    assert listed[ci["id"]]["name"] == "ci" and ci["key"].startswith(listed[ci["id"]]["prefix"])
    assert ci["key"] not in r.text and laptop["key"] not in r.text and "hash" not in r.text
    _error(client.get("/admin/tenants/999/keys", headers=AS_ADMIN), 404, "tenant_not_found")
    _error(client.get(f"/admin/tenants/{tid}/keys", headers=_bearer(ci["key"])), 403, "admin_only")


def test_a_key_stops_working_when_it_expires(client: TestClient) -> None:
    tid = client.post("/admin/tenants", json={"name": "acme"}, headers=AS_ADMIN).json()["id"]
    key = client.post(f"/admin/tenants/{tid}/keys", json={"expires_at": time.time() + 1.5}, headers=AS_ADMIN).json()
    assert client.get("/v1/models", headers=_bearer(key["key"])).status_code == 200
    time.sleep(1.6)
    message = _error(client.get("/v1/models", headers=_bearer(key["key"])), 401, "expired_api_key")
    assert key["id"] in message and "expired at" in message
    states = {k["id"]: k["state"] for k in client.get(f"/admin/tenants/{tid}/keys", headers=AS_ADMIN).json()["data"]}
    assert states[key["id"]] == "expired"
    past = client.post(f"/admin/tenants/{tid}/keys", json={"expires_at": time.time() - 5}, headers=AS_ADMIN)
    assert "expired already" in _error(past, 400, "invalid_request")
    both = client.post(f"/admin/tenants/{tid}/keys", json={"expires_at": time.time() + 60, "expires_in_days": 1},
                       headers=AS_ADMIN)
    assert "give one of them" in _error(both, 400, "invalid_request")
    never = client.post(f"/admin/tenants/{tid}/keys", content=b'{"expires_at": NaN}',
                        headers={**AS_ADMIN, "Content-Type": "application/json"})
    assert never.status_code == 400 and "expires_at" in never.text  # not a key that silently never expires
    unknown = client.post(f"/admin/tenants/{tid}/keys", json={"expiry": 5}, headers=AS_ADMIN)
    assert unknown.status_code == 400 and "expiry" in unknown.text


def test_deleting_a_tenant_needs_its_name_and_takes_its_collections(client: TestClient) -> None:
    ids = {}
    keys = {}
    for name in ("acme", "globex"):
        ids[name] = client.post("/admin/tenants", json={"name": name}, headers=AS_ADMIN).json()["id"]
        keys[name] = client.post(f"/admin/tenants/{ids[name]}/keys", json={}, headers=AS_ADMIN).json()["key"]
        for col in ("docs", "wiki"):
            client.post("/v1/collections", json={"name": col}, headers=_bearer(keys[name])).raise_for_status()
    acme = ids["acme"]
    message = _error(client.delete(f"/admin/tenants/{acme}", headers=AS_ADMIN), 400, "confirmation_required")
    assert "?confirm=acme" in message
    _error(client.delete(f"/admin/tenants/{acme}?confirm=globex", headers=AS_ADMIN), 400, "confirmation_required")
    assert client.get("/v1/collections", headers=_bearer(keys["acme"])).status_code == 200  # nothing happened
    r = client.delete(f"/admin/tenants/{acme}?confirm=acme", headers=AS_ADMIN)
    assert r.status_code == 200, r.text
    assert r.json()["deleted"] is True and sorted(r.json()["collections"]) == ["docs", "wiki"]
    _error(client.get("/v1/collections", headers=_bearer(keys["acme"])), 401, "invalid_api_key")
    assert [t["name"] for t in client.get("/admin/tenants", headers=AS_ADMIN).json()["data"]] == ["globex"]
    _error(client.delete(f"/admin/tenants/{acme}?confirm=acme", headers=AS_ADMIN), 404, "tenant_not_found")
    left = client.get("/v1/collections", headers=_bearer(keys["globex"])).json()["data"]
    assert sorted(c["name"] for c in left) == ["docs", "wiki"]  # the other tenant keeps everything
    # the name is free again, and a new tenant of that name starts empty
    again = client.post("/admin/tenants", json={"name": "acme"}, headers=AS_ADMIN).json()["id"]
    key = client.post(f"/admin/tenants/{again}/keys", json={}, headers=AS_ADMIN).json()["key"]
    assert client.get("/v1/collections", headers=_bearer(key)).json()["data"] == []


def test_a_database_from_before_key_expiry_gains_the_column(tmp_path: Path) -> None:
    path = tmp_path / "server.db"
    with sqlite3.connect(path) as old:
        old.executescript("CREATE TABLE tenants (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE, "
                          "created REAL NOT NULL); CREATE TABLE api_keys (id TEXT PRIMARY KEY, tenant_id INTEGER NOT "
                          "NULL REFERENCES tenants(id), key_hash TEXT NOT NULL UNIQUE, prefix TEXT NOT NULL, name TEXT "
                          "NOT NULL DEFAULT '', rate_limit_rpm INTEGER, created REAL NOT NULL, revoked REAL);"
                          "INSERT INTO tenants(name, created) VALUES ('acme', 1);"
                          "INSERT INTO api_keys VALUES ('key_1', 1, 'h', 'sk-sovrag-ab', '', NULL, 1, NULL);")
    db = SqliteDatabase(path)
    try:
        assert db.one("SELECT id, expires FROM api_keys") == {"id": "key_1", "expires": None}
    finally:
        db.close()
