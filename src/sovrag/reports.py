"""Saved runs of `sovrag eval`, `sovrag bench` and `sovrag tune`: one folder each under `<data dir>/reports/`.

A run folder holds `summary.json` (what lists and the web UI show), `report.html` (a self-contained page,
plots inlined, openable offline) and whatever else the run wrote (`results.json`, PNG plots). The server
shows a tenant the runs made on that tenant's collections; nothing else reads these folders.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

RunKind = Literal["eval", "bench", "tune"]
_RUN_ID = re.compile(r"^(eval|bench|tune)-\d{8}T\d{6}Z-[0-9a-f]{6}$")


@dataclass(frozen=True)
class RunSummary:
    id: str
    kind: RunKind
    created: str  # ISO 8601, UTC
    collection: str  # the store's name of the collection the run measured
    title: str
    metrics: dict[str, float | None] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def reports_dir(data_dir: Path) -> Path:
    return data_dir / "reports"


def new_run(data_dir: Path, kind: RunKind) -> tuple[str, Path]:
    """A fresh, unique run id and its (created) folder."""
    now = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    run_id = f"{kind}-{now}-{secrets.token_hex(3)}"
    folder = reports_dir(data_dir) / run_id
    folder.mkdir(parents=True, exist_ok=False)
    return run_id, folder


def write_json(path: Path, data: Any) -> None:
    """Written whole or not at all (temp file + rename), so a listing never sees half a file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, ensure_ascii=False, allow_nan=False)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_summary(folder: Path, summary: RunSummary) -> None:
    write_json(folder / "summary.json", summary.to_dict())


def is_run_id(run_id: str) -> bool:
    """Only names this module makes: a request can never point outside the reports folder."""
    return bool(_RUN_ID.match(run_id))


def load_summary(folder: Path) -> RunSummary | None:
    """None for a folder that is not a finished run (no or unreadable summary)."""
    try:
        data = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
        return RunSummary(id=str(data["id"]), kind=data["kind"], created=str(data["created"]),
                          collection=str(data["collection"]), title=str(data["title"]),
                          metrics=dict(data.get("metrics") or {}))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def list_runs(data_dir: Path, collections: set[str] | None = None) -> list[RunSummary]:
    """Finished runs, newest first; only those on `collections` (store names) when given."""
    root = reports_dir(data_dir)
    if not root.is_dir():
        return []
    runs = []
    for folder in root.iterdir():
        if not (folder.is_dir() and is_run_id(folder.name)):
            continue
        summary = load_summary(folder)
        if summary is None or summary.id != folder.name:
            continue
        if collections is not None and summary.collection not in collections:
            continue
        runs.append(summary)
    return sorted(runs, key=lambda s: s.created, reverse=True)
