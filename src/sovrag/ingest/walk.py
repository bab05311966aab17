"""Finding the files to ingest: a file, or a folder walked recursively with gitignore-style globs.

Anything unusual on the way gets one line in the report and never stops the walk:
- failed: what should have been indexed and cannot be (a symlink loop, a broken link, a FIFO or device,
  a link to a file outside the folder, an unreadable folder);
- skipped: what is left out by rule (hidden files and folders, tooling folders such as .git or
  node_modules, symlinked folders, a second path to a file already found).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pathspec

from sovrag.ingest.files import _os_reason, display, kind

#: Folders never descended into: version control, virtual environments, caches.
SKIP_DIRS = frozenset({".git", ".hg", ".svn", ".venv", "venv", "node_modules", "__pycache__", ".tox"})

OUTSIDE = "outside the ingested folder: not indexed (follow_symlinks_outside = true allows it)"


@dataclass
class WalkResult:
    files: list[Path] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)  # (path, reason): counted as failed
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason): left out by rule


def globs(patterns: Sequence[str]) -> pathspec.PathSpec | None:
    """Gitignore-style patterns: `*.md` (any folder), `guides/*.md`, `**/drafts/**`."""
    return pathspec.GitIgnoreSpec.from_lines(patterns) if patterns else None


def walk(root: Path, extensions: frozenset[str], include: Sequence[str] = (), exclude: Sequence[str] = (),
         follow_outside: bool = False) -> WalkResult:
    """Regular files under root whose extension is supported (or that match an include glob), minus excludes."""
    out = WalkResult()
    try:
        root_st = os.stat(root)
    except OSError as e:
        out.errors.append((display(root), "no such file or directory" if isinstance(e, FileNotFoundError)
                           else _os_reason(e)))
        return out
    if not stat.S_ISDIR(root_st.st_mode):
        if stat.S_ISREG(root_st.st_mode):
            out.files.append(root)
        else:
            out.errors.append((display(root), f"not a regular file ({kind(root_st.st_mode)})"))
        return out

    inc, exc = globs(include), globs(exclude)
    real_root = os.path.realpath(root)
    first_path: dict[tuple[int, int], str] = {}  # (device, inode) -> the path it was first found by

    def on_error(e: OSError) -> None:
        out.errors.append((display(e.filename), f"folder not readable ({_os_reason(e)})"))

    for dirpath, dirnames, filenames in os.walk(root, onerror=on_error, followlinks=False):
        keep = []
        for d in sorted(dirnames):
            full = os.path.join(dirpath, d)
            if d in SKIP_DIRS:
                out.skipped.append((display(full) + "/", "tooling folder, not walked"))
            elif d.startswith("."):
                out.skipped.append((display(full) + "/", "hidden folder, not walked"))
            elif os.path.islink(full):
                out.skipped.append((display(full) + "/", "symlinked folder, not followed (ingest its target "
                                    "by its own path)"))
            else:
                keep.append(d)
        dirnames[:] = keep
        for name in sorted(filenames):
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            wanted = inc.match_file(rel) if inc else path.suffix.lower() in extensions
            if not wanted or (exc and exc.match_file(rel)):
                continue
            if name.startswith("."):
                out.skipped.append((display(path), "hidden file"))
                continue
            _consider(path, real_root, follow_outside, first_path, out)
    return out


def _consider(path: Path, real_root: str, follow_outside: bool, first_path: dict[tuple[int, int], str],
              out: WalkResult) -> None:
    src = display(path)
    try:
        st = os.stat(path)  # follows a symlink: ELOOP and ENOENT name loops and broken links
    except OSError as e:
        out.errors.append((src, _os_reason(e)))
        return
    if not stat.S_ISREG(st.st_mode):
        out.errors.append((src, f"not a regular file ({kind(st.st_mode)})"))
        return
    if os.path.islink(path):
        target = os.path.realpath(path)
        if not follow_outside and os.path.commonpath([real_root, target]) != real_root:
            out.errors.append((src, f"symlink to {display(target)}, {OUTSIDE}"))
            return
    key = (st.st_dev, st.st_ino)
    if key in first_path:
        out.skipped.append((src, f"same file as {first_path[key]}: indexed once, under that path"))
        return
    first_path[key] = src
    out.files.append(path)
