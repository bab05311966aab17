"""Several OpenAI-compatible hosts serving one model (vLLM replicas, llama.cpp servers) as one LLM: requests go
to the healthy host with the fewest in flight; a host that fails (connection refused, timeout, 429/5xx) is set
aside and the request goes on to the next at once; a health check brings hosts back.

`llm = "openai://gpu1:8000/v1?model=M, openai://gpu2:8000/v1?model=M"` (comma-separated specs) makes one.

- Failover happens before the first token only: a stream cut midway is an error, as with one host (the answer
  already sent cannot be replayed from another host's different text). Errors that another host would repeat
  (4xx: a bad request, a prompt over the context) are raised at once, never retried elsewhere.
- A failed host is down for `cooldown_s` (doubling on each further failure, up to 60 s); after that one request
  may try it again. Independently, a background check asks every host for `GET /models` each `check_s` seconds
  and marks it up or down, so a dead host is usually found before a user's request meets it.
- When every host is down the request waits for the soonest to come back, up to `wait_s`, then fails naming
  every host and why.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from sovrag.errors import ConfigError, GenerationError, HostUnavailable
from sovrag.generate.base import Generation, GenerationParams, Message, StreamEvent
from sovrag.generate.openai_compat import OpenAICompatLLM


@dataclass
class _Host:
    llm: OpenAICompatLLM
    in_flight: int = 0
    requests: int = 0
    failures: int = 0
    down_until: float = 0.0
    strikes: int = 0
    last_error: str = ""
    served: int = 0

    def up(self, t: float) -> bool:
        return self.down_until <= t


class HostPool:
    def __init__(self, hosts: Sequence[OpenAICompatLLM], cooldown_s: float = 2.0, check_s: float = 10.0,
                 wait_s: float = 30.0) -> None:
        if len(hosts) < 2:
            raise ConfigError("llm: a pool needs at least two hosts")
        models = {h.model for h in hosts}
        if len(models) > 1:
            raise ConfigError(f"llm: the hosts of one pool must serve one model; got {sorted(models)}")
        self.hosts = [_Host(h) for h in hosts]
        self.name = hosts[0].name
        self.model = hosts[0].model
        self.cooldown_s, self.check_s, self.wait_s = cooldown_s, check_s, wait_s
        self._lock = threading.Lock()
        self._turn = 0
        self._stop = threading.Event()
        self._checker: threading.Thread | None = None

    # -- the LLM protocol --------------------------------------------------------------------------------------

    @property
    def context_tokens(self) -> int:
        return self.hosts[0].llm.context_tokens

    def count_tokens(self, text: str) -> int:
        return self.hosts[0].llm.count_tokens(text)

    def chat(self, messages: Sequence[Message], params: GenerationParams | None = None) -> Generation:
        for host in self._attempts():
            try:
                result = host.llm.chat(messages, params)
            except HostUnavailable as e:
                self._failed(host, e)
                continue
            finally:
                self._release(host)
            self._ok(host)
            return result
        raise AssertionError("unreachable")  # _attempts raises when it runs out

    def stream(self, messages: Sequence[Message], params: GenerationParams | None = None) -> Iterator[StreamEvent]:
        for host in self._attempts():
            events = host.llm.stream(messages, params)
            try:
                first = next(events)
            except HostUnavailable as e:
                self._release(host)
                self._failed(host, e)
                continue
            except BaseException:
                self._release(host)
                raise
            self._ok(host)
            try:
                yield first
                yield from events
            finally:
                events.close()
                self._release(host)
            return

    # -- choosing hosts -----------------------------------------------------------------------------------------

    def _attempts(self) -> Iterator[_Host]:
        """Hosts to try, one after another, for one request: the least busy healthy one first; each at most once
        while another is untried; waiting for one to come back when all are down."""
        self._start_checker()
        tried: set[int] = set()
        deadline = time.monotonic() + self.wait_s
        while True:
            with self._lock:
                t = time.monotonic()
                fresh = [i for i, h in enumerate(self.hosts) if i not in tried]
                pick = self._pick([i for i in fresh if self.hosts[i].up(t)]) if fresh else None
                if pick is None:
                    soonest = min(h.down_until for h in self.hosts)
                    if soonest > deadline or (not fresh and t >= deadline):
                        raise GenerationError("LLM pool: no host answered; " + "; ".join(
                            f"{h.llm.base_url}: {h.last_error or 'down'}" for h in self.hosts))
                    if not fresh:
                        tried.clear()  # every host has had its turn; go round again once one is back
                if pick is not None:
                    host = self.hosts[pick]
                    host.in_flight += 1
                    host.requests += 1
                    tried.add(pick)
            if pick is None:
                time.sleep(max(0.05, min(1.0, soonest - time.monotonic())))
                continue
            yield host

    def _pick(self, candidates: list[int]) -> int | None:
        if not candidates:
            return None
        self._turn += 1
        least = min(self.hosts[i].in_flight for i in candidates)
        tied = [i for i in candidates if self.hosts[i].in_flight == least]
        return tied[self._turn % len(tied)]

    def _release(self, host: _Host) -> None:
        with self._lock:
            host.in_flight -= 1

    def _ok(self, host: _Host) -> None:
        with self._lock:
            host.strikes = 0
            host.served += 1

    def _failed(self, host: _Host, e: Exception) -> None:
        with self._lock:
            host.failures += 1
            host.strikes += 1
            host.last_error = str(e).split(": ", 1)[-1][:200]
            host.down_until = time.monotonic() + min(60.0, self.cooldown_s * 2 ** (host.strikes - 1))

    # -- health checks ------------------------------------------------------------------------------------------

    def _start_checker(self) -> None:
        if self._checker is None and self.check_s > 0:
            with self._lock:
                if self._checker is None:
                    self._checker = threading.Thread(target=self._check_loop, name="sovrag-llm-health", daemon=True)
                    self._checker.start()

    def check(self) -> None:
        """Ask every host for its models now; mark it up (answers 200 and lists the model) or down."""
        for host in self.hosts:
            h = host.llm
            try:
                r = h.client.get(f"{h.base_url}/models", timeout=5)
                ok = r.status_code == 200 and any(m.get("id") == h.model for m in r.json().get("data", []))
                why = "" if ok else f"GET /models: HTTP {r.status_code}, or {h.model} not listed"
            except (httpx.HTTPError, ValueError, AttributeError) as e:
                ok, why = False, f"GET /models: {type(e).__name__}: {e}"
            with self._lock:
                if ok:
                    host.down_until, host.strikes = 0.0, 0
                elif host.up(time.monotonic()):
                    host.last_error = why[:200]
                    host.down_until = time.monotonic() + self.check_s

    def _check_loop(self) -> None:
        while not self._stop.wait(self.check_s):
            self.check()

    def status(self) -> list[dict[str, Any]]:
        """Per host: its URL, whether it is up, requests in flight and served, failures, the last error."""
        t = time.monotonic()
        with self._lock:
            return [{"url": h.llm.base_url, "up": h.up(t), "in_flight": h.in_flight, "requests": h.requests,
                     "served": h.served, "failures": h.failures, "last_error": h.last_error} for h in self.hosts]

    def close(self) -> None:
        self._stop.set()
        for h in self.hosts:
            h.llm.client.close()
