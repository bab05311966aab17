"""Answer feedback through the API: rate, change, list, delete; another tenant sees none of it; the export is a
dataset `sovrag eval` reads (liked answers become references with their passages)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from sovrag.config import Settings
from sovrag.evaluate.dataset import read_dataset
from sovrag.serve import create_app
from sovrag.serve.options import ServerOptions

ADMIN = {"Authorization": "Bearer admin-" + "f" * 32}
PASSAGE = "New employees get 25 vacation days per year."


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings, options=ServerOptions(admin_key="admin-" + "f" * 32))) as c:
        yield c


def _tenant(c: TestClient, name: str) -> dict[str, str]:
    tid = c.post("/admin/tenants", json={"name": name}, headers=ADMIN).json()["id"]
    key = c.post(f"/admin/tenants/{tid}/keys", json={}, headers=ADMIN).json()["key"]
    me = {"Authorization": f"Bearer {key}"}
    c.post("/v1/collections", json={"name": "handbook"}, headers=me).raise_for_status()
    return me


def _rate(c: TestClient, me: dict[str, str], **kw: object):  # type: ignore[no-untyped-def]
    body = {"collection": "handbook", "question": "How many vacation days do new employees get?",
            "answer": "New employees get 25 vacation days per year.[1]", "rating": "up",
            "sources": [{"number": 1, "source": "handbook.md", "text": PASSAGE}], "answer_id": "chatcmpl-abc", **kw}
    return c.post("/v1/feedback", json=body, headers=me)


def test_rate_change_list_and_delete(client: TestClient) -> None:
    a, b = _tenant(client, "acme"), _tenant(client, "globex")
    liked = _rate(client, a)
    assert liked.status_code == 201, liked.text
    up = liked.json()
    assert up["id"].startswith("fb_") and up["rating"] == "up" and up["sources"][0]["text"] == PASSAGE
    down = _rate(client, a, question="Who approves travel?", answer="The CEO approves travel.", rating="down",
                 comment="Wrong: team leads approve it", sources=[]).json()
    listed = client.get("/v1/feedback?collection=handbook", headers=a).json()["data"]
    assert [f["id"] for f in listed] == [down["id"], up["id"]]  # newest first
    assert [f["id"] for f in client.get("/v1/feedback?rating=down", headers=a).json()["data"]] == [down["id"]]
    changed = client.patch(f"/v1/feedback/{up['id']}", json={"rating": "down", "comment": "too short"}, headers=a)
    assert changed.status_code == 200, changed.text
    assert changed.json()["rating"] == "down" and changed.json()["comment"] == "too short"
    assert changed.json()["updated"] >= changed.json()["created"]
    # another tenant neither sees nor touches it
    assert client.get("/v1/feedback", headers=b).json()["data"] == []
    assert client.patch(f"/v1/feedback/{up['id']}", json={"rating": "up"}, headers=b).status_code == 404
    assert client.delete(f"/v1/feedback/{up['id']}", headers=b).status_code == 404
    assert client.delete(f"/v1/feedback/{up['id']}", headers=a).json()["deleted"] is True
    assert client.delete(f"/v1/feedback/{up['id']}", headers=a).json()["error"]["code"] == "feedback_not_found"


def test_bad_feedback_is_refused_naming_the_field(client: TestClient) -> None:
    a = _tenant(client, "acme")
    for kw, field in (({"rating": "meh"}, "rating"), ({"comment": "x" * 2001}, "comment"),
                      ({"question": "   "}, "question"), ({"mood": "happy"}, "mood")):
        r = _rate(client, a, **kw)
        assert r.status_code == 400 and field in r.json()["error"]["message"], (kw, r.text)
    r = _rate(client, a, collection="nope")
    assert r.status_code == 404 and "nope" in r.json()["error"]["message"]
    assert client.get("/v1/feedback", headers=a).json()["data"] == []  # nothing stored by the refusals


def test_the_export_is_a_dataset_sovrag_eval_reads(client: TestClient, tmp_path: Path) -> None:
    a = _tenant(client, "acme")
    _rate(client, a)
    _rate(client, a, question="Who approves travel?", answer="The CEO approves travel.", rating="down",
          comment="Wrong: team leads approve it", sources=[])
    r = client.get("/v1/feedback/export?collection=handbook", headers=a)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-ndjson")
    assert 'filename="feedback-handbook.jsonl"' in r.headers["content-disposition"]
    path = tmp_path / "feedback.jsonl"
    path.write_text(r.text)
    ds = read_dataset(path)
    assert not ds.errors and len(ds.samples) == 2
    liked, disliked = ds.samples  # oldest first
    assert liked.reference == "New employees get 25 vacation days per year."  # no citation marks
    assert liked.reference_contexts == (PASSAGE,) and liked.relevant == ("handbook.md",)
    assert disliked.question == "Who approves travel?" and disliked.reference is None
    assert json.loads(r.text.splitlines()[1])["feedback"]["comment"] == "Wrong: team leads approve it"
    only_up = client.get("/v1/feedback/export?collection=handbook&rating=up", headers=a).text
    assert len(only_up.splitlines()) == 1
    assert client.get("/v1/feedback/export?collection=nope", headers=a).status_code == 404


def test_deleting_the_collection_deletes_its_feedback(client: TestClient) -> None:
    a = _tenant(client, "acme")
    client.post("/v1/collections", json={"name": "wiki"}, headers=a).raise_for_status()
    _rate(client, a)
    _rate(client, a, collection="wiki")
    client.delete("/v1/collections/handbook", headers=a).raise_for_status()
    assert [f["collection"] for f in client.get("/v1/feedback", headers=a).json()["data"]] == ["wiki"]
