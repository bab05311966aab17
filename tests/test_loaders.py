"""Loaders on real files of every format, and every way a file can be unusable."""

from __future__ import annotations

import os
import time
from pathlib import Path

import docx
import pytest

from sovrag.errors import LoadError
from sovrag.ingest.loaders import SUPPORTED_EXTENSIONS, load_document

DATA = Path(__file__).parent / "data"
MB = 1024 * 1024


def load(path: Path, max_bytes: int = 10 * MB):
    return load_document(path, max_bytes)


def fails(path: Path, reason_part: str, max_bytes: int = 10 * MB) -> LoadError:
    with pytest.raises(LoadError) as info:
        load_document(path, max_bytes)
    err = info.value
    assert err.source == str(path)
    assert str(path) in str(err)
    assert reason_part in err.reason, err.reason
    return err


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    p = tmp_path / name
    if isinstance(content, str):
        p.write_text(content, encoding="utf-8")
    else:
        p.write_bytes(content)
    return p


def test_supported_extensions() -> None:
    assert SUPPORTED_EXTENSIONS == {
        ".pdf", ".docx", ".html", ".htm", ".md", ".markdown", ".rst", ".txt", ".text", ".log"
    }


# --- PDF -------------------------------------------------------------------------------------------


def test_pdf_one_section_per_page_with_page_numbers() -> None:
    doc = load(DATA / "three-pages.pdf")
    assert doc.format == "pdf"
    assert doc.source == str(DATA / "three-pages.pdf")
    assert doc.title == "Three Page Sample"  # from the metadata
    assert [s.page for s in doc.sections] == [1, 2, 3]
    assert "apples" in doc.sections[0].text
    assert "bridges" in doc.sections[1].text
    assert "telescopes" in doc.sections[2].text
    assert all(s.headings == () for s in doc.sections)
    assert doc.metadata["pages"] == 3


def test_pdf_title_falls_back_to_first_line() -> None:
    doc = load(DATA / "untitled.pdf")
    assert doc.title == "Untitled Report Heading"


def test_pdf_encrypted_with_password() -> None:
    fails(DATA / "encrypted.pdf", "encrypted PDF (password protected); decrypt it first")


def test_pdf_encrypted_with_empty_user_password_opens() -> None:
    doc = load(DATA / "encrypted-empty-password.pdf")
    assert "only editing is restricted" in doc.text


def test_pdf_truncated() -> None:
    fails(DATA / "truncated.pdf", "truncated or corrupt PDF")


def test_pdf_corrupt_body(tmp_path: Path) -> None:
    p = write(tmp_path, "garbage.pdf", b"%PDF-1.7\n" + bytes(range(1, 256)) * 20 + b"\n%%EOF\n")
    err = fails(p, "PDF")
    assert "corrupt" in err.reason or "cannot parse" in err.reason


def test_pdf_not_a_pdf(tmp_path: Path) -> None:
    fails(write(tmp_path, "fake.pdf", b"just some text"), "not a PDF file")


def test_pdf_image_only() -> None:
    fails(DATA / "image-only.pdf", "no extractable text (scanned image PDF? OCR it first)")


# --- DOCX ------------------------------------------------------------------------------------------


def _docx(tmp_path: Path, title: str | None = "Policy Manual") -> Path:
    d = docx.Document()
    if title:
        d.core_properties.title = title
    d.add_paragraph("Intro before any heading.")
    d.add_heading("Travel", level=1)
    d.add_paragraph("Book trains when the trip is under four hours.")
    d.add_heading("Hotels", level=2)
    d.add_paragraph("The nightly limit is 180 EUR.")
    table = d.add_table(rows=2, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "City", "Limit"
    table.cell(1, 0).text, table.cell(1, 1).text = "Paris", "220 EUR"
    d.add_heading("Meals", level=1)
    d.add_paragraph("Up to 60 EUR per day.")
    p = tmp_path / "policy.docx"
    d.save(str(p))
    return p


def test_docx_heading_paths_tables_and_title(tmp_path: Path) -> None:
    doc = load(_docx(tmp_path))
    assert doc.format == "docx"
    assert doc.title == "Policy Manual"
    by_heading = {s.headings: s.text for s in doc.sections}
    assert by_heading[()] == "Intro before any heading."
    assert by_heading[("Travel",)] == "Book trains when the trip is under four hours."
    hotels = by_heading[("Travel", "Hotels")]
    assert hotels == "The nightly limit is 180 EUR.\n\nCity | Limit\nParis | 220 EUR"
    assert by_heading[("Meals",)] == "Up to 60 EUR per day."


def test_docx_title_falls_back_to_first_heading(tmp_path: Path) -> None:
    assert load(_docx(tmp_path, title=None)).title == "Travel"


def test_docx_corrupt(tmp_path: Path) -> None:
    data = _docx(tmp_path).read_bytes()
    fails(write(tmp_path, "cut.docx", data[: len(data) // 2]), "DOCX")
    fails(write(tmp_path, "text.docx", b"not a zip at all"), "not a DOCX file")
    fails(write(tmp_path, "old.docx", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100), "legacy .doc")


# --- HTML ------------------------------------------------------------------------------------------

HTML = """<!doctype html>
<html><head><title>Robot FAQ</title><style>body { color: red }</style>
<script>var tracking = "do not index me";</script></head>
<body>
<header>Site header</header><nav><a href="/">Home</a> | <a href="/x">Menu link</a></nav>
<p>Welcome   to the
   FAQ.</p>
<h1>Battery</h1>
<p>The battery lasts <b>9 hours</b>.</p><p>Charging takes 2.5 hours.</p>
<h2>Charging</h2>
<ul><li>Use the dock.</li><li>Never use <i>third-party</i> chargers.</li></ul>
<table><tr><th>Model</th><th>Hours</th></tr><tr><td>NW-7</td><td>9</td></tr></table>
<h1>Payload</h1><div>Max 12 kg.<br>Evenly distributed.</div>
<footer>Copyright footer</footer><noscript>Enable JS</noscript>
</body></html>"""


def test_html_sections_headings_and_cleanup(tmp_path: Path) -> None:
    doc = load(write(tmp_path, "faq.html", HTML))
    assert doc.format == "html"
    assert doc.title == "Robot FAQ"
    text = doc.text
    for junk in ("tracking", "color: red", "Site header", "Menu link", "Copyright footer", "Enable JS"):
        assert junk not in text
    by_heading = {s.headings: s.text for s in doc.sections}
    assert by_heading[()] == "Welcome to the FAQ."
    assert by_heading[("Battery",)] == "The battery lasts 9 hours.\n\nCharging takes 2.5 hours."
    assert by_heading[("Battery", "Charging")] == (
        "- Use the dock.\n- Never use third-party chargers.\n\nModel | Hours\nNW-7 | 9"
    )
    assert by_heading[("Payload",)] == "Max 12 kg.\nEvenly distributed."


def test_html_title_fallbacks(tmp_path: Path) -> None:
    assert load(write(tmp_path, "a.htm", "<h1>Main Heading</h1><p>x</p>")).title == "Main Heading"
    assert load(write(tmp_path, "plain-page.html", "<p>only text</p>")).title == "plain-page"


def test_html_declared_legacy_charset(tmp_path: Path) -> None:
    raw = '<meta charset="iso-8859-1"><p>Caf\xe9 cr\xe8me</p>'.encode("latin-1")
    assert "Café crème" in load(write(tmp_path, "latin.html", raw)).text


def test_html_with_no_visible_text(tmp_path: Path) -> None:
    p = write(tmp_path, "empty.html", "<html><script>x=1</script><nav>menu</nav></html>")
    fails(p, "no text content")


# --- Markdown --------------------------------------------------------------------------------------

MARKDOWN = """---
title: Front Matter Title
tags: [a, b]
---

Preamble paragraph.

# Handbook

Intro to the handbook,
wrapped over two lines.

## Vacation

New employees get **25 days**.

- first item
- second item
  1. nested one
  2. nested two

### Carry-over

Up to 5 days carry over.

## Equipment

```python
def laptop():
    return "ThinkPad"
```

| Item | Budget |
|------|--------|
| Chair | 400 |

# Appendix

See [the wiki](https://example.org).
"""


def test_markdown_heading_stack_front_matter_code_and_lists(tmp_path: Path) -> None:
    doc = load(write(tmp_path, "handbook.md", MARKDOWN))
    assert doc.format == "markdown"
    assert doc.title == "Handbook"
    assert "tags:" not in doc.text and "Front Matter Title" not in doc.text
    by_heading = {s.headings: s.text for s in doc.sections}
    assert by_heading[()] == "Preamble paragraph."
    assert by_heading[("Handbook",)] == "Intro to the handbook, wrapped over two lines."
    assert by_heading[("Handbook", "Vacation")] == (
        "New employees get 25 days.\n\n- first item\n- second item\n  1. nested one\n  2. nested two"
    )
    assert by_heading[("Handbook", "Vacation", "Carry-over")] == "Up to 5 days carry over."
    assert by_heading[("Handbook", "Equipment")] == (
        'def laptop():\n    return "ThinkPad"\n\nItem | Budget\nChair | 400'
    )
    assert by_heading[("Appendix",)] == "See the wiki."


def test_markdown_title_fallbacks(tmp_path: Path) -> None:
    front = "---\ntitle: 'From Front'\n---\n## Sub\n\ntext\n"
    assert load(write(tmp_path, "a.md", front)).title == "From Front"
    assert load(write(tmp_path, "notes.markdown", "## Only H2\n\ntext\n")).title == "notes"


# --- reStructuredText ------------------------------------------------------------------------------

RST = """.. SPDX-License-Identifier: GPL-2.0

=================
Memory Allocation
=================

Use :c:func:`kmalloc` for small objects and :ref:`the guide <mm-guide>` for more.
See also |undefined-sub| and `missing link`_.

.. toctree::
   :maxdepth: 2

   other-page
   second-page

.. kernel-doc:: include/linux/slab.h
   :functions: kmalloc

.. include:: /etc/passwd

.. raw:: html

   <b>raw html must not appear</b>

.. totally-unknown-directive:: argument

   Unknown body text.

GFP flags
=========

The flags control the allocator.

* GFP_KERNEL may sleep.
* GFP_ATOMIC never sleeps.

.. code-block:: c

   ptr = kmalloc(size, GFP_KERNEL);

.. note:: Always check the return value.

.. c:function:: void *kzalloc(size_t size, gfp_t flags)

   Allocate zeroed memory.

Reclaim
-------

Direct reclaim may be triggered.

term
   Definition of the term.

+------+-------+
| Flag | Sleep |
+======+=======+
| A    | yes   |
+------+-------+
"""


def test_rst_sections_sphinx_markup_and_no_system_messages(tmp_path: Path) -> None:
    doc = load(write(tmp_path, "memory.rst", RST))
    assert doc.format == "rst"
    assert doc.title == "Memory Allocation"
    by_heading = {s.headings: s.text for s in doc.sections}
    intro = by_heading[("Memory Allocation",)]
    assert intro.startswith("Use kmalloc for small objects and the guide for more.")
    assert "undefined-sub" in intro and "missing link" in intro
    flags = by_heading[("Memory Allocation", "GFP flags")]
    assert "- GFP_KERNEL may sleep.\n- GFP_ATOMIC never sleeps." in flags
    assert "ptr = kmalloc(size, GFP_KERNEL);" in flags
    assert "Note: Always check the return value." in flags
    assert "void *kzalloc(size_t size, gfp_t flags)\n\nAllocate zeroed memory." in flags
    reclaim = by_heading[("Memory Allocation", "GFP flags", "Reclaim")]
    assert "Direct reclaim may be triggered." in reclaim
    assert "term\n  Definition of the term." in reclaim
    assert "Flag | Sleep\nA | yes" in reclaim
    text = doc.text
    for junk in ("other-page", "slab.h", "root:", "raw html", "Unknown", "System Message", "ERROR/",
                 "SPDX", ":c:func:", "`", "toctree", "Unknown body text"):
        assert junk not in text, junk


def test_rst_malformed_input_never_raises(tmp_path: Path) -> None:
    bad = (
        "Title\n===\n\n* unterminated *emphasis\n\n.. [#] footnote\n\n====\nx\n=\n\n"
        "`bad role <\n\n:unknown:`role`\n\n.. |x| image:: nothing.png\n\nBody text.\n"
    )
    doc = load(write(tmp_path, "bad.rst", bad))
    assert "Body text." in doc.text


def test_rst_title_directive_and_stem_fallback(tmp_path: Path) -> None:
    titled = ".. title:: Explicit Title\n\nSome text.\n"
    assert load(write(tmp_path, "a.rst", titled)).title == "Explicit Title"
    assert load(write(tmp_path, "no-heading.rst", "Just a paragraph.\n")).title == "no-heading"


def test_rst_is_fast(tmp_path: Path) -> None:
    p = write(tmp_path, "big.rst", RST * 10)
    load(p)
    start = time.perf_counter()
    for _ in range(5):
        load(p)
    assert (time.perf_counter() - start) / 5 < 0.25  # ~10 KB of dense markup; typically ~20 ms


def test_rst_only_toctree_has_no_text(tmp_path: Path) -> None:
    fails(write(tmp_path, "index.rst", ".. toctree::\n\n   a\n   b\n"), "no text content")


# --- plain text ------------------------------------------------------------------------------------


def test_text_whitespace_normalised_and_bom_stripped(tmp_path: Path) -> None:
    raw = "\ufeffRelease Notes\r\n\r\n\r\n\r\nFixed   the\t\tcharger.   \r\nSecond line.\r\n\r\n\r\n"
    doc = load(write(tmp_path, "notes.txt", raw))
    assert doc.format == "text"
    assert doc.title == "Release Notes"
    assert len(doc.sections) == 1 and doc.sections[0].headings == () and doc.sections[0].page is None
    assert doc.text == "Release Notes\n\nFixed the charger.\nSecond line."


def test_log_title_is_the_stem(tmp_path: Path) -> None:
    assert load(write(tmp_path, "app.log", "2024-01-01 started\n")).title == "app"


# --- bad input -------------------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    fails(tmp_path / "nope.md", "no such file")
    fails(tmp_path / "nope.xyz", "no such file")


def test_directory(tmp_path: Path) -> None:
    (tmp_path / "folder.md").mkdir()
    fails(tmp_path / "folder.md", "is a directory")
    fails(tmp_path, "is a directory")


def test_permission_denied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = write(tmp_path, "secret.md", "# x\n")
    real_open = os.open

    def deny(path: object, *args: object, **kwargs: object) -> int:  # root reads anything: make it refuse
        if str(path) == str(p):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", deny)
    fails(p, "permission denied")


def test_empty_file(tmp_path: Path) -> None:
    fails(write(tmp_path, "empty.txt", b""), "empty file")


def test_whitespace_only_file(tmp_path: Path) -> None:
    fails(write(tmp_path, "blank.md", "\n\n   \n"), "no text content")


def test_over_size_limit(tmp_path: Path) -> None:
    p = write(tmp_path, "big.txt", b"a" * int(12.3 * MB))
    fails(p, "file is 12.3 MB, over the 10.0 MB limit (max_file_mb)", max_bytes=10 * MB)


def test_binary_content_in_text_file(tmp_path: Path) -> None:
    fails(write(tmp_path, "blob.txt", b"text\x00\x01\x02" * 10), "binary content, not text")


def test_not_utf8(tmp_path: Path) -> None:
    p = write(tmp_path, "latin.md", "# Caf\xe9\n".encode("latin-1"))
    fails(p, "not valid UTF-8 (first bad byte at offset 5); convert it to UTF-8")
    p = write(tmp_path, "bom.txt", b"\xef\xbb\xbfok \xff")
    fails(p, "first bad byte at offset 6")


def test_unsupported_extension(tmp_path: Path) -> None:
    fails(write(tmp_path, "data.xyz", "hello"), "unsupported file type '.xyz'")
    fails(write(tmp_path, "Makefile", "all:\n"), "unsupported file type 'Makefile'")


def test_library_exception_is_wrapped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sovrag.ingest import loaders

    def boom(path: Path, text: str) -> None:
        raise ValueError("parser exploded")

    monkeypatch.setitem(loaders._FORMATS, ".md", ("markdown", boom, True))
    fails(write(tmp_path, "x.md", "# x\n"), "cannot parse markdown: ValueError: parser exploded")


# --- the demo knowledge base -----------------------------------------------------------------------

EXAMPLES = Path(__file__).parent.parent / "examples" / "docs"


@pytest.mark.parametrize("name,fmt,facts", [
    ("handbook.md", "markdown", ["25 vacation days per year", "30 vacation days per year"]),
    ("security-policy.pdf", "pdf", ["at least 14 characters", "within 1 hour", "security@northwind.example"]),
    ("oncall-runbook.rst", "rst", ["Monday at 10:00 CET", "within 15 minutes", "SEV1", "SEV3"]),
    ("product-faq.html", "html", ["9 hours", "12 kg", "2.5 hours", "3-year warranty"]),
    ("expense-policy.docx", "docx",
     ["60 EUR per day", "180 EUR per night", "within 30 days", "over 500 EUR"]),
    ("release-notes.txt", "text", ["obstacle detection", "Charging bug fixed"]),
])
def test_example_documents(name: str, fmt: str, facts: list[str]) -> None:
    doc = load(EXAMPLES / name)
    assert doc.format == fmt
    assert 300 <= len(doc.text.split()) <= 900
    text = " ".join(doc.text.split())
    for fact in facts:
        assert fact in text, fact
