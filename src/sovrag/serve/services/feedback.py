"""Answer feedback (thumbs up / down with an optional comment), stored per tenant and collection, and exported
as `sovrag eval` dataset lines: a liked answer becomes a reference answer with its cited passages; a disliked
one a question to look at. The feedback table's one owner."""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Iterator
from typing import Any

from sovrag.serve.apierror import APIError
from sovrag.serve.db import Database, now

_CITATION = re.compile(r"\s*\[\d+(?:\s*,\s*\d+)*\]")
_COLUMNS = "id, collection, question, answer, rating, comment, sources, answer_id, created, updated"


def _view(row: dict[str, Any]) -> dict[str, Any]:
    return {"object": "feedback", **row, "sources": json.loads(row["sources"] or "[]")}


class Feedback:
    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, tenant_id: int, key_id: str, collection: str, question: str, answer: str, rating: str,
            comment: str, sources: list[dict[str, Any]], answer_id: str) -> dict[str, Any]:
        fid = "fb_" + secrets.token_hex(8)
        t = now()
        self.db.run(f"INSERT INTO feedback({_COLUMNS}, tenant_id, key_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (fid, collection, question, answer, rating, comment, json.dumps(sources), answer_id, t, t,
                     tenant_id, key_id))
        return self.get(tenant_id, fid)

    def get(self, tenant_id: int, fid: str) -> dict[str, Any]:
        row = self.db.one(f"SELECT {_COLUMNS} FROM feedback WHERE id = ? AND tenant_id = ?", (fid, tenant_id))
        if row is None:
            raise APIError(404, f"feedback {fid!r}: not found", code="feedback_not_found")
        return _view(row)

    def update(self, tenant_id: int, fid: str, rating: str | None, comment: str | None) -> dict[str, Any]:
        current = self.get(tenant_id, fid)
        self.db.run("UPDATE feedback SET rating = ?, comment = ?, updated = ? WHERE id = ? AND tenant_id = ?",
                    (rating or current["rating"], current["comment"] if comment is None else comment, now(), fid,
                     tenant_id))
        return self.get(tenant_id, fid)

    def delete(self, tenant_id: int, fid: str) -> None:
        if not self.db.run("DELETE FROM feedback WHERE id = ? AND tenant_id = ?", (fid, tenant_id)):
            raise APIError(404, f"feedback {fid!r}: not found", code="feedback_not_found")

    def list(self, tenant_id: int, collection: str | None = None, rating: str | None = None,
             limit: int = 100) -> list[dict[str, Any]]:
        where, args = ["tenant_id = ?"], [tenant_id]
        if collection is not None:
            where.append("collection = ?")
            args.append(collection)  # type: ignore[arg-type]
        if rating is not None:
            where.append("rating = ?")
            args.append(rating)  # type: ignore[arg-type]
        rows = self.db.all(f"SELECT {_COLUMNS} FROM feedback WHERE {' AND '.join(where)} ORDER BY created DESC, id "
                           "LIMIT ?", (*args, limit))
        return [_view(r) for r in rows]

    def delete_collection(self, tenant_id: int, collection: str) -> None:
        self.db.run("DELETE FROM feedback WHERE tenant_id = ? AND collection = ?", (tenant_id, collection))

    def delete_tenant(self, tenant_id: int) -> None:
        self.db.run("DELETE FROM feedback WHERE tenant_id = ?", (tenant_id,))

    def export(self, tenant_id: int, collection: str, rating: str | None = None) -> Iterator[str]:
        """JSONL for `sovrag eval` (oldest first): an up-voted answer is the `reference` (citation marks removed)
        with its cited passages as `reference_contexts` and their files as `relevant`; a down-voted one keeps the
        question, the answer it got and the comment under `feedback`."""
        rows = self.list(tenant_id, collection, rating, limit=1_000_000)
        for r in reversed(rows):
            meta = {"id": r["id"], "rating": r["rating"], "comment": r["comment"],
                    "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(r["created"]))}
            line: dict[str, Any] = {"question": r["question"]}
            if r["rating"] == "up":
                line["reference"] = _CITATION.sub("", r["answer"]).strip()
                texts = [s["text"] for s in r["sources"] if s.get("text")]
                names = sorted({s["source"] for s in r["sources"] if s.get("source")})
                if texts:
                    line["reference_contexts"] = texts
                if names:
                    line["relevant"] = names
            else:
                meta["answer"] = r["answer"]
            line["feedback"] = meta
            yield json.dumps(line, ensure_ascii=False) + "\n"
