"""HTTP connections that slow or idle clients cannot pile up: header and body timeouts, a connection cap.

uvicorn times out idle keep-alive connections but not a client that sends half a request and waits (the
slowloris attack): each such connection holds a file descriptor forever, and once the process runs out of
descriptors, accept() fails for everyone, /healthz included, and the event loop logs the failure in a tight
loop. This protocol (uvicorn's h11 one, subclassed) closes a connection that has not sent complete headers
within `header_timeout_s` of its first byte (or of connecting), or that stalls for `body_timeout_s` while
sending a body; and it refuses connections beyond `max_connections`, which `connection_limits` keeps, with
the listen backlog, below the process's descriptor limit. Production deployments still belong behind a
reverse proxy (see the README).
"""

from __future__ import annotations

import asyncio
import logging
import os
import resource
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("sovrag.serve")

#: Descriptors kept back from the connection cap, beyond those open at start, for the models, the database,
#: collections opened later, uploads, the parse worker's pipes and logs.
FD_RESERVE = 64
#: Accept bursts that may be in flight at once (see connection_limits).
ACCEPT_BURSTS = 4


def raise_fd_limit() -> int:
    """Raise the soft descriptor limit to the hard one (as servers do); the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft


def open_descriptors() -> int:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:  # not Linux: assume a modest baseline
        return 64


def connection_limits(requested: int) -> tuple[int, int]:
    """(connections at most, listen backlog) that keep the process below its descriptor limit.

    asyncio accepts up to `backlog` sockets per wake-up, before any protocol can refuse one, and a refused
    socket is closed only a few loop turns later, so several such bursts can be open at once: the budget is
    connections + ACCEPT_BURSTS * backlog + those open now + a reserve <= the limit. `requested` = 0 picks the
    largest cap that fits (at most 4096)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return (requested if requested > 0 else 4096), 2048
    headroom = soft - open_descriptors()
    backlog = max(8, min(2048, headroom // 16))
    ceiling = max(8, headroom - ACCEPT_BURSTS * backlog - FD_RESERVE)
    return (min(requested, ceiling) if requested > 0 else min(4096, ceiling)), backlog


def guarded_protocol(header_timeout_s: float, body_timeout_s: float, max_connections: int) -> type[H11Protocol]:
    """An h11 protocol class with these limits, for `uvicorn.Config(http=...)`."""

    class GuardedH11Protocol(H11Protocol):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._guard: asyncio.TimerHandle | None = None
            self._refused = False

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            if len(self.server_state.connections) >= max_connections:
                self._refused = True
                log.warning("connection refused: %d connections open, the limit (max_connections)",
                            len(self.server_state.connections))
                transport.abort()
                return
            super().connection_made(transport)
            self._arm(header_timeout_s, "no complete request headers")

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            if not self._refused:
                super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            waiting_for_request = self.conn.their_state is h11.IDLE
            super().data_received(data)
            state = self.conn.their_state
            if state is h11.IDLE and waiting_for_request and self._guard is None:
                self._arm(header_timeout_s, "no complete request headers")  # the first bytes of a new request
            elif state is h11.SEND_BODY:
                self._arm(body_timeout_s, "the request body stalled")
            elif state is not h11.IDLE:
                self._disarm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._disarm()  # uvicorn's keep-alive timer now governs the idle connection

        def _arm(self, seconds: float, why: str) -> None:
            self._disarm()
            self._guard = self.loop.call_later(seconds, self._expire, why, seconds)

        def _disarm(self) -> None:
            if self._guard is not None:
                self._guard.cancel()
                self._guard = None

        def _expire(self, why: str, seconds: float) -> None:
            self._guard = None
            if self.flow is not None and self.flow.read_paused:  # we, not the client, are behind: wait
                self._arm(seconds, why)
                return
            if self.conn.their_state in (h11.IDLE, h11.SEND_BODY) and not self.transport.is_closing():
                log.info("closing connection from %s: %s within %g s", self.client, why, seconds)
                self.transport.close()

    return GuardedH11Protocol


def uvicorn_config(app: Any, host: str, port: int, opts: Any, **kwargs: Any) -> Any:
    """uvicorn's Config for sovrag's app: the guarded protocol with the server options' limits."""
    import uvicorn

    cap, backlog = connection_limits(opts.max_connections)
    protocol = guarded_protocol(opts.header_timeout_s, opts.body_timeout_s, cap)
    log.info("accepting at most %d connections (listen backlog %d)", cap, backlog)
    return uvicorn.Config(app, host=host, port=port, http=protocol, backlog=backlog, **kwargs)
