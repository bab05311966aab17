"""Ingestion jobs at shutdown and restart: every job ends finished or cleanly aborted, never stuck."""

from __future__ import annotations

from pathlib import Path

from sovrag.config import Settings
from sovrag.serve.db import SqliteDatabase, now
from sovrag.serve.metrics import Metrics
from sovrag.serve.services.collections import TenantCollections
from sovrag.serve.services.files import UploadedFiles
from sovrag.serve.services.jobs import JobRunner

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "docs"


def test_shutdown_finishes_or_aborts_every_job_and_restart_reports_leftovers(settings: Settings) -> None:
    db = SqliteDatabase(settings.data_dir / "server.db")
    cols = TenantCollections(settings)
    cols.create(1, "docs")
    metrics = Metrics()
    runner = JobRunner(settings, db, cols, UploadedFiles(db), metrics)
    ids = [runner.submit(1, "docs", sorted(EXAMPLES.iterdir())) for _ in range(3)]
    runner.shutdown(grace_s=0)  # abort at once: the running job stops between files, queued ones never run
    states = [runner.get(1, i)["state"] for i in ids]
    assert set(states) <= {"succeeded", "aborted"} and "aborted" in states, states
    assert metrics.registry.get_sample_value("sovrag_ingest_jobs_in_progress") == 0
    assert all(runner.get(1, i)["error"] for i, s in zip(ids, states, strict=True) if s == "aborted")
    db.run("INSERT INTO jobs(id, tenant_id, collection, state, files_total, paths, created) "
           "VALUES ('job_left', 1, 'docs', 'running', 1, '[]', ?)", (now(),))
    restarted = JobRunner(settings, db, cols, UploadedFiles(db), Metrics())
    left = restarted.get(1, "job_left")
    assert left["state"] == "aborted" and "upload the files again" in left["error"]
    restarted.shutdown(grace_s=5)
    cols.close()
    db.close()
