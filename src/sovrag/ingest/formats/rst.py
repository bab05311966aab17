"""reStructuredText with docutils: Sections from section nodes, tolerant of Sphinx-only markup.

The parser runs without docutils' transforms and with every report suppressed: we only need the
text, and skipping the transform pass roughly halves the time per file (the Linux kernel's ~3000
files are a realistic corpus). Sphinx directives and roles that docutils does not know are
registered as plain handlers: the ones that carry prose (``.. c:function::``, ``.. seealso::``)
keep their content, the ones that only point elsewhere (``.. toctree::``, ``.. kernel-doc::``)
produce nothing. Anything still unknown becomes a system_message node, which is skipped.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

from docutils import frontend, nodes, utils
from docutils.parsers.rst import Directive, Parser, directives, roles

from sovrag.ingest.formats._common import Parsed, SectionBuilder, one_line


class _AnyOptions(dict):  # type: ignore[type-arg]
    """An option_spec accepting every option name (it must be non-empty to be consulted)."""

    def __missing__(self, key: str) -> Any:
        return directives.unchanged


class _Ignored(Directive):
    """Sphinx directives that reference other files or only steer rendering: no text of their own."""

    has_content = True
    optional_arguments = 1
    final_argument_whitespace = True
    option_spec = _AnyOptions(class_=directives.unchanged)

    def run(self) -> list[nodes.Node]:
        return []


class _Body(_Ignored):
    """Sphinx directives whose argument and content are prose: keep both."""

    signature = False  # the argument is code (a C prototype), not inline markup

    def run(self) -> list[nodes.Node]:
        box = nodes.container()
        if self.arguments and self.signature:
            box += nodes.paragraph(text=self.arguments[0])
        elif self.arguments:
            inline, _messages = self.state.inline_text(self.arguments[0], self.lineno)
            box += nodes.paragraph("", "", *inline)
        if self.content:
            self.state.nested_parse(self.content, self.content_offset, box)
        return [box]


class _Signature(_Body):
    signature = True


_IGNORED = """toctree kernel-doc kernel-abi kernel-feat kernel-include kernel-render kernel-figure
    maintainers-include index highlight literalinclude tabularcolumns sectionauthor moduleauthor codeauthor
    currentmodule module py:module py:currentmodule default-domain c:namespace c:namespace-push
    c:namespace-pop cpp:namespace automodule autoclass autofunction automethod autodata autoattribute
    autosummary graphviz digraph uml kfigure""".split()
_BODY = """only ifconfig versionadded versionchanged versionremoved deprecated seealso centered hlist glossary
    productionlist todo flat-table list-table-ext tab tabs""".split()
_SIGNATURE = """describe object option envvar program
    function class method attribute data exception decorator staticmethod classmethod
    py:function py:class py:method py:attribute py:data py:exception py:decorator
    c:function c:macro c:struct c:union c:enum c:enumerator c:type c:member c:var c:alias
    cpp:function cpp:class cpp:struct cpp:type cpp:member cpp:var cpp:enum cpp:enumerator""".split()
_ROLES = """ref doc term numref envvar option keyword token abbr command dfn file guilabel kbd mailheader
    makevar manpage menuselection mimetype newsgroup program regexp samp download any
    func class meth mod attr exc data obj const
    c:func c:type c:macro c:data c:member c:struct c:union c:enum c:enumerator c:expr c:texpr c:var
    cpp:func cpp:class cpp:type cpp:member cpp:var cpp:expr cpp:any
    py:func py:class py:meth py:mod py:attr py:exc py:data py:obj py:const""".split()

_TARGET = re.compile(r"^(.*?)\s*<[^<>]*>$", re.DOTALL)


def _title_or_target(text: str) -> str:
    """'Title <target>' -> 'Title' as Sphinx renders cross references; '~a.b' -> 'a.b'."""
    m = _TARGET.match(text)
    return (m.group(1) if m and m.group(1) else text).lstrip("~!")


def _plain_role(name: str, rawtext: str, text: str, lineno: int, inliner: Any,
                options: Any = None, content: Any = None) -> tuple[list[nodes.Node], list[nodes.Node]]:
    return [nodes.literal(rawtext, _title_or_target(utils.unescape(text)))], []


for _name in _IGNORED:
    directives.register_directive(_name, _Ignored)
for _name in _BODY:
    directives.register_directive(_name, _Body)
for _name in _SIGNATURE:
    directives.register_directive(_name, _Signature)
for _name in _ROLES:
    roles.register_local_role(_name, _plain_role)


class _NullStream:
    def write(self, _: str) -> None:
        pass


def _settings() -> Any:
    s = frontend.get_default_settings(Parser)
    s.report_level = 5  # never report
    s.halt_level = 5  # never abort on malformed input
    s.file_insertion_enabled = False  # no `include`, no `:file:` options: a document is only itself
    s.raw_enabled = False
    s.warning_stream = _NullStream()
    s.syntax_highlight = "none"  # code blocks as plain text; pygments is slow and not needed
    s.character_level_inline_markup = False
    s.pep_references = s.rfc_references = False
    return s


_SETTINGS = _settings()

# Raw text of an unknown role or a dangling reference: `:c:func:\`x\``, `x`_, |sub|.
_PROBLEM = re.compile(r"^(?::[\w:.+-]+:)?`(.*)`(?::[\w:.+-]+:)?_{0,2}$", re.DOTALL)
_SKIP = (nodes.system_message, nodes.comment, nodes.target, nodes.substitution_definition, nodes.raw,
         nodes.pending, nodes.image, nodes.decoration, nodes.docinfo, nodes.meta, nodes.transition,
         nodes.footnote_reference, nodes.citation_reference, nodes.label)


def _inline(node: nodes.Node) -> str:
    out: list[str] = []

    def rec(n: nodes.Node) -> None:
        for c in n.children:
            if isinstance(c, nodes.Text):
                out.append(c.astext())
            elif isinstance(c, nodes.problematic):
                raw = c.astext()
                m = _PROBLEM.match(raw)
                out.append(_title_or_target(m.group(1)) if m else raw.strip("|*`_"))
            elif not isinstance(c, _SKIP):
                rec(c)

    rec(node)
    return "".join(out)


def _indent(text: str, ind: str) -> str:
    return "\n".join(ind + line if line else line for line in text.split("\n")) if ind else text


def _blocks(node: nodes.Node, ind: str = "") -> list[str]:
    """The text blocks of a node's body children, each already indented by `ind`."""
    out: list[str] = []
    for n in node.children:
        if isinstance(n, _SKIP) or isinstance(n, nodes.Text):
            continue
        out.extend(_block(n, ind))
    return [b for b in out if b.strip()]


def _block(n: nodes.Node, ind: str) -> list[str]:
    if isinstance(n, nodes.topic) and "contents" in n.get("classes", ()):
        return []  # a table of contents repeats the headings
    if isinstance(n, (nodes.paragraph, nodes.title, nodes.subtitle, nodes.rubric, nodes.caption,
                      nodes.attribution, nodes.term, nodes.field_name)):
        return [ind + " ".join(_inline(n).split("\n"))]
    if isinstance(n, (nodes.literal_block, nodes.doctest_block, nodes.math_block)):
        return [_indent(n.astext(), ind)]
    if isinstance(n, nodes.line_block):
        return [_indent("\n".join(_inline(x) for x in n.findall(nodes.line)), ind)]
    if isinstance(n, (nodes.bullet_list, nodes.enumerated_list)):
        return [_list(n, ind)]
    if isinstance(n, nodes.definition_list):
        items = []
        for item in n.children:
            parts = []
            for c in item.children:
                parts.extend(_blocks(c, ind + "  ") if isinstance(c, nodes.definition) else _block(c, ind))
            items.append("\n".join(parts))
        return ["\n".join(items)]
    if isinstance(n, (nodes.field_list, nodes.option_list)):
        lines = []
        for item in n.children:
            parts = [" ".join(b.strip() for b in _block(c, "")) for c in item.children]
            lines.append(ind + ": ".join(p for p in parts if p))
        return ["\n".join(lines)]
    if isinstance(n, nodes.table):
        rows = []
        for row in n.findall(nodes.row):
            cells = [one_line(" ".join(_blocks(e))) for e in row.children]
            if any(cells):
                rows.append(ind + " | ".join(cells))
        return ["\n".join(rows)]
    if isinstance(n, nodes.Admonition) and not isinstance(n, nodes.admonition):
        inner = _blocks(n, ind)
        if inner:
            inner[0] = f"{ind}{n.tagname.capitalize()}: {inner[0][len(ind):]}"
        return inner
    if isinstance(n, nodes.TextElement):
        return [ind + " ".join(_inline(n).split("\n"))]
    return _blocks(n, ind)


def _list(n: nodes.Node, ind: str) -> str:
    start = n.get("start", 1) if isinstance(n, nodes.enumerated_list) else None
    lines = []
    for i, item in enumerate(c for c in n.children if isinstance(c, nodes.list_item)):
        marker = "- " if start is None else f"{start + i}. "
        inner = _blocks(item, ind + "  ")
        if inner:
            inner[0] = ind + marker + inner[0][len(ind) + 2:]
            lines.extend(inner)
    return "\n".join(lines)


def _walk(node: nodes.Node, builder: SectionBuilder, level: int) -> None:
    for n in node.children:
        if isinstance(n, nodes.section):
            title = next((c for c in n.children if isinstance(c, nodes.title)), None)
            builder.heading(level + 1, _inline(title) if title is not None else "")
            _walk(n, builder, level + 1)
        elif isinstance(n, nodes.title) and isinstance(node, nodes.section):
            continue
        elif not isinstance(n, (*_SKIP, nodes.Text)):
            for b in _block(n, ""):
                builder.add(b)


def parse(path: Path, text: str) -> Parsed:
    document = utils.new_document(str(path), copy.copy(_SETTINGS))
    Parser().parse(text, document)
    builder = SectionBuilder()
    _walk(document, builder, 0)
    sections = builder.finish()
    title = one_line(document.get("title", ""))
    if not title and builder.first_heading:
        title = builder.first_heading[1]
    return Parsed(title or path.stem, sections)
