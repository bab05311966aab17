"""PDF with pypdf: one Section per page, so citations can name the page."""

from __future__ import annotations

import io
import logging
from pathlib import Path

from pypdf import PasswordType, PdfReader
from pypdf.errors import DependencyError, FileNotDecryptedError, PdfReadError

from sovrag.errors import LoadError
from sovrag.ingest.formats._common import Parsed, first_line, normalize_text, one_line
from sovrag.types import Section

log = logging.getLogger(__name__)

ENCRYPTED = "encrypted PDF (password protected); decrypt it first"
NO_TEXT = "no extractable text (scanned image PDF? OCR it first)"


def parse(path: Path, data: bytes) -> Parsed:
    src = str(path)
    if b"%PDF-" not in data[:1024]:
        raise LoadError(src, "not a PDF file (no %PDF- header)")
    # Viewers look for the end marker in the last 1024 bytes; without it the file was cut short,
    # and pypdf's lenient recovery would silently return only part of the pages.
    if b"%%EOF" not in data[-1024:]:
        raise LoadError(src, "truncated or corrupt PDF (no %%EOF end marker)")
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            _decrypt_empty(reader, src)
        n_pages = len(reader.pages)
    except LoadError:
        raise
    except FileNotDecryptedError as e:
        raise LoadError(src, ENCRYPTED) from e
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise LoadError(src, f"corrupt PDF ({type(e).__name__}: {e})") from e
    if n_pages == 0:
        raise LoadError(src, "PDF has no pages")

    sections: list[Section] = []
    failed: list[int] = []
    for number, page in enumerate(reader.pages, start=1):
        try:
            text = page.extract_text() or ""
        except Exception as e:  # one damaged page should not cost the rest of the document
            log.warning("%s: page %d: text extraction failed (%s: %s)", src, number, type(e).__name__, e)
            failed.append(number)
            continue
        if text.strip():
            sections.append(Section(text, number))
    if not sections:
        if failed:
            raise LoadError(src, f"text extraction failed on every page ({len(failed)} pages)")
        raise LoadError(src, NO_TEXT)

    title = _meta_title(reader) or first_line(normalize_text(sections[0].text)) or path.stem
    meta: dict[str, object] = {"pages": n_pages}
    if failed:
        meta["failed_pages"] = failed
    return Parsed(title, sections, meta)


def _decrypt_empty(reader: PdfReader, src: str) -> None:
    """Open PDFs that are encrypted only with an owner password (empty user password)."""
    try:
        result = reader.decrypt("")
    except DependencyError as e:
        raise LoadError(
            src,
            "encrypted PDF (AES); install the 'cryptography' package to open it if it has no "
            "password, or decrypt it first",
        ) from e
    except NotImplementedError as e:
        raise LoadError(src, f"encrypted PDF with an unsupported scheme ({e}); decrypt it first") from e
    if result == PasswordType.NOT_DECRYPTED:
        raise LoadError(src, ENCRYPTED)


def _meta_title(reader: PdfReader) -> str:
    try:
        meta = reader.metadata
        return one_line(str(meta.title)) if meta is not None and meta.title else ""
    except Exception:  # broken info dictionaries are common and not worth failing the document for
        return ""
