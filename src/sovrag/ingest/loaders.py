"""Read one file into a `Document`, with one clear `LoadError` for every way a file can be unusable.

The checks every format shares live here (existence, size, binary content, UTF-8); the parsing
itself lives in `sovrag.ingest.formats`, one module per format, each on a well-kept library.
"""

from __future__ import annotations

import codecs
import io
import re
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sovrag.errors import LoadError
from sovrag.ingest.files import display, read_bytes
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
# Text files saved as UTF-16/32 (Windows Notepad, PowerShell's Out-File) start with a byte-order mark.
_UNICODE_BOMS = ((codecs.BOM_UTF32_LE, "utf-32-le"), (codecs.BOM_UTF32_BE, "utf-32-be"),
                 (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))
#: A member inflating more than this many times its compressed size is a decompression bomb, not a document
#: (Word XML compresses 5-20x; 648 KB holding 200 MB of empty paragraphs is over 300x).
MAX_ZIP_RATIO = 100
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([\w.:-]+)""", re.IGNORECASE)


def load_document(path: Path, max_bytes: int, data: bytes | None = None,
                  max_unpacked_bytes: int | None = None) -> Document:
    """Load a supported file; raise `LoadError(str(path), reason)` for anything unusable.

    `max_bytes` is the size limit; the message states it in MB (2**20 bytes) as `max_file_mb`. `data`, when
    given, is the file's bytes already read (by `files.read_bytes`). `max_unpacked_bytes` bounds what a
    compressed container (DOCX) may unpack to, checked in its directory before anything is inflated.
    """
    path = Path(path)
    src = display(path)
    ext = path.suffix.lower()
    if path.is_dir():
        raise LoadError(src, "is a directory, not a file")
    if ext not in _FORMATS:
        if not path.exists():
            raise LoadError(src, "no such file")
        raise LoadError(src, f"unsupported file type '{ext or path.name}'")
    fmt, parser, is_text = _FORMATS[ext]
    if data is None:
        data = read_bytes(path, max_bytes)

    content: bytes | str = data
    if is_text:
        content = _decode(src, data, fmt)
    elif fmt == "docx":
        check_zip(src, data, max_unpacked_bytes if max_unpacked_bytes is not None else 8 * max_bytes)
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


def _decode(src: str, data: bytes, fmt: str) -> str:
    for bom_mark, codec in _UNICODE_BOMS:
        if data.startswith(bom_mark):
            try:
                return data[len(bom_mark):].decode(codec)
            except UnicodeDecodeError as e:
                raise LoadError(src, f"not valid {codec.upper()} (bad data at offset {e.start + len(bom_mark)})") from e
    if b"\x00" in data[:8192]:
        raise LoadError(src, "binary content, not text")
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


def check_zip(src: str, data: bytes, max_unpacked: int) -> None:
    """Refuse a zip container whose directory promises more than `max_unpacked` bytes, or a bomb's ratio.

    Only the central directory is read (nothing is inflated), so a bomb costs nothing to refuse. The sizes
    there are the archive's own claims; the parser runs under the ingest worker's memory and time bounds
    all the same, so a lying directory can still not take the batch down.
    """
    try:
        infos = zipfile.ZipFile(io.BytesIO(data)).infolist()
    except (zipfile.BadZipFile, ValueError, OSError):
        return  # not a zip, or corrupt: the format's parser gives the precise message
    total = sum(i.file_size for i in infos)
    if total > max_unpacked:
        raise LoadError(src, f"unpacks to {total / _MB:.1f} MB, over the {max_unpacked / _MB:.1f} MB limit "
                        "(max_unpacked_mb)")
    for i in infos:
        if i.file_size > _MB and i.file_size > MAX_ZIP_RATIO * max(i.compress_size, 1):
            raise LoadError(src, f"{i.filename} inflates {i.file_size / max(i.compress_size, 1):.0f}x "
                            f"({i.compress_size / 1024:.0f} KB to {i.file_size / _MB:.1f} MB): a "
                            "decompression bomb, not indexed")
