"""The one owner of how a file on disk becomes a document id and bytes: safely, whatever is on disk.

- A document's id is the absolute path by which it was found, inside the ingested folder, with symlinks
  in it left as they are (not the target's path). So `--sync` removes a document whose link vanished,
  and a link cannot make a file from elsewhere look like it lives under the folder.
- Names that are not valid UTF-8 (possible on Linux) are kept readable and deterministic with
  backslash escapes (`caf\\xe9.txt`), so an id can always be stored, hashed and shown.
- Reading never blocks and never reads more than the size limit plus one byte: the file is opened
  non-blocking (a FIFO cannot hang the batch), checked to be a regular file on the open descriptor (a
  symlink to /dev/zero cannot fill memory), and read in bounded pieces.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from sovrag.errors import LoadError

_MB = 1024 * 1024
_KINDS = {
    stat.S_IFIFO: "a FIFO (named pipe)", stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket", stat.S_IFDIR: "a directory",
}


def display(path: str | os.PathLike[str]) -> str:
    """A path as text that is always valid UTF-8: undecodable bytes become backslash escapes."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def document_id(path: str | os.PathLike[str]) -> str:
    """The id a file is stored under: its absolute path as found (links not resolved), as valid text."""
    return display(os.path.abspath(path))


def kind(mode: int) -> str:
    """What a non-regular file is, in words."""
    return _KINDS.get(stat.S_IFMT(mode), "not a regular file")


def read_bytes(path: Path, max_bytes: int) -> bytes:
    """The bytes of a regular file of at most `max_bytes`; a `LoadError` naming the file otherwise."""
    src = display(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        raise LoadError(src, _os_reason(e)) from e
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise LoadError(src, f"not a regular file ({kind(st.st_mode)})")
        if st.st_size > max_bytes:
            raise LoadError(src, f"file is {st.st_size / _MB:.1f} MB, over the {max_bytes / _MB:.1f} MB limit "
                            "(max_file_mb)")
        pieces: list[bytes] = []
        got = 0
        while got <= max_bytes:
            piece = os.read(fd, min(1 << 20, max_bytes + 1 - got))
            if not piece:
                break
            pieces.append(piece)
            got += len(piece)
    except OSError as e:
        raise LoadError(src, _os_reason(e)) from e
    finally:
        os.close(fd)
    if got > max_bytes:  # grew since it was measured
        raise LoadError(src, f"file is over the {max_bytes / _MB:.1f} MB limit (max_file_mb)")
    if got == 0:
        raise LoadError(src, "empty file")
    return b"".join(pieces)


def _os_reason(e: OSError) -> str:
    if e.errno == errno.ENOENT:
        return "no such file (or a broken symlink)"
    if e.errno == errno.ELOOP:
        return "symlink loop"
    if e.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if e.errno == errno.EISDIR:
        return "is a directory, not a file"
    return f"cannot read file ({e.strerror or type(e).__name__})"
