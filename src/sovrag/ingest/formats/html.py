"""HTML with BeautifulSoup + lxml: visible body text, split into Sections at h1-h6."""

from __future__ import annotations

import re
from pathlib import Path

from bs4 import BeautifulSoup, NavigableString, Tag
from bs4.element import Comment, Declaration, Doctype, ProcessingInstruction

from sovrag.ingest.formats._common import Parsed, SectionBuilder, one_line

# Page furniture and non-text elements: their text would pollute every chunk of every page.
_DROP = ["script", "style", "nav", "header", "footer", "noscript", "template", "svg", "iframe", "object"]
_BLOCK = frozenset(
    "p div section article main aside blockquote figure figcaption form fieldset address details "
    "summary dl dt dd hr center caption legend".split()
)
_HEADING = re.compile(r"^h([1-6])$")
_SKIP_STRINGS = (Comment, Declaration, Doctype, ProcessingInstruction)
_WS = re.compile(r"\s+")


class _Walker:
    def __init__(self) -> None:
        self.builder = SectionBuilder()
        self._buf: list[str] = []
        self._pending = ""
        self._list_depth = 0

    def brk(self, sep: str = "\n\n") -> None:
        if self._list_depth:
            sep = "\n"
        if len(sep) > len(self._pending):
            self._pending = sep

    def text(self, s: str, raw: bool = False) -> None:
        at_line_start = bool(self._pending) or not self._buf or self._buf[-1].endswith("\n")
        if not raw and at_line_start:
            s = s.lstrip()
        if not s:
            return
        if self._pending:
            if self._buf:
                self._buf.append(self._pending)
            self._pending = ""
        self._buf.append(s)

    def flush(self) -> None:
        self.builder.add("".join(self._buf))
        self._buf, self._pending = [], ""

    def walk(self, node: Tag) -> None:
        for child in node.children:
            if isinstance(child, NavigableString):
                if not isinstance(child, _SKIP_STRINGS):
                    self.text(_WS.sub(" ", str(child)))
                continue
            if not isinstance(child, Tag):
                continue
            name = child.name
            m = _HEADING.match(name)
            if m:
                self.flush()
                self.builder.heading(int(m.group(1)), child.get_text(" "))
            elif name == "br":
                self.text("\n", raw=True)
            elif name == "pre":
                self.brk()
                self.text(child.get_text(), raw=True)
                self.brk()
            elif name == "table":
                self.brk()
                self.text(_table_text(child), raw=True)
                self.brk()
            elif name in ("ul", "ol"):
                self._list(child)
            elif name == "li":  # a stray <li> outside a list
                self.brk("\n")
                self.walk(child)
                self.brk("\n")
            elif name in _BLOCK:
                self.brk()
                self.walk(child)
                self.brk()
            else:
                self.walk(child)

    def _list(self, lst: Tag) -> None:
        self.brk()
        self._list_depth += 1
        number = _start(lst)
        indent = "  " * (self._list_depth - 1)
        for item in lst.find_all("li", recursive=False):
            self.brk("\n")
            self.text(indent + (f"{number}. " if lst.name == "ol" else "- "), raw=True)
            number += 1
            self.walk(item)
        self._list_depth -= 1
        self.brk()


def _start(lst: Tag) -> int:
    try:
        return int(str(lst.get("start", "1")))
    except ValueError:
        return 1


def _table_text(table: Tag) -> str:
    rows = []
    for tr in table.find_all("tr"):
        cells = [one_line(c.get_text(" ")) for c in tr.find_all(["td", "th"], recursive=False)]
        if any(cells):
            rows.append(" | ".join(cells))
    return "\n".join(rows)


def parse(path: Path, text: str) -> Parsed:
    soup = BeautifulSoup(text, "lxml")
    for tag in soup.find_all(_DROP):
        tag.decompose()
    title = one_line(soup.title.get_text()) if soup.title else ""
    if not title:
        h1 = soup.find("h1")
        title = one_line(h1.get_text(" ")) if h1 else ""
    root = soup.body or soup
    walker = _Walker()
    walker.walk(root)
    walker.flush()
    return Parsed(title or path.stem, walker.builder.finish())
