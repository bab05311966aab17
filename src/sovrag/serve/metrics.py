"""Prometheus metrics, request ids, structured request logs and request-body limits, as one ASGI middleware.

A pure ASGI middleware (not BaseHTTPMiddleware) so streamed responses pass through untouched and a
client disconnect reaches the route.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)
from starlette.routing import Match

from sovrag.serve.apierror import BodyTooLarge, error_body, too_large

log = logging.getLogger("sovrag.serve.access")

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("sovrag_request_id", default="")
_GOOD_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
#: Metric labels take the method from this set only: any token is a valid HTTP method, so a client could
#: otherwise mint a new time series per request.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

# Counters and histograms without their `_created` series (one extra, rarely useful series per label set)
disable_created_metrics()

#: Seconds, from a few ms (search) to minutes (a long answer on a busy CPU)
_LATENCY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class Metrics:
    """One registry per app, so several apps (tests) never collide in the global one."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        ProcessCollector(registry=r)  # process_cpu_seconds_total, process_resident_memory_bytes, open fds...
        PlatformCollector(registry=r)  # python_info
        GCCollector(registry=r)  # python_gc_*
        self.requests = Counter("sovrag_http_requests_total", "HTTP requests", ["route", "method", "status"],
                                registry=r)
        self.latency = Histogram("sovrag_http_request_seconds", "HTTP request latency (to the last byte)",
                                 ["route", "method"], registry=r,
                                 buckets=_LATENCY)
        self.tokens = Counter("sovrag_llm_tokens_total", "LLM tokens", ["kind"], registry=r)
        self.llm_queue = Gauge("sovrag_llm_queue_depth", "Chat requests waiting for the local LLM", registry=r)
        self.jobs_running = Gauge("sovrag_ingest_jobs_in_progress", "Ingestion jobs queued or running",
                                  registry=r)
        self.files = Counter("sovrag_ingest_files_total", "Files processed by ingestion jobs", ["status"],
                             registry=r)

        # the question journey (RAG answers), from the timings each Answer carries
        self.first_text = Histogram("sovrag_answer_first_text_seconds", "Time to first verified answer text (what a "
                                    "streaming client waits before it sees anything)", registry=r, buckets=_LATENCY)
        self.first_token = Histogram("sovrag_llm_first_token_seconds", "Time to the LLM's first token",
                                     registry=r, buckets=_LATENCY)
        self.retrieval = Histogram("sovrag_retrieval_seconds", "Retrieval (search and compression) per answer",
                                   registry=r, buckets=_LATENCY)
        self.verification = Histogram("sovrag_verification_seconds", "Verifying an answer's sentences against its "
                                      "sources", registry=r, buckets=_LATENCY)
        self.answers = Counter("sovrag_answers_total", "RAG answers by outcome", ["outcome"], registry=r)
        self.sentences = Counter("sovrag_answer_sentences_total", "Answer sentences by verdict", ["verdict"],
                                 registry=r)
        for outcome in ("answered", "quoted", "abstained"):  # quoted: the best source's words, not the model's
            self.answers.labels(outcome)
        for verdict in ("supported", "unsupported", "unchecked"):
            self.sentences.labels(verdict)

    def observe_answer(self, answer: Any) -> None:
        """Record one RAG answer (a sovrag.types.Answer): its latencies, outcome and sentence verdicts."""
        t = answer.timings
        if "first_text_s" in t:
            self.first_text.observe(t["first_text_s"])
        if "first_token_s" in t:
            self.first_token.observe(t["first_token_s"])
        retrieval = t.get("retrieve_s", 0.0) + t.get("compress_s", 0.0)  # retrieve_s includes rerank_s
        if "retrieve_s" in t:
            self.retrieval.observe(retrieval)
        if "verify_s" in t:
            self.verification.observe(t["verify_s"])
        self.answers.labels("abstained" if answer.abstained else "quoted" if answer.quoted else "answered").inc()
        if answer.abstained:
            return
        for s in answer.sentences:
            self.sentences.labels("unchecked" if s.unchecked else "supported" if s.supported else "unsupported").inc()

    def add_tokens(self, prompt: int, completion: int) -> None:
        self.tokens.labels("prompt").inc(prompt)
        self.tokens.labels("completion").inc(completion)


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with the request id of the request being served."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": round(record.created, 3), "level": record.levelname.lower(), "logger": record.name,
            "msg": record.getMessage(),
        }
        rid = getattr(record, "request_id", None) or request_id_var.get()
        if rid:
            out["request_id"] = rid
        for key in ("method", "path", "route", "status", "ms", "tenant_id", "bytes_in"):
            if hasattr(record, key):
                out[key] = getattr(record, key)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


class ThrottleFilter(logging.Filter):
    """At most `burst` records of one kind (logger, level, message template) per `window_s`; the next one
    let through after a quiet spell says how many were dropped. A flood of one error (a descriptor limit hit
    in a loop, a client retrying a bad request) must not fill the disk or drown every other line."""

    def __init__(self, burst: int = 10, window_s: float = 10.0) -> None:
        super().__init__()
        self.burst, self.window_s = burst, window_s
        self._seen: dict[tuple[str, int, str], list[float]] = {}  # kind -> [window start, count, dropped]

    def filter(self, record: logging.LogRecord) -> bool:
        kind = (record.name, record.levelno, str(record.msg))
        now = time.monotonic()
        start, count, dropped = self._seen.get(kind, [now, 0, 0])
        if now - start >= self.window_s:
            start, count = now, 0
        count += 1
        if count > self.burst:
            self._seen[kind] = [start, count, dropped + 1]
            return False
        if dropped:
            record.msg = f"{record.msg} [{int(dropped)} similar messages suppressed]"
            dropped = 0
        self._seen[kind] = [start, count, dropped]
        if len(self._seen) > 10_000:  # bounded memory whatever the variety of messages
            self._seen.clear()
        return True


class RequestMiddleware:
    """Request id (X-Request-ID in and out), body size limits, access log line, metrics."""

    def __init__(self, app: Any, metrics: Metrics, limit_for: Callable[[str], int], routes: list[Any]) -> None:
        self.app = app
        self.metrics = metrics
        self.limit_for = limit_for
        self.routes = routes  # the app's route table: metric labels are route templates, never raw paths

    def _route(self, scope: Scope) -> str:
        path = getattr(scope.get("route"), "path", None)  # set by the router on recent Starlette/FastAPI
        if isinstance(path, str):
            return path
        for route in self.routes:
            if isinstance(getattr(route, "path", None), str) and route.matches(scope)[0] == Match.FULL:
                return str(route.path)
        return "unmatched"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        given = headers.get("x-request-id", "")
        rid = given if _GOOD_ID.match(given) else "req_" + secrets.token_hex(8)
        scope.setdefault("state", {})["request_id"] = rid
        token = request_id_var.set(rid)
        t0 = time.perf_counter()
        status = 500
        started = False
        limit = self.limit_for(scope["path"])
        received = 0

        async def send_wrapped(message: dict[str, Any]) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                started = True
                status = int(message["status"])
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", rid.encode())]
            await send(message)

        async def receive_limited() -> dict[str, Any]:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        try:
            declared = headers.get("content-length", "")
            if declared.isdigit() and int(declared) > limit:
                await self._too_large(send_wrapped, limit)
            else:
                try:
                    await self.app(scope, receive_limited, send_wrapped)
                except BodyTooLarge:
                    if started:
                        raise
                    await self._too_large(send_wrapped, limit)
        finally:
            seconds = time.perf_counter() - t0
            route = self._route(scope)
            method = scope.get("method", "")
            label = method if method in METHODS else "other"
            self.metrics.requests.labels(route, label, str(status)).inc()
            self.metrics.latency.labels(route, label).observe(seconds)
            log.info("%s %s -> %d", method, scope["path"], status,
                     extra={"method": method, "path": scope["path"], "route": route, "status": status,
                            "ms": round(seconds * 1000, 1), "bytes_in": received,
                            "tenant_id": scope["state"].get("tenant_id")})
            request_id_var.reset(token)

    async def _too_large(self, send: Send, limit: int) -> None:
        e = too_large(limit)
        body = json.dumps(error_body(e.message, e.type, e.code)).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})
