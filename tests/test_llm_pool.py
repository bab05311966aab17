"""Several OpenAI-compatible hosts as one LLM (generate/pool.py), against real HTTP servers on loopback that fail
on purpose: load spread, failover before the first token, 4xx never failed over, cooldown and health checks."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from sovrag.config import Settings
from sovrag.errors import ConfigError, GenerationError
from sovrag.generate import Message, create_llm
from sovrag.generate.openai_compat import OpenAICompatLLM
from sovrag.generate.pool import HostPool
from sovrag.generate.shared import SharedLLM, Turns

MSGS = [Message("user", "hi")]


class Host:
    """A scripted OpenAI-compatible host: `mode` is ok, 503, 400, slow, stream-cut, or down (GET /models fails)."""

    def __init__(self, name: str) -> None:
        self.name, self.mode, self.hits, self.models_ok = name, "ok", 0, True
        self.now = self.most = 0  # requests being answered, and the most at once
        lock = threading.Lock()
        host = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a) -> None:
                pass

            def _send(self, code: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if host.models_ok:
                    self._send(200, {"object": "list", "data": [{"id": "m", "object": "model"}]})
                else:
                    self._send(503, {"error": {"message": "loading"}})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                host.hits += 1
                if host.mode.isdigit():
                    return self._send(int(host.mode), {"error": {"message": f"{host.name} scripted"}})
                if host.mode == "slow":
                    with lock:
                        host.now += 1
                        host.most = max(host.most, host.now)
                    time.sleep(0.5)
                    with lock:
                        host.now -= 1
                if body.get("stream"):
                    self.send_response(200)
                    self.send_header("Content-Type", "text/event-stream")
                    self.send_header("Connection", "close")
                    self.end_headers()
                    first = {"choices": [{"index": 0, "delta": {"content": host.name}, "finish_reason": None}]}
                    self.wfile.write(f"data: {json.dumps(first)}\n\n".encode())
                    if host.mode != "stream-cut":
                        last = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
                        self.wfile.write(f"data: {json.dumps(last)}\n\ndata: [DONE]\n\n".encode())
                    self.close_connection = True
                    return None
                return self._send(200, {"choices": [{"index": 0, "message": {"role": "assistant", "content": host.name},
                                                     "finish_reason": "stop"}],
                                        "usage": {"prompt_tokens": 1, "completion_tokens": 1}})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hosts() -> Iterator[tuple[Host, Host]]:
    a, b = Host("A"), Host("B")
    yield a, b
    a.close()
    b.close()


def pool(*urls: str, **kw) -> HostPool:
    members = [OpenAICompatLLM(u, "m", retries=0, backoff=0.01, timeout=5) for u in urls]
    return HostPool(members, **{"cooldown_s": 0.5, "check_s": 0, "wait_s": 2, **kw})


def test_requests_spread_over_the_healthy_hosts(hosts) -> None:
    a, b = hosts
    p = pool(a.url, b.url)
    assert sorted(p.chat(MSGS).text for _ in range(10)) == ["A"] * 5 + ["B"] * 5  # one at a time: turns
    a.mode = b.mode = "slow"  # four at once: the least busy host takes each, so two each
    threads = [threading.Thread(target=p.chat, args=(MSGS,)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert (a.hits, b.hits) == (7, 7)


def test_a_failing_host_is_set_aside_and_the_request_goes_on(hosts) -> None:
    a, b = hosts
    a.mode = "503"
    p = pool(a.url, b.url)
    assert [p.chat(MSGS).text for _ in range(4)] == ["B"] * 4
    assert a.hits == 1  # tried once, then down for its cooldown
    assert [s["up"] for s in p.status()] == [False, True] and "503" in p.status()[0]["last_error"]
    a.mode = "ok"
    time.sleep(0.6)  # the cooldown over, A is tried again and serves
    assert {p.chat(MSGS).text for _ in range(4)} == {"A", "B"}


def test_a_dead_host_fails_over_at_once(hosts) -> None:
    a, b = hosts
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/v1"
    p = pool(dead, b.url)
    t0 = time.monotonic()
    assert [p.chat(MSGS).text for _ in range(3)] == ["B"] * 3
    assert time.monotonic() - t0 < 2


def test_client_errors_are_not_failed_over(hosts) -> None:
    a, b = hosts
    a.mode = b.mode = "400"
    p = pool(a.url, b.url)
    with pytest.raises(GenerationError, match="HTTP 400"):
        p.chat(MSGS)
    assert a.hits + b.hits == 1  # another host would refuse it too


def test_streams_fail_over_before_the_first_token_only(hosts) -> None:
    a, b = hosts
    a.mode = "503"
    p = pool(a.url, b.url)
    events = list(p.stream(MSGS))
    assert events[0].delta == "B" and events[-1].done.text == "B"
    a.mode = b.mode = "stream-cut"
    before = a.hits + b.hits
    with pytest.raises(GenerationError, match="before \\[DONE\\]"):  # text had been sent: no silent restart
        list(pool(a.url, b.url).stream(MSGS))
    assert a.hits + b.hits == before + 1


def test_all_hosts_down_is_one_error_naming_each(hosts) -> None:
    a, b = hosts
    a.mode, b.mode = "503", "502"
    t0 = time.monotonic()
    with pytest.raises(GenerationError, match=r"no host answered; .*HTTP 503.*; .*HTTP 502"):
        pool(a.url, b.url, wait_s=1.0).chat(MSGS)
    assert time.monotonic() - t0 < 4


def test_health_checks_mark_hosts_down_and_back_up(hosts) -> None:
    a, b = hosts
    a.models_ok = False
    p = pool(a.url, b.url, check_s=0.2)
    p.check()
    assert [s["up"] for s in p.status()] == [False, True]
    assert [p.chat(MSGS).text for _ in range(3)] == ["B"] * 3 and a.hits == 0  # found before any request met it
    a.models_ok = True
    deadline = time.monotonic() + 5
    while not p.status()[0]["up"]:  # the background check brings it back
        assert time.monotonic() < deadline
        time.sleep(0.05)
    p.close()


def test_a_pool_spec(hosts, settings: Settings) -> None:
    a, b = hosts
    llm = create_llm(settings, f"openai://{a.url[7:]}?model=m|openai://{b.url[7:]}?model=m")
    assert isinstance(llm, HostPool) and llm.name == "openai:m" and len(llm.hosts) == 2
    assert {llm.chat(MSGS).text for _ in range(2)} == {"A", "B"}
    with pytest.raises(ConfigError, match="one model"):
        create_llm(settings, f"openai://{a.url[7:]}?model=m|openai://{b.url[7:]}?model=n")
    with pytest.raises(ConfigError, match="not an openai:// host"):
        create_llm(settings, f"openai://{a.url[7:]}?model=m|llamacpp:fast")


@pytest.mark.parametrize("parallel", [1, 4])
def test_the_server_line_for_a_pool_lets_requests_run_side_by_side(hosts, parallel: int) -> None:
    """sovrag serve wraps a remote LLM in SharedLLM with Turns(parallel=remote_llm_parallel x hosts); the local
    model keeps Turns() (one at a time). Four callers at once: spread two and two, or strictly one by one."""
    a, b = hosts
    a.mode = b.mode = "slow"
    shared = SharedLLM(pool(a.url, b.url), turns=Turns(parallel=parallel))
    threads = [threading.Thread(target=shared.chat, args=(MSGS,)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert a.hits + b.hits == 4
    assert (a.most, b.most) == ((2, 2) if parallel == 4 else (1, 1))
