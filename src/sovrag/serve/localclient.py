"""The owner's socket as a client sees it: when `sovrag serve` owns a data directory, the CLI (and the embedded
integrations, sovrag.integrations.client) send their requests to it over `<data dir>/server.sock` (0600: only the
directory's owner can connect), to the /local routes (serve/routes/local.py)."""

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

    def close(self) -> None:
        self._http.close()

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
