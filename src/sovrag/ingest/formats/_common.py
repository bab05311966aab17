"""What every format parser shares: the parse result and whitespace normalisation."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from sovrag.types import Section


@dataclass
class Parsed:
    """A parser's raw result; the loader normalises it and wraps it into a `Document`."""

    title: str
    sections: list[Section]
    metadata: dict[str, Any] = field(default_factory=dict)


class HeadingPath:
    """A stack of (level, text): a heading closes every open heading at its level or deeper."""

    def __init__(self) -> None:
        self._stack: list[tuple[int, str]] = []

    def push(self, level: int, text: str) -> None:
        while self._stack and self._stack[-1][0] >= level:
            self._stack.pop()
        self._stack.append((level, text))

    @property
    def path(self) -> tuple[str, ...]:
        return tuple(t for _, t in self._stack if t)


class SectionBuilder:
    """Collects text blocks under the current heading path and cuts a Section at each heading."""

    def __init__(self, page: int | None = None) -> None:
        self.sections: list[Section] = []
        self.headings = HeadingPath()
        self.first_heading: tuple[int, str] | None = None
        self._blocks: list[str] = []
        self._page = page

    def add(self, text: str) -> None:
        if text and text.strip():
            self._blocks.append(text)

    def heading(self, level: int, text: str) -> None:
        self.flush()
        text = one_line(text)
        if self.first_heading is None and text:
            self.first_heading = (level, text)
        self.headings.push(level, text)

    def flush(self) -> None:
        if self._blocks:
            self.sections.append(Section("\n\n".join(self._blocks), self._page, self.headings.path))
            self._blocks = []

    def finish(self) -> list[Section]:
        self.flush()
        return self.sections


# Characters that are whitespace in effect but not matched by a plain space/tab rule.
_SPACES = re.compile(r"[ \t\xa0\u1680\u2000-\u200a\u202f\u205f\u3000\x0b]+")
_INVISIBLE = re.compile(r"[\x00-\x08\x0e-\x1f\x7f\xad\u200b\u200c\u200d\u2060\ufeff]")
_LEADING = re.compile(r"^[ \t]*")


def normalize_text(text: str) -> str:
    """Collapse runs of spaces and blank lines (at most one), keep line and paragraph breaks.

    Leading indentation is kept (tabs become four spaces) so code blocks stay readable.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x0c", "\n\n")
    text = _INVISIBLE.sub("", text)
    out: list[str] = []
    blank = True  # drop leading blank lines
    for line in text.split("\n"):
        indent = _LEADING.match(line).group(0)  # type: ignore[union-attr]
        body = _SPACES.sub(" ", line[len(indent):]).rstrip()
        if not body:
            if not blank:
                out.append("")
            blank = True
            continue
        out.append(indent.replace("\t", "    ") + body)
        blank = False
    while out and not out[-1]:
        out.pop()
    return "\n".join(out)


def one_line(text: str) -> str:
    """A heading or title: all whitespace collapsed into single spaces."""
    return " ".join(_INVISIBLE.sub("", text).split())


def first_line(text: str, max_chars: int = 120) -> str:
    """The first non-empty line, used as a fallback title when it is short enough to be one."""
    for line in text.splitlines():
        line = one_line(line)
        if line:
            return line if len(line) <= max_chars else ""
    return ""
