"""Plain text: one Section, no headings; the chunker splits it at blank lines."""

from __future__ import annotations

from pathlib import Path

from sovrag.ingest.formats._common import Parsed, first_line
from sovrag.types import Section


def parse(path: Path, text: str) -> Parsed:
    # A short first line of a note or release notes is its title; a log's first line never is.
    title = "" if path.suffix.lower() == ".log" else first_line(text, max_chars=80)
    return Parsed(title or path.stem, [Section(text)])
