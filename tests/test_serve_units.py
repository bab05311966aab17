"""Server parts without the live server: the LLM gate and SSE closing, upload names, error bodies, keys, options."""

from __future__ import annotations

import asyncio
import threading
import time
import unicodedata
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from sovrag.errors import CollectionError, ConfigError, ModelError, StoreError
from sovrag.generate import Generation, GenerationParams, Message
from sovrag.generate.base import StreamEvent
from sovrag.generate.shared import LLMBusy, SharedLLM
from sovrag.serve.apierror import APIError, sovrag_error_to_api
from sovrag.serve.db import SqliteDatabase
from sovrag.serve.options import ServerOptions
from sovrag.serve.routes.documents import safe_name
from sovrag.serve.routes.openai import _sse
from sovrag.serve.services.keys import KeyStore
from sovrag.serve.threads import iterate_in_thread


class FakeLLM:
    """Counts generations running at once; llama.cpp must never run two."""

    name = "fake"
    context_tokens = 2048

    def __init__(self) -> None:
        self.active = 0
        self.most = 0
        self._lock = threading.Lock()

    def _enter(self) -> None:
        with self._lock:
            self.active += 1
            self.most = max(self.most, self.active)

    def _exit(self) -> None:
        with self._lock:
            self.active -= 1

    def stream(self, messages: list[Message], params: GenerationParams) -> Iterator[StreamEvent]:
        self._enter()
        try:
            for i in range(100):
                time.sleep(0.02)
                yield StreamEvent(delta=f"t{i} ")
            yield StreamEvent(done=Generation("...", 1, 100))
        finally:
            time.sleep(0.2)  # the engine takes a moment to stop
            self._exit()

    def chat(self, messages: list[Message], params: GenerationParams) -> Generation:
        self._enter()
        try:
            time.sleep(0.05)
            return Generation("hi", 1, 1)
        finally:
            self._exit()


def test_a_closed_stream_frees_the_model_before_the_next_request_gets_it() -> None:
    llm = FakeLLM()
    shared = SharedLLM(llm, queue_max=4)  # type: ignore[arg-type]
    msgs, params = [Message("user", "count")], GenerationParams(max_tokens=100)

    async def main() -> None:
        stream = iterate_in_thread(lambda: shared.stream(msgs, params))
        first = await stream.__anext__()
        assert first.delta == "t0 "
        await stream.aclose()  # what the route's aclosing() does when its client has gone
        await asyncio.to_thread(shared.chat, msgs, params)
        assert shared.waiting == 0

    asyncio.run(main())
    assert llm.most == 1, "a generation started while the closed stream's generation was still running"


def test_the_shared_llm_refuses_callers_past_its_queue() -> None:
    llm = FakeLLM()
    shared = SharedLLM(llm, queue_max=1)  # type: ignore[arg-type]
    msgs = [Message("user", "count")]
    busy = shared.stream(msgs, GenerationParams(max_tokens=100))
    next(busy)  # holds the model
    waiter = threading.Thread(target=lambda: shared.chat(msgs))
    waiter.start()
    for _ in range(100):
        if shared.waiting == 1:
            break
        time.sleep(0.01)
    with pytest.raises(LLMBusy, match="queue is full"):
        shared.chat(msgs)
    busy.close()
    waiter.join(10)
    assert shared.waiting == 0 and llm.most == 1


def test_models_sharing_the_cores_take_turns_and_share_one_queue() -> None:
    from sovrag.generate.shared import Turns

    turns, small, large = Turns(), FakeLLM(), FakeLLM()
    a = SharedLLM(small, queue_max=1, turns=turns)  # type: ignore[arg-type]
    b = SharedLLM(large, queue_max=1, turns=turns)  # type: ignore[arg-type]
    msgs = [Message("user", "count")]
    busy = a.stream(msgs, GenerationParams(max_tokens=100))
    next(busy)  # the small model generates
    waiter = threading.Thread(target=lambda: b.chat(msgs))  # the large one waits for its turn
    waiter.start()
    for _ in range(100):
        if b.waiting == 1:
            break
        time.sleep(0.01)
    assert a.waiting == b.waiting == 1 and large.most == 0  # one queue; the large model has not started
    with pytest.raises(LLMBusy, match="queue is full"):
        a.chat(msgs)  # the queue is full for either model
    busy.close()
    waiter.join(10)
    assert large.most == 1 and a.waiting == b.waiting == 0


def test_sse_response_closes_its_generator_when_the_client_goes_away_mid_send() -> None:
    closed = threading.Event()

    async def events() -> AsyncIterator[str]:
        try:
            for i in range(1000):
                yield f"data: {i}\n\n"
        finally:
            closed.set()  # in the routes: the LLM slot is released here

    async def main() -> None:
        sent = asyncio.Event()
        gone = asyncio.Event()

        async def receive() -> dict:
            await sent.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict) -> None:
            if message["type"] == "http.response.body":
                sent.set()
                await gone.wait()  # a slow client: the send never completes

        response = _sse(events())  # type: ignore[arg-type]
        scope = {"type": "http", "asgi": {"spec_version": "2.3"}, "method": "POST", "path": "/", "headers": []}
        await asyncio.wait_for(response(scope, receive, send), 10)
        assert closed.is_set(), "the event generator was left open after the client disconnected"
        assert response.body_iterator is not None  # still referenced: only an explicit close can have run it

    asyncio.run(main())


@pytest.mark.parametrize(("raw", "expected"), [
    ("../../../../etc/passwd.md", "passwd.md"), ("..\\..\\win.txt", "win.txt"), (".hidden.md", "hidden.md"),
    ("日本.md", "日本.md"), ("中文.md", "中文.md"), ("cafe\u0301.md", "caf\u00e9.md"),
    ("evil\u202egpj.md", "evil_gpj.md"), ("a\x00b.md", "a_b.md"), ("ｘ／ｙ.md", "ｘ_ｙ.md"), ("..", ""),
])
def test_upload_names_keep_any_script_and_drop_what_is_unsafe(raw: str, expected: str) -> None:
    assert safe_name(raw) == expected


def test_long_upload_names_fit_the_file_system_in_bytes() -> None:
    for raw in ("é" * 300 + ".md", "日" * 300 + ".txt", "x" * 300 + ".md", "y" * 300):
        name = safe_name(raw)
        assert 100 <= len(name.encode()) <= 200 and unicodedata.is_normalized("NFC", name), raw
        assert Path(name).suffix == Path(raw).suffix
    assert safe_name("日本" * 80 + ".md") != safe_name("中文" * 80 + ".md")


def test_error_bodies_never_show_server_paths_or_other_tenants() -> None:
    cases = [
        ModelError("GGUF model /srv/sovrag/data/models/qwen/model.gguf: file not found"),
        StoreError("collection 't3--docs' at /srv/sovrag/data/collections/t3--docs/shard: cannot open (io)"),
        CollectionError("collection 't3--docs': does not exist (collections: t1--secret, t2--payroll)"),
    ]
    for e in cases:
        api = sovrag_error_to_api(e)
        assert "/srv" not in api.message and "t1--" not in api.message and "t3--" not in api.message, api.message
    assert "model.gguf" in sovrag_error_to_api(cases[0]).message
    assert sovrag_error_to_api(cases[2]).status == 404
    assert "payroll" not in sovrag_error_to_api(cases[2]).message
    url = sovrag_error_to_api(ModelError("host http://10.0.0.5:8080/v1/models refused"))
    assert "http://10.0.0.5:8080/v1/models" in url.message  # URLs are not paths
    config = sovrag_error_to_api(ConfigError("llm 'llamacpp:': give a bundled model name"))
    assert config.status == 500 and config.type == "server_error"  # the server's settings, not the request


def test_concurrent_creates_of_one_tenant_name_get_one_409_not_a_crash(tmp_path: Path) -> None:
    class SlowCheckDb(SqliteDatabase):  # widens the window between a check and its insert
        def one(self, sql: str, args: tuple = ()) -> dict | None:
            row = super().one(sql, args)
            if sql.startswith("SELECT id FROM tenants WHERE name"):
                time.sleep(0.3)
            return row

    keys = KeyStore(SlowCheckDb(tmp_path / "server.db"))
    results: list[object] = []

    def create() -> None:
        try:
            results.append(keys.create_tenant("acme"))
        except Exception as e:
            results.append(e)

    threads = [threading.Thread(target=create) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    errors = [r for r in results if isinstance(r, Exception)]
    assert len(results) == 2 and len(errors) == 1, results
    assert isinstance(errors[0], APIError) and errors[0].status == 409, repr(errors[0])


def test_options_refuse_a_default_max_tokens_over_the_limit() -> None:
    with pytest.raises(ConfigError, match="default_max_tokens"):
        ServerOptions(admin_key="k" * 20, default_max_tokens=4096).check()
    with pytest.raises(ConfigError, match="threadpool"):
        ServerOptions(admin_key="k" * 20, threadpool=0).check()
    ServerOptions(admin_key="k" * 20, default_max_tokens=2048).check()


def test_repeated_log_lines_are_throttled_and_the_drop_is_counted() -> None:
    import logging

    from sovrag.serve.metrics import ThrottleFilter

    f = ThrottleFilter(burst=3, window_s=0.2)
    rec = lambda: logging.LogRecord("asyncio", logging.ERROR, __file__, 1, "accept failed: %s", ("EMFILE",), None)  # noqa: E731
    passed = [f.filter(rec()) for _ in range(1000)]
    assert sum(passed) == 3
    time.sleep(0.25)
    r = rec()
    assert f.filter(r) and "[997 similar messages suppressed]" in r.getMessage()
    other = logging.LogRecord("sovrag", logging.INFO, __file__, 1, "another message", (), None)
    assert f.filter(other)


def test_the_rate_limiter_forgets_full_buckets_and_only_those() -> None:
    """Every client address that fails to sign in gets a bucket; one untouched for a minute and not in debt is full,
    the same as none, and is forgotten, so the limiter does not grow without end; a bucket in debt is kept."""
    from sovrag.serve.services.keys import IDLE_S, RateLimiter

    t = [1000.0]
    limiter = RateLimiter(clock=lambda: t[0])
    for i in range(500):
        limiter.take(f"10.0.{i // 250}.{i % 250}", 5, kind="auth-failures")
    assert limiter.take("key_big", 10, amount=50.0, kind="work") == 0.0  # a full bucket lets a big request through
    assert limiter.take("key_big", 10, kind="work") > 0  # ... and is in debt: 10 - 50 = -40
    limiter.take("key_a", 2)
    assert limiter.take("key_a", 2) == 0.0
    assert limiter.take("key_a", 2) > 0  # empty: waits
    t[0] += 30.0
    limiter.take("key_a", 2)  # half a minute: nothing is forgotten yet, and the bucket's level holds
    assert len(limiter._buckets) == 502
    t[0] += IDLE_S + 1
    assert limiter.take("10.0.0.1", 5, kind="auth-failures") == 0.0
    assert set(limiter._buckets) == {"work:key_big", "auth-failures:10.0.0.1"}  # the debt is kept
    assert limiter.blocked("key_big", 10, "work") > 0  # and still counts: -40 + 10/min * 91 s is below 1
    assert limiter.take("key_a", 2) == 0.0 and limiter.take("key_a", 2) == 0.0  # a forgotten bucket starts full


def test_shared_rate_buckets_are_pruned_by_the_database_clock(pg_database: str, tmp_path: Path) -> None:
    from sovrag.serve.db import open_database
    from sovrag.serve.services.keys import SharedRateLimiter

    db = open_database(pg_database, tmp_path)
    try:
        limiter = SharedRateLimiter(db)
        for i in range(20):
            limiter.take(f"10.0.0.{i}", 5, kind="auth-failures")
        limiter.take("key_big", 10, amount=50.0, kind="work")  # in debt
        assert limiter.prune() == 0  # all touched just now
        db.run("UPDATE rate_buckets SET updated = updated - 61 WHERE bucket <> 'auth-failures:10.0.0.3'")
        assert limiter.prune() == 19  # the idle, full ones; the debt and the recent one stay
        left = {r["bucket"] for r in db.all("SELECT bucket FROM rate_buckets")}
        assert left == {"work:key_big", "auth-failures:10.0.0.3"}
        assert limiter.blocked("key_big", 10, "work") > 0
    finally:
        db.close()


def test_the_server_database_setting_is_sqlite_postgresql_or_refused() -> None:
    from sovrag.serve.db import is_postgres

    assert not is_postgres("") and is_postgres("postgresql://u@h/db") and is_postgres("postgres://u:pw@h/db")
    with pytest.raises(ConfigError, match="'h/db': expected empty .* or postgresql://") as e:
        is_postgres("mysql://u:secret@h/db")
    assert "secret" not in str(e.value)
