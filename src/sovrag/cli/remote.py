"""The CLI through a running server: when `sovrag serve` owns the data directory, commands go to it.

The way the `ollama` CLI talks to `ollama serve`: the server holds the data directory's lock, so opening the
embedded store here would fail; instead `ingest`, `search`, `ask` and `collections` send their request over
the server's Unix socket (`<data dir>/server.sock`, mode 0600: only the directory's owner can connect) and
print the same output as when they open the store themselves (`eval` too: the server answers and judges with
its model and saves the run where the CLI would). With no server running, `owner()` is None
and the commands open the store directly, as before.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from sovrag.config import Settings
from sovrag.errors import SovragError
from sovrag.serve.owner import running_server


class ServerClient:
    """HTTP over the owner's Unix socket to the server's /local routes."""

    def __init__(self, socket: str, pid: int | None) -> None:
        self.pid = pid
        self.socket = socket
        self._http = httpx.Client(transport=httpx.HTTPTransport(uds=socket), base_url="http://sovrag.local",
                                  timeout=httpx.Timeout(30.0, read=None))

    def _check(self, r: httpx.Response) -> Any:
        if r.status_code >= 400:
            try:
                message = r.json()["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = r.text[:300]
            raise SovragError(message)
        return r.json()

    def _call(self, method: str, path: str, **kw: Any) -> Any:
        try:
            return self._check(self._http.request(method, path, **kw))
        except httpx.HTTPError as e:
            raise SovragError(f"the server (process {self.pid}) that owns this data directory did not answer on "
                              f"{self.socket}: {e}") from e

    def collections(self, tenant: str | None) -> list[dict[str, Any]]:
        return self._call("GET", "/local/collections", params={"tenant": tenant} if tenant else {})["data"]

    def delete_collection(self, name: str, tenant: str | None) -> None:
        self._call("DELETE", f"/local/collections/{name}", params={"tenant": tenant} if tenant else {})

    def ingest(self, body: dict[str, Any]) -> dict[str, Any]:
        body = {**body, "paths": [str(Path(p).absolute()) for p in body["paths"]]}
        return self._call("POST", "/local/ingest", json=body)  # type: ignore[no-any-return]

    def search(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        return self._call("POST", "/local/search", json=body)["data"]  # type: ignore[no-any-return]

    def evaluate(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._call("POST", "/local/eval", json=body)  # type: ignore[no-any-return]

    def ask(self, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """The journey's items as the server streams them: {"delta": ...}, then {"answer": ...}."""
        try:
            with self._http.stream("POST", "/local/ask", json=body) as r:
                if r.status_code >= 400:
                    r.read()
                    self._check(r)
                for line in r.iter_lines():
                    if line.strip():
                        item = json.loads(line)
                        if "error" in item:
                            raise SovragError(item["error"])
                        yield item
        except httpx.HTTPError as e:
            raise SovragError(f"the server (process {self.pid}) that owns this data directory did not answer on "
                              f"{self.socket}: {e}") from e


def owner(settings: Settings) -> ServerClient | None:
    """A client for the server that owns the data directory, or None when no server runs on it."""
    info = running_server(settings.data_dir)
    if info is None:
        return None
    return ServerClient(str(info.get("socket")), info.get("pid"))


def store_collection(settings: Settings, collection: str, tenant: str | None) -> str:
    """The store name of `collection`: the CLI's own, or (`--tenant NAME`) that server tenant's collection, the
    tenant looked up in the server's database."""
    if tenant is None:
        return collection
    import sqlite3

    from sovrag.tenancy import store_name

    db = settings.data_dir / "server.db"
    if not db.is_file():
        raise SovragError(f"--tenant {tenant!r}: this data directory ({settings.data_dir}) has no server tenants")
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        row = conn.execute("SELECT id FROM tenants WHERE name = ?", (tenant,)).fetchone()
    if row is None:
        raise SovragError(f"--tenant {tenant!r}: no such tenant in {db}")
    return store_name(int(row[0]), collection)
