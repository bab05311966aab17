"""DOCX with python-docx: paragraphs and tables in body order, grouped under their heading path."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import docx
from docx.table import Table
from docx.text.paragraph import Paragraph

from sovrag.errors import LoadError
from sovrag.ingest.formats._common import Parsed, SectionBuilder, one_line

_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_HEADING = re.compile(r"^heading\s*([1-9])$", re.IGNORECASE)


def parse(path: Path, data: bytes) -> Parsed:
    src = str(path)
    if data.startswith(_OLE_MAGIC):
        # Both legacy .doc files and password-protected Office files are OLE containers.
        raise LoadError(src, "not a DOCX zip (legacy .doc or password-protected); save it as a plain .docx")
    if not data.startswith(b"PK"):
        raise LoadError(src, "not a DOCX file (not a zip archive)")
    try:
        document = docx.Document(io.BytesIO(data))
    except zipfile.BadZipFile as e:
        raise LoadError(src, f"corrupt or truncated DOCX ({e})") from e
    except KeyError as e:
        raise LoadError(src, f"not a Word document (zip lacks {e})") from e
    except Exception as e:  # python-docx reports damaged archives with assorted exception types
        raise LoadError(src, f"corrupt or truncated DOCX ({type(e).__name__}: {e})") from e

    builder = SectionBuilder()
    for block in document.iter_inner_content():
        if isinstance(block, Paragraph):
            level = _heading_level(block)
            if level is not None:
                builder.heading(level, block.text)
            else:
                builder.add(block.text)
        elif isinstance(block, Table):
            builder.add(_table_text(block))
    sections = builder.finish()

    title = one_line(document.core_properties.title or "")
    if not title and builder.first_heading:
        title = builder.first_heading[1]
    return Parsed(title or path.stem, sections)


def _heading_level(p: Paragraph) -> int | None:
    """0 for the Title style, 1-9 for Heading 1-9, None for body text."""
    style = p.style
    while style is not None:
        name = (style.name or "").strip()
        if name.lower() == "title":
            return 0
        m = _HEADING.match(name)
        if m:
            return int(m.group(1))
        # Custom styles ("My Heading") often inherit from a built-in heading style.
        style = style.base_style
    return None


def _table_text(table: Table) -> str:
    rows: list[str] = []
    for row in table.rows:
        seen: list[object] = []
        cells: list[str] = []
        for cell in row.cells:
            if any(cell._tc is tc for tc in seen):  # merged cells repeat the same element
                continue
            seen.append(cell._tc)
            cells.append(one_line(cell.text))
        if any(cells):
            rows.append(" | ".join(cells))
    return "\n".join(rows)
