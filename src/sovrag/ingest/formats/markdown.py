"""Markdown with markdown-it-py: Sections at headings, plain text with code blocks and lists kept."""

from __future__ import annotations

import re
from pathlib import Path

from markdown_it import MarkdownIt
from markdown_it.token import Token

from sovrag.ingest.formats._common import Parsed, SectionBuilder, one_line

_FRONT_MATTER = re.compile(r"\A(?:---|\+\+\+)[ \t]*\n(.*?\n)?(?:---|\.\.\.|\+\+\+)[ \t]*(?:\n|\Z)", re.DOTALL)
_FM_TITLE = re.compile(r"""^title\s*[:=]\s*["']?(.*?)["']?\s*$""", re.MULTILINE)
_TAG = re.compile(r"<[^>]*>")

_md = MarkdownIt("commonmark").enable(["table", "strikethrough"])


def split_front_matter(text: str) -> tuple[str, str]:
    """(front matter, body); front matter is '' when the file has none."""
    m = _FRONT_MATTER.match(text)
    if not m:
        return "", text
    return m.group(1) or "", text[m.end():]


def _inline(token: Token) -> str:
    out: list[str] = []
    for child in token.children or []:
        if child.type in ("text", "code_inline"):
            out.append(child.content)
        elif child.type == "softbreak":
            out.append(" ")
        elif child.type == "hardbreak":
            out.append("\n")
        elif child.type == "image":
            out.append(_inline(child))  # alt text lives in the image's children
    return "".join(out)


def parse(path: Path, text: str) -> Parsed:
    front, body = split_front_matter(text)
    tokens = _md.parse(body)
    builder = SectionBuilder()
    # Blocks of the current section as (text, inside a list): list lines join with one newline.
    blocks: list[tuple[str, bool]] = []
    lists: list[list[int | None]] = []  # per open list: next number, or None for bullets
    prefix = ""
    h1 = ""
    row: list[str] | None = None
    table: list[str] = []

    def add(s: str) -> None:
        nonlocal prefix
        if prefix:
            s, prefix = prefix + s, ""
        if s.strip():
            blocks.append((s, bool(lists)))

    def flush() -> None:
        out = ""
        for i, (s, in_list) in enumerate(blocks):
            if i:
                out += "\n" if in_list and blocks[i - 1][1] else "\n\n"
            out += s
        builder.add(out)
        blocks.clear()

    i = 0
    while i < len(tokens):
        tok = tokens[i]
        t = tok.type
        if t == "heading_open":
            flush()
            heading = one_line(_inline(tokens[i + 1]))
            level = int(tok.tag[1])
            if level == 1 and not h1:
                h1 = heading
            builder.heading(level, heading)
            i += 3
            continue
        if t in ("bullet_list_open", "ordered_list_open"):
            start = tok.attrGet("start")
            lists.append([None] if t == "bullet_list_open" else [int(start) if start else 1])
        elif t in ("bullet_list_close", "ordered_list_close"):
            lists.pop()
        elif t == "list_item_open":
            state = lists[-1]
            indent = "  " * (len(lists) - 1)
            if state[0] is None:
                prefix = indent + "- "
            else:
                prefix = f"{indent}{state[0]}. "
                state[0] += 1
        elif t == "table_open":
            table = []
        elif t == "table_close":
            add("\n".join(table))
            table = []
        elif t == "tr_open":
            row = []
        elif t == "tr_close" and row is not None:
            if any(row):
                table.append(" | ".join(row))
            row = None
        elif t == "inline":
            s = _inline(tok)
            if row is not None:
                row.append(one_line(s))
            else:
                add(s)
        elif t in ("fence", "code_block"):
            add(tok.content.rstrip("\n"))
        elif t == "html_block":
            add(_TAG.sub("", tok.content))
        i += 1
    flush()
    sections = builder.finish()

    title = h1
    if not title and front:
        m = _FM_TITLE.search(front)
        title = one_line(m.group(1)) if m else ""
    return Parsed(title or path.stem, sections)
