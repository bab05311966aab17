"""Ingestion as background jobs: one worker thread runs sovrag's incremental ingest on uploaded files.

Jobs are recorded in SQLite with their state (queued, running, succeeded, failed, aborted) and per-file
progress. One worker keeps ingestion from starving chat and search of cores. At shutdown the running job
gets a grace period and is then aborted between files; queued jobs are marked aborted. Ingestion is
idempotent (content-hash ids), so an aborted job is completed by uploading the same files again.
"""

from __future__ import annotations

import json
import logging
import queue
import secrets
import threading
from pathlib import Path
from typing import Any

from sovrag.config import Settings
from sovrag.ingest.files import document_id
from sovrag.ingest.sync import ingest
from sovrag.serve.apierror import APIError, scrub_paths
from sovrag.serve.db import Database, now
from sovrag.serve.metrics import Metrics
from sovrag.serve.services.collections import TenantCollections
from sovrag.serve.services.files import UploadedFiles

log = logging.getLogger("sovrag.serve.jobs")

ACTIVE = ("queued", "running")


class JobAborted(Exception):
    pass


class JobRunner:
    def __init__(self, settings: Settings, db: Database, collections: TenantCollections, files: UploadedFiles,
                 metrics: Metrics) -> None:
        self.settings = settings
        self.db = db
        self.collections = collections
        self.files = files
        self.metrics = metrics
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._abort = threading.Event()
        self.closing = False
        # jobs a previous process left unfinished cannot be resumed from memory: say so
        n = self.db.run("UPDATE jobs SET state = 'aborted', error = 'the server stopped before the job finished; "
                        "upload the files again', finished = ? WHERE state IN ('queued', 'running')", (now(),))
        if n:
            log.warning("marked %d unfinished job(s) from a previous run as aborted", n)
        self._thread = threading.Thread(target=self._work, name="sovrag-ingest", daemon=True)
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive() and not self.closing

    def submit(self, tenant_id: int, collection: str, paths: list[Path]) -> str:
        if self.closing:
            raise APIError(503, "the server is shutting down and accepts no new ingestion jobs",
                           code="shutting_down")
        job_id = "job_" + secrets.token_hex(12)
        self.db.run("INSERT INTO jobs(id, tenant_id, collection, state, files_total, paths, created) "
                    "VALUES (?, ?, ?, 'queued', ?, ?, ?)",
                    (job_id, tenant_id, collection, len(paths), json.dumps([str(p) for p in paths]), now()))
        self.metrics.jobs_running.inc()
        self._queue.put(job_id)
        return job_id

    def get(self, tenant_id: int, job_id: str) -> dict[str, Any]:
        row = self.db.one("SELECT * FROM jobs WHERE id = ? AND tenant_id = ?", (job_id, tenant_id))
        if row is None:
            raise APIError(404, f"job {job_id!r}: not found", code="job_not_found")
        return view(row)

    def forget_tenant(self, tenant_id: int) -> None:
        """A deleted tenant's finished jobs (the caller checked that none is queued or running)."""
        self.db.run("DELETE FROM jobs WHERE tenant_id = ?", (tenant_id,))

    def active(self, tenant_id: int, collection: str) -> bool:
        return self.db.one("SELECT id FROM jobs WHERE tenant_id = ? AND collection = ? AND state IN (?, ?)",
                           (tenant_id, collection, *ACTIVE)) is not None

    def _work(self) -> None:
        while (job_id := self._queue.get()) is not None:
            try:
                self._run(job_id)
            except Exception:  # a bug in one job must not stop the worker
                log.exception("job %s crashed", job_id)
                self._finish(job_id, "failed", error="internal error while ingesting")
            finally:
                self.metrics.jobs_running.dec()

    def _run(self, job_id: str) -> None:
        row = self.db.one("SELECT * FROM jobs WHERE id = ?", (job_id,))
        if row is None or row["state"] != "queued":
            return
        if self._abort.is_set():
            self._finish(job_id, "aborted", error="the server shut down before the job ran; upload again")
            return
        self.db.run("UPDATE jobs SET state = 'running', started = ? WHERE id = ?", (now(), job_id))
        tenant_id, name = int(row["tenant_id"]), str(row["collection"])
        paths = [Path(p) for p in json.loads(row["paths"])]
        try:
            with self.collections.use(tenant_id, name) as col:
                self._ingest(job_id, tenant_id, name, col, paths)
        except APIError as e:
            self._finish(job_id, "failed", error=e.message)

    def _ingest(self, job_id: str, tenant_id: int, name: str, col: Any, paths: list[Path]) -> None:
        done = 0

        def progress(path: str, status: str) -> None:
            nonlocal done
            done += 1
            self.metrics.files.labels(status).inc()
            self.db.run("UPDATE jobs SET files_done = ? WHERE id = ?", (done, job_id))
            if self._abort.is_set():
                raise JobAborted()

        try:
            report = ingest(self.settings, col, paths, progress=progress)
        except JobAborted:
            col.store.flush()
            self._finish(job_id, "aborted", error=f"the server shut down after {done} of {len(paths)} files; "
                         "upload the rest again")
            return
        for source in report.added + report.updated + report.unchanged:
            self._describe(tenant_id, name, col, source)
        for source, why in report.failed:  # the upload stays listed, with why, until the tenant deletes it
            self.files.failed(tenant_id, name, document_id(source),
                              scrub_paths(why.replace(str(Path(source).parent) + "/", "")))
        summary = {**report.summary(), "failures": [
            {"file": Path(src).name, "reason": scrub_paths(why.replace(str(Path(src).parent) + "/", ""))}
            for src, why in report.failed]}
        self._finish(job_id, "succeeded", report=summary)

    def _describe(self, tenant_id: int, name: str, col: Any, source: str) -> None:
        """Record a document's title and format, read back from one of its stored chunks."""
        doc_id = document_id(source)
        found = col.store.chunks({"doc_id": doc_id}, limit=1)
        if found:
            c = found[0]
            self.files.indexed(tenant_id, name, doc_id, c.title, c.format)

    def _finish(self, job_id: str, state: str, report: dict[str, Any] | None = None, error: str = "") -> None:
        self.db.run("UPDATE jobs SET state = ?, report = ?, error = ?, finished = ? WHERE id = ?",
                    (state, json.dumps(report or {}), error, now(), job_id))
        log.info("job %s %s%s", job_id, state, f": {error}" if error else "")

    def shutdown(self, grace_s: float) -> None:
        """Stop accepting jobs; let the running one finish within grace_s, then abort it and the queue."""
        self.closing = True
        self._queue.put(None)
        self._thread.join(grace_s)
        if self._thread.is_alive():
            self._abort.set()
            self._thread.join(60)
        while True:
            try:
                job_id = self._queue.get_nowait()
            except queue.Empty:
                break
            if job_id is not None:
                self.metrics.jobs_running.dec()
        self.db.run("UPDATE jobs SET state = 'aborted', error = 'the server shut down before the job ran; upload "
                    "again', finished = ? WHERE state = 'queued'", (now(),))


def view(row: dict[str, Any]) -> dict[str, Any]:
    return {"object": "ingestion.job", "id": row["id"], "collection": row["collection"], "state": row["state"],
            "files_total": row["files_total"], "files_done": row["files_done"],
            "report": json.loads(row["report"] or "{}"), "error": row["error"] or None,
            "created": row["created"], "started": row["started"], "finished": row["finished"]}
