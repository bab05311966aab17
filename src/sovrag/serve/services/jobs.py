"""Ingestion as background jobs: a queue in the server database that ingestion workers take jobs from.

Jobs are rows with a state (queued, running, succeeded, failed, aborted) and per-file progress. A worker
claims the oldest queued job in one statement (on PostgreSQL with `FOR UPDATE SKIP LOCKED`, so several
workers never take the same one), runs sovrag's incremental ingest on the uploaded files, and renews the job's
heartbeat while it runs. With a shared database (several `sovrag serve` workers) a job whose worker stopped
renewing for `job_lease_s` (killed, machine lost) is taken over by another worker and run again from the start:
ingestion is idempotent (content-derived chunk ids, incremental sync), so the rerun writes no duplicate and
loses nothing. A worker runs `ingest_workers` jobs at a time (0: an API-only worker that takes none).

At shutdown the running jobs get a grace period and are then stopped between files. With SQLite (one server
process) they, and the queued jobs, are marked aborted, and jobs a previous process left unfinished are marked
aborted at startup; with a shared database a stopped job goes back to the queue and queued ones stay there, for
the other workers (or this one's next start).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
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
#: Seconds between looks at the queue when nothing woke the worker (a job submitted through another worker).
POLL_S = 1.0

_CLAIM_SHARED = (
    "WITH picked AS (SELECT id, state AS was, worker AS previous FROM jobs WHERE state = 'queued' OR "
    "(state = 'running' AND (heartbeat IS NULL OR heartbeat < ?)) ORDER BY created, id LIMIT 1 FOR UPDATE SKIP LOCKED) "
    "UPDATE jobs SET state = 'running', worker = ?, heartbeat = ?, started = COALESCE(started, ?) FROM picked "
    "WHERE jobs.id = picked.id RETURNING jobs.*, picked.was, picked.previous"
)
_CLAIM_LOCAL = (
    "UPDATE jobs SET state = 'running', worker = ?, heartbeat = ?, started = COALESCE(started, ?) "
    "WHERE id = (SELECT id FROM jobs WHERE state = 'queued' ORDER BY created, id LIMIT 1) RETURNING *"
)


class JobAborted(Exception):
    pass


class JobLost(Exception):
    """Another worker took this job over (this one missed its heartbeats): stop without touching it."""


class JobRunner:
    def __init__(self, settings: Settings, db: Database, collections: TenantCollections, files: UploadedFiles,
                 metrics: Metrics, workers: int = 1, lease_s: float = 30.0) -> None:
        self.settings = settings
        self.db = db
        self.collections = collections
        self.files = files
        self.metrics = metrics
        self.lease_s = lease_s
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self._abort = threading.Event()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._mine: set[str] = set()
        self._mine_lock = threading.Lock()
        self.closing = False
        if not db.shared:
            # jobs a previous process left unfinished cannot be resumed from memory: say so
            n = self.db.run("UPDATE jobs SET state = 'aborted', error = 'the server stopped before the job "
                            "finished; upload the files again', finished = ? WHERE state IN ('queued', 'running')",
                            (now(),))
            if n:
                log.warning("marked %d unfinished job(s) from a previous run as aborted", n)
        self._threads = [threading.Thread(target=self._work, name=f"sovrag-ingest-{i}", daemon=True)
                         for i in range(workers)]
        if workers:
            self._threads.append(threading.Thread(target=self._beat, name="sovrag-ingest-heartbeat", daemon=True))
        for t in self._threads:
            t.start()

    @property
    def alive(self) -> bool:
        """Ready: not shutting down, and (where this worker ingests) its worker threads are running."""
        return not self.closing and all(t.is_alive() for t in self._threads)

    def submit(self, tenant_id: int, collection: str, paths: list[Path]) -> str:
        if self.closing:
            raise APIError(503, "the server is shutting down and accepts no new ingestion jobs",
                           code="shutting_down")
        job_id = "job_" + secrets.token_hex(12)
        self.db.run("INSERT INTO jobs(id, tenant_id, collection, state, files_total, paths, created) "
                    "VALUES (?, ?, ?, 'queued', ?, ?, ?)",
                    (job_id, tenant_id, collection, len(paths), json.dumps([str(p) for p in paths]), now()))
        self._wake.set()
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

    def _claim(self) -> dict[str, Any] | None:
        t = self.db.clock()
        sql = _CLAIM_SHARED if self.db.shared else _CLAIM_LOCAL
        args = (t - self.lease_s, self.worker_id, t, now()) if self.db.shared else (self.worker_id, t, now())
        with self.db.transaction() as tx:
            row = tx.one(sql, args)
        if row is not None and row.get("was") == "running":
            log.warning("job %s: taking it over from worker %s, which stopped renewing it after %s of %s files; "
                        "running it again from the start", row["id"], row["previous"] or "?", row["files_done"],
                        row["files_total"])
        return row

    def _work(self) -> None:
        while not self._stop.is_set():
            try:
                row = self._claim()
            except Exception:  # the database away for a moment: try again, never die
                log.exception("could not look at the job queue")
                row = None
            if row is None:
                self._wake.wait(POLL_S)
                self._wake.clear()
                continue
            job_id = str(row["id"])
            with self._mine_lock:
                self._mine.add(job_id)
            self.metrics.jobs_running.inc()
            try:
                self._run(row)
            except JobLost:
                log.warning("job %s: another worker took it over; stopped here", job_id)
            except Exception:  # a bug in one job must not stop the worker
                log.exception("job %s crashed", job_id)
                self._finish(job_id, "failed", error="internal error while ingesting")
            finally:
                self.metrics.jobs_running.dec()
                with self._mine_lock:
                    self._mine.discard(job_id)

    def _beat(self) -> None:
        """Renew the heartbeat of the jobs this worker runs, three times a lease."""
        while not self._stop.wait(self.lease_s / 3):
            with self._mine_lock:
                mine = list(self._mine)
            for job_id in mine:
                try:
                    self.db.run("UPDATE jobs SET heartbeat = ? WHERE id = ? AND worker = ? AND state = 'running'",
                                (self.db.clock(), job_id, self.worker_id))
                except Exception:
                    log.exception("could not renew job %s", job_id)

    def _run(self, row: dict[str, Any]) -> None:
        job_id = str(row["id"])
        if self._abort.is_set():
            self._finish(job_id, "aborted", error="the server shut down before the job ran; upload again")
            return
        tenant_id, name = int(row["tenant_id"]), str(row["collection"])
        paths = [Path(p) for p in json.loads(row["paths"])]
        missing = [p for p in paths if not p.exists()]
        if missing and len(missing) == len(paths):
            self._finish(job_id, "failed", error=f"the uploaded files are not on this worker ({self.worker_id}); "
                         "give every worker the same [serve] uploads_dir")
            return
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
            if not self.db.run("UPDATE jobs SET files_done = ? WHERE id = ? AND worker = ?",
                               (done, job_id, self.worker_id)):
                raise JobLost(job_id)
            if self._abort.is_set():
                raise JobAborted()

        try:
            report = ingest(self.settings, col, paths, progress=progress)
        except JobAborted:
            col.store.flush()
            if self.db.shared and self.db.run(
                    "UPDATE jobs SET state = 'queued', worker = '', heartbeat = NULL, files_done = 0 "
                    "WHERE id = ? AND worker = ?",
                    (job_id, self.worker_id)):
                log.info("job %s: handed back to the queue after %d of %d files (this worker is shutting down)",
                         job_id, done, len(paths))
                return
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
        """Record how the job ended, unless another worker has taken it over meanwhile."""
        if self.db.run("UPDATE jobs SET state = ?, report = ?, error = ?, finished = ? WHERE id = ? AND worker = ?",
                       (state, json.dumps(report or {}), error, now(), job_id, self.worker_id)):
            log.info("job %s %s%s", job_id, state, f": {error}" if error else "")

    def shutdown(self, grace_s: float) -> None:
        """Stop taking jobs; let the running ones finish within grace_s, then abort them between files. Without a
        shared database the queued jobs are marked aborted too (no other worker will run them)."""
        self.closing = True
        self._stop.set()
        self._wake.set()
        workers = [t for t in self._threads if t.name != "sovrag-ingest-heartbeat"]
        for t in workers:
            t.join(grace_s)
        if any(t.is_alive() for t in workers):
            self._abort.set()
            for t in workers:
                t.join(60)
        if not self.db.shared:
            self.db.run("UPDATE jobs SET state = 'aborted', error = 'the server shut down before the job ran; upload "
                        "again', finished = ? WHERE state = 'queued'", (now(),))


def view(row: dict[str, Any]) -> dict[str, Any]:
    return {"object": "ingestion.job", "id": row["id"], "collection": row["collection"], "state": row["state"],
            "files_total": row["files_total"], "files_done": row["files_done"],
            "report": json.loads(row["report"] or "{}"), "error": row["error"] or None,
            "created": row["created"], "started": row["started"], "finished": row["finished"],
            "worker": row.get("worker") or None}
