"""Finding the files to ingest: a file, or a folder walked recursively with include/exclude globs."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path

#: Folders never descended into: version control, virtual environments, caches.
SKIP_DIRS = frozenset({".git", ".hg", ".svn", ".venv", "venv", "node_modules", "__pycache__", ".tox"})


@dataclass
class WalkResult:
    files: list[Path] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)


def _matches(rel: str, patterns: Sequence[str]) -> bool:
    name = rel.rsplit("/", 1)[-1]
    return any(fnmatch(rel, p) or fnmatch(name, p) for p in patterns)


def walk(root: Path, extensions: frozenset[str], include: Sequence[str] = (),
         exclude: Sequence[str] = ()) -> WalkResult:
    """Files under root whose extension is supported (or that match an include glob), minus excludes.

    Globs match the path relative to root (`guides/*.md`) or the bare file name (`*.md`).
    """
    out = WalkResult()
    if not root.exists():
        out.errors.append((str(root), "no such file or directory"))
        return out
    if root.is_file():
        out.files.append(root)
        return out

    def on_error(e: OSError) -> None:
        out.errors.append((str(e.filename), e.strerror.lower() if e.strerror else str(e)))

    for dirpath, dirnames, filenames in os.walk(root, onerror=on_error):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            wanted = _matches(rel, include) if include else path.suffix.lower() in extensions
            if wanted and not (exclude and _matches(rel, exclude)):
                out.files.append(path)
    return out
