"""Read one file into a `Document`, with one clear `LoadError` for every way a file can be unusable.

The checks every format shares live here (existence, size, binary content, UTF-8); the parsing
itself lives in `sovrag.ingest.formats`, one module per format, each on a well-kept library.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sovrag.errors import LoadError
from sovrag.ingest.formats import docx, html, markdown, pdf, rst, text
from sovrag.ingest.formats._common import Parsed, normalize_text, one_line
from sovrag.types import Document, Section

# extension -> (format name, parser, parser takes decoded text)
_FORMATS: dict[str, tuple[str, Callable[[Path, Any], Parsed], bool]] = {
    ".pdf": ("pdf", pdf.parse, False),
    ".docx": ("docx", docx.parse, False),
    ".html": ("html", html.parse, True),
    ".htm": ("html", html.parse, True),
    ".md": ("markdown", markdown.parse, True),
    ".markdown": ("markdown", markdown.parse, True),
    ".rst": ("rst", rst.parse, True),
    ".txt": ("text", text.parse, True),
    ".text": ("text", text.parse, True),
    ".log": ("text", text.parse, True),
}

SUPPORTED_EXTENSIONS: frozenset[str] = frozenset(_FORMATS)

_MB = 1024 * 1024
_BOM = codecs.BOM_UTF8
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([\w.:-]+)""", re.IGNORECASE)


def load_document(path: Path, max_bytes: int) -> Document:
    """Load a supported file; raise `LoadError(str(path), reason)` for anything unusable.

    `max_bytes` is the size limit; the message states it in MB (2**20 bytes) as `max_file_mb`.
    """
    path = Path(path)
    src = str(path)
    ext = path.suffix.lower()
    if path.is_dir():
        raise LoadError(src, "is a directory, not a file")
    if ext not in _FORMATS:
        if not path.exists():
            raise LoadError(src, "no such file")
        raise LoadError(src, f"unsupported file type '{ext or path.name}'")
    fmt, parser, is_text = _FORMATS[ext]
    data = _read(path, max_bytes)

    content: bytes | str = data
    if is_text:
        if b"\x00" in data[:8192]:
            raise LoadError(src, "binary content, not text")
        content = _decode(src, data, fmt)
    try:
        parsed = parser(path, content)
    except LoadError:
        raise
    except RecursionError as e:
        raise LoadError(src, f"cannot parse {fmt}: nested too deeply") from e
    except Exception as e:  # a library's own exception must never reach the user as a traceback
        detail = one_line(str(e))[:200]
        reason = f"cannot parse {fmt}: {type(e).__name__}" + (f": {detail}" if detail else "")
        raise LoadError(src, reason) from e

    sections = []
    for s in parsed.sections:
        body = normalize_text(s.text)
        if body:
            sections.append(Section(body, s.page, tuple(h for h in map(one_line, s.headings) if h)))
    if not sections:
        raise LoadError(src, "no text content")
    title = one_line(parsed.title) or path.stem
    return Document(source=src, title=title, sections=sections, format=fmt, metadata=parsed.metadata)


def _read(path: Path, max_bytes: int) -> bytes:
    src = str(path)
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise LoadError(
                src, f"file is {size / _MB:.1f} MB, over the {max_bytes / _MB:.1f} MB limit (max_file_mb)"
            )
        with path.open("rb") as f:
            data = f.read(max_bytes + 1)
    except FileNotFoundError as e:
        raise LoadError(src, "no such file") from e
    except PermissionError as e:
        raise LoadError(src, "permission denied") from e
    except IsADirectoryError as e:
        raise LoadError(src, "is a directory, not a file") from e
    except OSError as e:
        raise LoadError(src, f"cannot read file ({e.strerror or type(e).__name__})") from e
    if not data:
        raise LoadError(src, "empty file")
    if len(data) > max_bytes:  # grew since stat()
        raise LoadError(src, f"file is over the {max_bytes / _MB:.1f} MB limit (max_file_mb)")
    return data


def _decode(src: str, data: bytes, fmt: str) -> str:
    bom = len(_BOM) if data.startswith(_BOM) else 0
    try:
        return data[bom:].decode("utf-8")
    except UnicodeDecodeError as e:
        if fmt == "html":  # HTML may declare its legacy encoding; honour the declaration
            m = _META_CHARSET.search(data[:4096])
            if m:
                try:
                    return data.decode(m.group(1).decode("ascii"))
                except (LookupError, UnicodeDecodeError):
                    pass
        raise LoadError(
            src, f"not valid UTF-8 (first bad byte at offset {e.start + bom}); convert it to UTF-8"
        ) from e
