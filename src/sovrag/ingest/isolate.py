"""Parsing in a child process bounded in memory and time, so one hostile file cannot take a batch down.

Parsers are well-kept libraries, but a document is untrusted input: a zip bomb in a DOCX, a PDF of
millions of tiny flate streams or a pathological HTML tree can cost minutes and gigabytes inside code we do
not control. So the bytes go to one long-lived child process (a fresh interpreter, never a fork: the parent
holds onnxruntime's and llama.cpp's threads) whose address space is capped with RLIMIT_AS; the parent waits at
most `parse_timeout_s` for each file. A file that runs out of memory or time is reported as failed with the
limit named, the child is replaced, and the batch goes on. One child serves every ingest of the process
(the server's job thread, the CLI, tests), started on first use and ended at exit.
"""

from __future__ import annotations

import atexit
import logging
import os
import pickle
import select
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from sovrag.errors import LoadError
from sovrag.ingest.files import display
from sovrag.types import Document

log = logging.getLogger(__name__)

_MB = 1024 * 1024
#: Seconds a new parse worker may take to import the parsers (a loaded machine is slow to start Python).
STARTUP_TIMEOUT_S = 60.0


def _serve(memory_bytes: int) -> None:
    """The child's loop: read (path, bytes, limits) requests on stdin, write pickled replies on stdout."""
    import resource

    proto_out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a library that prints must not corrupt the reply stream
    proto_in = sys.stdin.buffer
    from sovrag.ingest.loaders import load_document

    if memory_bytes > 0:
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    proto_out.write(pickle.dumps(("ready",)))  # the parent's per-file clock starts after this, not at spawn
    proto_out.flush()
    while True:
        try:
            path, data, max_bytes, max_unpacked = pickle.load(proto_in)
        except EOFError:
            return
        try:
            reply: tuple[Any, ...] = ("ok", load_document(Path(path), max_bytes, data, max_unpacked))
        except MemoryError:
            reply = ("memory",)
        except Exception as e:  # load_document turns parser errors into LoadError; anything else is ours
            reason = e.reason if isinstance(e, LoadError) else f"cannot parse: {type(e).__name__}: {e}"[:300]
            # C parsers (libxml2) report a failed allocation as a syntax error: tell them apart by the peak
            reply = ("memory",) if memory_bytes and _peak_bytes() > 0.9 * memory_bytes else ("error", reason)
        del data
        try:
            payload = pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL)
        except MemoryError:
            payload = pickle.dumps(("memory",))
        proto_out.write(payload)
        proto_out.flush()


def _peak_bytes() -> int:
    """This process's peak address-space size (what RLIMIT_AS caps), from /proc."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmPeak:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class ParseWorker:
    """One child process that parses documents within a memory cap and a per-file time limit.

    The child is a plain `python -m sovrag.ingest.isolate` subprocess rather than a multiprocessing one, so it
    never re-imports the caller's main script (which multiprocessing's spawn does, guarded or not).
    """

    def __init__(self, memory_mb: float, timeout_s: float) -> None:
        self.memory_bytes = int(memory_mb * _MB)
        self.timeout_s = timeout_s
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None

    def _start(self) -> subprocess.Popen[bytes]:
        """A fresh child, once it has imported the parsers and is ready for its first file."""
        proc = subprocess.Popen(
            [sys.executable, "-m", "sovrag.ingest.isolate", str(self.memory_bytes)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, close_fds=True,
        )
        self._proc = proc
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], STARTUP_TIMEOUT_S)
        try:
            if not ready or pickle.load(proc.stdout) != ("ready",):
                raise EOFError
        except (EOFError, OSError, pickle.UnpicklingError):
            code = proc.poll()
            self._kill()
            raise LoadError("parser", f"the parse worker did not start (exit code {code}); is "
                            f"parse_memory_mb ({self.memory_bytes / _MB:.0f}) too small to load the parsers?") from None
        return proc

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.kill()
            proc.wait(10)
            for f in (proc.stdin, proc.stdout):
                if f is not None:
                    f.close()

    def load(self, path: Path, data: bytes, max_bytes: int, max_unpacked: int) -> Document:
        src = display(path)
        with self._lock:
            proc = self._proc if self._proc is not None and self._proc.poll() is None else None
            if proc is None:
                self._kill()
                try:
                    proc = self._start()
                except LoadError as e:
                    raise LoadError(src, e.reason) from None
            assert proc.stdin is not None and proc.stdout is not None
            try:
                pickle.dump((str(path), data, max_bytes, max_unpacked), proc.stdin,
                            protocol=pickle.HIGHEST_PROTOCOL)
                proc.stdin.flush()
                ready, _, _ = select.select([proc.stdout], [], [], self.timeout_s)
                reply = pickle.load(proc.stdout) if ready else None
            except (EOFError, OSError, pickle.UnpicklingError):
                try:
                    code = proc.wait(5)
                except subprocess.TimeoutExpired:
                    code = None
                self._kill()
                if code is not None and code < 0 and self.memory_bytes:
                    raise LoadError(src, f"the parser crashed (signal {-code}); likely out of its "
                                    f"{self.memory_bytes / _MB:.0f} MB memory limit (parse_memory_mb)") from None
                raise LoadError(src, f"the parser crashed (exit code {code})") from None
            if reply is None:
                self._kill()
                raise LoadError(src, f"parsing took longer than {self.timeout_s:g} s (parse_timeout_s): not "
                                "indexed; raise the limit if the file is genuine")
            if reply[0] == "memory":
                self._kill()  # its heap may be fragmented or half-freed: start clean
        if reply[0] == "ok":
            return reply[1]  # type: ignore[no-any-return]
        if reply[0] == "memory":
            raise LoadError(src, f"parsing needed more than {self.memory_bytes / _MB:.0f} MB (parse_memory_mb): "
                            "not indexed; raise the limit if the file is genuine")
        raise LoadError(src, str(reply[1]))

    def close(self) -> None:
        with self._lock:
            proc, self._proc = self._proc, None
            if proc is None:
                return
            if proc.stdin is not None:
                proc.stdin.close()  # the child's loop ends at EOF
            try:
                proc.wait(2)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
            if proc.stdout is not None:
                proc.stdout.close()


_workers: dict[tuple[float, float], ParseWorker] = {}
_workers_lock = threading.Lock()


def worker(memory_mb: float, timeout_s: float) -> ParseWorker:
    """The process-wide worker for these limits (started on its first file)."""
    with _workers_lock:
        key = (memory_mb, timeout_s)
        if key not in _workers:
            _workers[key] = ParseWorker(memory_mb, timeout_s)
        return _workers[key]


@atexit.register
def _close_all() -> None:
    for w in list(_workers.values()):
        w.close()


if __name__ == "__main__":
    _serve(int(sys.argv[1]))
