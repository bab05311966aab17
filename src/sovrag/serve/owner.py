"""One owner per data directory: the running server holds a lock on it and serves its owner on a local socket.

The embedded store lets one process open a collection, so two processes on one data directory fail in
confusing ways (a second server answering 500, the CLI's `Can't init WAL`). So `sovrag serve` takes an
exclusive lock on `<data dir>/server.lock` (filelock: released by the OS if the process dies) and refuses to
start when another process holds it, naming that process. While it runs it also listens on
`<data dir>/server.sock`, a Unix socket only the data directory's owner can open (mode 0600, in a folder the
owner controls): requests arriving there are the owner's own CLI (`sovrag ingest|search|ask|collections`),
served by the `/local/*` routes; TCP clients never reach those routes. `server.json` beside them says which
process serves the directory and where.
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from sovrag.errors import ConfigError

LOCK = "server.lock"
SOCKET = "server.sock"
INFO = "server.json"
#: Unix socket paths are limited to about 107 bytes; a deeper data directory gets its socket in /tmp.
_MAX_SOCKET_PATH = 100


def socket_path(data_dir: Path) -> Path:
    path = data_dir / SOCKET
    if len(str(path)) <= _MAX_SOCKET_PATH:
        return path
    import hashlib

    digest = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:16]
    return Path("/tmp") / f"sovrag-{os.getuid()}-{digest}.sock"


def running_server(data_dir: Path) -> dict[str, Any] | None:
    """What `server.json` says about the server holding this data directory, or None when none holds it."""
    lock = FileLock(str(data_dir / LOCK))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        try:
            return json.loads((data_dir / INFO).read_text())
        except (OSError, ValueError):
            return {"pid": None, "socket": str(socket_path(data_dir))}
    except OSError:  # a read-only or missing data directory: nobody serves it
        return None
    lock.release()
    return None


@dataclass
class DataDirOwner:
    """Held by a running server: the lock, the local socket, and the info file."""

    data_dir: Path
    lock: FileLock
    sock: socket.socket

    @classmethod
    def acquire(cls, data_dir: Path, url: str) -> DataDirOwner:
        data_dir.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(data_dir / LOCK))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            info = running_server(data_dir) or {}
            raise ConfigError(
                f"data directory {data_dir}: already served by process {info.get('pid', '?')} "
                f"({info.get('url', 'unknown address')}, since {info.get('started', '?')}); stop it, or give this "
                "server another --data-dir"
            ) from None
        path = socket_path(data_dir)
        path.unlink(missing_ok=True)  # a socket file left by a server that died (we hold the lock now)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            sock.bind(str(path))
        finally:
            os.umask(old)
        os.chmod(path, 0o600)
        sock.listen(64)
        info = {"pid": os.getpid(), "url": url, "socket": str(path),
                "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        target = data_dir / INFO
        target.write_text(json.dumps(info))
        os.chmod(target, 0o600)
        return cls(data_dir, lock, sock)

    def release(self) -> None:
        """Close the socket, remove it and the info file, release the lock (once; later calls do nothing)."""
        if not self.lock.is_locked:
            return
        try:
            self.sock.close()
            Path(socket_path(self.data_dir)).unlink(missing_ok=True)
            (self.data_dir / INFO).unlink(missing_ok=True)
        finally:
            self.lock.release()


def is_local(scope: dict[str, Any]) -> bool:
    """True for a request that came in on the owner's Unix socket (uvicorn gives such a connection no client
    address and a server address with no port), never for one that came over TCP."""
    server = scope.get("server")
    return (scope.get("type") == "http" and scope.get("client") is None and isinstance(server, tuple | list)
            and len(server) == 2 and server[1] is None)
