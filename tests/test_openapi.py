"""The OpenAPI document is a contract: bearer auth declared, every JSON body typed, errors documented as sent
(OpenAI's shape, 400 not 422), and real responses of every documented route validate against their models."""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel

from sovrag.config import Settings
from sovrag.serve import create_app
from sovrag.serve.openapi import RESPONSES, ErrorResponse
from sovrag.serve.options import ServerOptions

ADMIN = "admin-" + secrets.token_hex(16)
AS_ADMIN = {"Authorization": f"Bearer {ADMIN}"}


class Checked:
    """A TestClient whose every JSON response is validated against the model the OpenAPI document names for its
    route and status (success model, or ErrorResponse for a documented error code)."""

    def __init__(self, client: TestClient) -> None:
        self.c = client
        self.spec = client.get("/openapi.json").json()
        self.seen: set[tuple[str, str]] = set()

    def _template(self, method: str, path: str) -> str:
        """The documented path template a concrete path falls under (the most specific one)."""
        found = [t for t, ops in self.spec["paths"].items() if method.lower() in ops
                 and re.fullmatch(re.sub(r"\{[^}]+\}", "[^/]+", t), path)]
        assert found, f"{method} {path}: no documented route"
        return min(found, key=lambda t: t.count("{"))

    def __call__(self, method: str, path: str, status: int, **kw: Any) -> dict[str, Any]:
        r = self.c.request(method, path, **kw)
        assert r.status_code == status, (method, path, r.status_code, r.text)
        template = self._template(method, path.split("?")[0])
        op = self.spec["paths"][template][method.lower()]
        assert str(status) in op["responses"], f"{method} {template}: {status} is sent but not documented"
        body = r.json()
        model: type[BaseModel] = ErrorResponse if status >= 400 else RESPONSES[(method.lower(), template)]
        model.model_validate(body)  # unknown or missing fields fail
        self.seen.add((method.lower(), template))
        return body  # type: ignore[no-any-return]


@pytest.fixture
def api(settings: Settings) -> Iterator[Checked]:
    with TestClient(create_app(settings, options=ServerOptions(admin_key=ADMIN))) as c:
        yield Checked(c)


def test_the_document_declares_bearer_auth_typed_bodies_and_the_real_errors(api: Checked) -> None:
    spec = api.spec
    bearer = spec["components"]["securitySchemes"]["bearer"]
    assert bearer["type"] == "http" and bearer["scheme"] == "bearer" and "tenant key" in bearer["description"]
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            where = f"{method.upper()} {path}"
            assert "422" not in op["responses"], where
            assert op["responses"]["400"]["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/ErrorResponse"}, where
            public = path in ("/healthz", "/readyz")
            assert (op.get("security") == [{"bearer": []}]) is not public, where
            if not public:
                assert {"401", "403", "429"} <= set(op["responses"]), where
            if path in ("/metrics", "/v1/reports/{run_id}/report.html", "/v1/feedback/export"):
                continue  # text bodies
            assert (method, path) in RESPONSES, f"{where}: its success body has no model"
            ok = next(v for k, v in op["responses"].items() if k.startswith("2"))
            assert ok["content"]["application/json"]["schema"]["$ref"].startswith("#/components/schemas/"), where
    assert "text/event-stream" in spec["paths"]["/v1/chat/completions"]["post"]["responses"]["200"]["content"]


def test_real_responses_match_the_documented_models(api: Checked) -> None:
    api("GET", "/healthz", 200)
    api("GET", "/readyz", 200)
    api("GET", "/admin/tenants", 401)
    tenant = api("POST", "/admin/tenants", 201, json={"name": "acme"}, headers=AS_ADMIN)
    api("POST", "/admin/tenants", 400, json={"name": ""}, headers=AS_ADMIN)
    tid = tenant["id"]
    key = api("POST", f"/admin/tenants/{tid}/keys", 201, json={"name": "ci", "expires_in_days": 1}, headers=AS_ADMIN)
    spare = api("POST", f"/admin/tenants/{tid}/keys", 201, json={}, headers=AS_ADMIN)
    api("GET", "/admin/tenants", 200, headers=AS_ADMIN)
    api("GET", f"/admin/tenants/{tid}/keys", 200, headers=AS_ADMIN)
    api("GET", "/admin/tenants/999/keys", 404, headers=AS_ADMIN)
    me = {"Authorization": f"Bearer {key['key']}"}
    api("GET", "/admin/tenants", 403, headers=me)
    api("GET", "/v1/tenant", 200, headers=me)
    api("GET", "/v1/tenant", 403, headers=AS_ADMIN)
    api("POST", "/v1/collections", 201, json={"name": "docs"}, headers=me)
    api("POST", "/v1/collections", 400, json={"name": 5}, headers=me)
    api("GET", "/v1/collections", 200, headers=me)
    api("GET", "/v1/collections/docs", 200, headers=me)
    api("GET", "/v1/collections/nope", 404, headers=me)
    job = api("POST", "/v1/collections/docs/documents", 202, headers=me, files=[
        ("files", ("handbook.md", b"# Handbook\n\nNew employees get 25 vacation days per year.\n"))])
    deadline = time.monotonic() + 120
    while (state := api("GET", f"/v1/jobs/{job['id']}", 200, headers=me))["state"] in ("queued", "running"):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert state["state"] == "succeeded", state
    api("GET", "/v1/jobs/job_nope", 404, headers=me)
    docs = api("GET", "/v1/collections/docs/documents", 200, headers=me)["data"]
    api("GET", f"/v1/collections/docs/documents/{docs[0]['id']}", 200, headers=me)
    hits = api("POST", "/v1/collections/docs/search", 200, json={"query": "vacation days", "top_k": 2}, headers=me)
    assert "25" in hits["data"][0]["text"]
    api("POST", "/v1/collections/docs/search", 400, json={"query": "x", "top_k": 0}, headers=me)
    models = api("GET", "/v1/models", 200, headers=me)["data"]
    api("GET", "/v1/models/rag:docs", 200, headers=me)
    api("GET", "/v1/models/rag:nope", 404, headers=me)
    embedder = next(m["id"] for m in models if "minilm" in m["id"])
    api("POST", "/v1/embeddings", 200, json={"model": embedder, "input": ["a", "b"]}, headers=me)
    api("POST", "/v1/embeddings", 200, json={"model": embedder, "input": "a", "encoding_format": "base64"}, headers=me)
    api("POST", "/v1/embeddings", 404, json={"model": "nope", "input": "a"}, headers=me)
    api("POST", "/v1/chat/completions", 400, json={"model": "rag:docs", "messages": []}, headers=me)
    api("POST", "/v1/chat/completions", 400, headers=me, json={
        "model": "rag:docs", "messages": [{"role": "user", "content": "hi"}], "tools": [{"type": "function"}]})
    api("POST", "/v1/chat/completions", 404, json={"model": "nope", "messages": [{"role": "user", "content": "hi"}]},
        headers=me)
    fb = api("POST", "/v1/feedback", 201, headers=me, json={"collection": "docs", "question": "Vacation days?",
                                                             "answer": "25.[1]", "rating": "up", "sources": [
                                                                 {"number": 1, "source": "handbook.md", "text": "25"}]})
    api("POST", "/v1/feedback", 400, headers=me, json={"collection": "docs", "question": "q", "answer": "a",
                                                       "rating": "meh"})
    api("PATCH", f"/v1/feedback/{fb['id']}", 200, json={"comment": "exact"}, headers=me)
    api("GET", "/v1/feedback", 200, headers=me)
    api("DELETE", f"/v1/feedback/{fb['id']}", 200, headers=me)
    api("DELETE", f"/v1/feedback/{fb['id']}", 404, headers=me)
    api("GET", "/v1/reports", 200, headers=me)
    api("GET", "/v1/reports/eval-20260101T000000Z-abcdef", 404, headers=me)
    api("DELETE", f"/v1/collections/docs/documents/{docs[0]['id']}", 200, headers=me)
    api("DELETE", "/v1/collections/docs", 200, headers=me)
    api("DELETE", f"/admin/keys/{spare['id']}", 200, headers=AS_ADMIN)
    api("DELETE", f"/admin/keys/{spare['id']}", 404, headers=AS_ADMIN)
    api("DELETE", f"/admin/tenants/{tid}", 400, headers=AS_ADMIN)
    api("DELETE", f"/admin/tenants/{tid}?confirm=acme", 200, headers=AS_ADMIN)
    api("GET", "/v1/tenant", 401, headers=me)
    # every typed route was exercised, except the chat completion's success body (it needs the LLM: see
    # test_chat_completion_body_matches_its_model) and a report (none saved here: tests/test_serve_ui_api.py)
    missing = set(RESPONSES) - api.seen - {("post", "/v1/chat/completions"), ("get", "/v1/reports/{run_id}")}
    assert not missing, missing


@pytest.mark.model
def test_chat_completion_body_matches_its_model(api: Checked) -> None:
    tid = api("POST", "/admin/tenants", 201, json={"name": "acme"}, headers=AS_ADMIN)["id"]
    me = {"Authorization": f"Bearer {api('POST', f'/admin/tenants/{tid}/keys', 201, json={}, headers=AS_ADMIN)['key']}"}
    api("POST", "/v1/collections", 201, json={"name": "docs"}, headers=me)
    job = api("POST", "/v1/collections/docs/documents", 202, headers=me, files=[
        ("files", ("handbook.md", b"# Handbook\n\nNew employees get 25 vacation days per year.\n"))])
    while api("GET", f"/v1/jobs/{job['id']}", 200, headers=me)["state"] in ("queued", "running"):
        time.sleep(0.1)
    body = api("POST", "/v1/chat/completions", 200, headers=me, json={
        "model": "rag:docs", "max_tokens": 48, "messages": [{"role": "user", "content": "How many vacation days?"}]})
    assert body["sovrag"]["sources"]
    plain = next(m["id"] for m in api("GET", "/v1/models", 200, headers=me)["data"] if "qwen" in m["id"])
    api("POST", "/v1/chat/completions", 200, headers=me, json={
        "model": plain, "max_tokens": 4, "messages": [{"role": "user", "content": "Say hi."}]})
