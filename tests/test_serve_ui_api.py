"""Server parts the web UI relies on: the UI files at /, saved eval/bench runs per tenant, citation passages."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from sovrag.config import Settings
from sovrag.reports import RunSummary, new_run, write_summary
from sovrag.serve import create_app
from sovrag.serve.options import ServerOptions
from sovrag.serve.routes.openai import public_answer
from sovrag.types import Answer, AnswerSentence, Chunk, Citation, Source

ADMIN = "admin-" + secrets.token_hex(16)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    opts = ServerOptions(admin_key=ADMIN, max_upload_file_mb=2, max_upload_request_mb=8, max_upload_files=7)
    with TestClient(create_app(settings, options=opts)) as c:
        yield c


def _tenant(c: TestClient, name: str) -> tuple[int, dict[str, str]]:
    admin = {"Authorization": f"Bearer {ADMIN}"}
    tid = c.post("/admin/tenants", json={"name": name}, headers=admin).json()["id"]
    key = c.post(f"/admin/tenants/{tid}/keys", json={}, headers=admin).json()["key"]
    return tid, {"Authorization": f"Bearer {key}"}


def _run(data: Path, kind: str, store_name: str, created: str, html: str | None = "<h1>report</h1>") -> str:
    run_id, folder = new_run(data, kind)  # type: ignore[arg-type]
    write_summary(folder, RunSummary(id=run_id, kind=kind, created=created, collection=store_name,  # type: ignore[arg-type]
                                     title=f"{kind} {created}", metrics={"f1": 0.5, "ndcg@10": None}))
    if html is not None:
        (folder / "report.html").write_text(html, encoding="utf-8")
    return run_id


def test_the_ui_is_served_at_the_root_next_to_the_api(client: TestClient) -> None:
    index = client.get("/")
    assert index.status_code == 200 and "<title>sovrag</title>" in index.text
    assert "frame-ancestors 'none'" in index.headers["content-security-policy"]
    assert client.get("/ui/app.js").headers["content-type"].startswith("text/javascript")
    for bad in ("/ui/../webui.py", "/ui/%2e%2e/webui.py", "/ui/", "/ui/missing.css"):
        r = client.get(bad)
        assert r.status_code == 404 and r.json()["error"]["message"], bad
    assert client.get("/openapi.json").json()["paths"].keys().isdisjoint({"/", "/ui/{name}"})
    assert client.get("/docs").status_code == 200 and client.get("/v1/models").status_code == 401


def test_tenant_info_carries_the_upload_limits(client: TestClient) -> None:
    _, a = _tenant(client, "acme")
    me = client.get("/v1/tenant", headers=a).json()
    assert me["name"] == "acme" and me["key_id"].startswith("key_")
    assert me["limits"] == {"max_upload_file_mb": 2, "max_upload_request_mb": 8, "max_upload_files": 7}


def test_reports_show_only_the_callers_runs_with_their_collection_names(client: TestClient,
                                                                        settings: Settings) -> None:
    a_id, a = _tenant(client, "acme")
    b_id, b = _tenant(client, "globex")
    for headers, name in ((a, "docs"), (a, "other"), (b, "docs")):
        client.post("/v1/collections", json={"name": name}, headers=headers).raise_for_status()
    data = settings.data_dir
    old = _run(data, "eval", f"t{a_id}--docs", "2026-11-26T10:00:00+00:00")
    new = _run(data, "bench", f"t{a_id}--other", "2026-11-27T10:00:00+00:00", html=None)
    foreign = _run(data, "eval", f"t{b_id}--docs", "2026-11-27T11:00:00+00:00", html="<h1>globex</h1>")
    gone = _run(data, "eval", f"t{a_id}--deleted", "2026-11-27T12:00:00+00:00")  # collection no longer exists

    listed = client.get("/v1/reports", headers=a).json()["data"]
    assert [r["id"] for r in listed] == [new, old]
    assert [r["collection"] for r in listed] == ["other", "docs"]  # never the store name
    assert listed[1] == {"object": "report", "id": old, "kind": "eval", "created": "2026-11-26T10:00:00+00:00",
                         "collection": "docs", "title": "eval 2026-11-26T10:00:00+00:00",
                         "metrics": {"f1": 0.5, "ndcg@10": None}}
    assert [r["id"] for r in client.get("/v1/reports", headers=b).json()["data"]] == [foreign]

    assert client.get(f"/v1/reports/{old}", headers=a).json()["collection"] == "docs"
    html = client.get(f"/v1/reports/{old}/report.html", headers=a)
    assert html.status_code == 200 and html.text == "<h1>report</h1>"
    assert html.headers["content-type"].startswith("text/html")
    assert html.headers["content-security-policy"].startswith("sandbox")

    for run_id in (foreign, gone, "eval-20261127T100000Z-abcdef", "..%2F..%2Fserver.db", "notes"):
        for path in (f"/v1/reports/{run_id}", f"/v1/reports/{run_id}/report.html"):
            r = client.get(path, headers=a)
            assert r.status_code == 404, (path, r.text)
            assert "globex" not in r.text
    r = client.get(f"/v1/reports/{new}/report.html", headers=a)
    assert r.status_code == 404 and "no HTML report" in r.json()["error"]["message"]
    assert client.get("/v1/reports").status_code == 401


def test_public_answer_gives_each_source_its_whole_passage(tmp_path: Path) -> None:
    text = "Intro line.\n\nNew employees get 25 vacation days per year. After five years it is 30."
    chunk = Chunk(id="c1", doc_id=str(tmp_path / "files" / "handbook.md"), text=text,
                  source=str(tmp_path / "files" / "handbook.md"), title="Handbook", index=3, page=None,
                  headings=("Handbook", "Vacation"))
    evidence = "New employees get 25 vacation days per year."
    ans = Answer("How many days?", "New employees get 25 days [1].",
                 [AnswerSentence("New employees get 25 days.", (Citation(1, 0.93, evidence, True),), True)],
                 [Source(1, chunk, evidence, 0.8)], abstained=False)
    d = public_answer(ans)
    src = d["sources"][0]
    assert src["chunk"]["text"] == text and src["chunk"]["chunk_index"] == 3
    assert src["chunk"]["source"] == "handbook.md" and src["chunk"]["doc_id"].startswith("doc_")
    assert src["chunk"]["headings"] == ["Handbook", "Vacation"] and src["text"] == evidence  # unchanged fields
    assert d["sentences"][0]["citations"][0]["evidence"] in src["chunk"]["text"]
    assert str(tmp_path) not in repr(d)
