"""The chunker on real text with the real MiniLM tokenizer: limits, overlap, ids, modes."""

from __future__ import annotations

import argparse
import json
import logging
import re
import subprocess
import typing
import uuid

import pytest

from sovrag.ingest.chunker import NAMESPACE, chunk_document, split_text
from sovrag.types import Document, Section
from tests.ingest_fixtures import count_tokens_factory

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def count():
    return count_tokens_factory()


def _long_text() -> str:
    """Real prose with code and lists: the docstrings of a few stdlib modules (~40 KB)."""
    docs = [m.__doc__ or "" for m in (argparse, json, logging, re, subprocess, typing)]
    return "\n\n".join(d.strip() for d in docs if d.strip())


def _doc(*sections: Section, title: str = "Guide") -> Document:
    return Document(source="/docs/guide.md", title=title, sections=list(sections), format="markdown")


def _words(text: str) -> list[str]:
    return text.split()


@pytest.mark.parametrize("limit,overlap", [(200, 32), (64, 16), (128, 0)])
def test_limits_hold_on_real_text_and_nothing_is_lost(count, limit: int, overlap: int) -> None:
    text = _long_text()
    doc = _doc(Section(text, page=4, headings=("Stdlib", "Docstrings")))
    chunks = chunk_document(doc, "doc-1", "v1", count, chunk_tokens=limit, overlap=overlap)
    assert len(chunks) > 10
    for c in chunks:
        assert c.text and c.text == c.text.strip()
        assert count(c.text) <= limit, (count(c.text), c.text[:80])
        assert (c.page, c.headings, c.title, c.source, c.doc_id) == (
            4, ("Stdlib", "Docstrings"), "Guide", "/docs/guide.md", "doc-1"
        )
        assert not c.text.startswith("Stdlib")  # headings are not prefixed into the text
    assert [c.index for c in chunks] == list(range(len(chunks)))
    # Every word of the source is in some chunk, in order.
    joined = " ".join(c.text for c in chunks).split()
    pos = 0
    for w in _words(text):
        pos = joined.index(w, pos)
    # Chunks are reasonably full: the packing is greedy, not one sentence per chunk.
    mean = sum(count(c.text) for c in chunks) / len(chunks)
    assert mean > limit * 0.55


def test_consecutive_chunks_overlap(count) -> None:
    chunks = split_text(_long_text(), count, 120, 24)
    shared = 0
    for a, b in zip(chunks, chunks[1:], strict=False):
        # the longest start of b that is also the end of a: the overlap
        n = max((n for n in range(1, min(len(a), len(b)) + 1) if a.endswith(b[:n])), default=0)
        if n and b[:n].strip():
            shared += 1
            assert count(b[:n]) <= 24  # about `overlap` tokens, never the whole previous chunk
            assert len(b) > n  # and every chunk adds new text
    # Overlap is skipped only where the next piece alone nearly fills a chunk.
    assert shared >= len(chunks) * 0.6


def test_no_overlap_when_zero(count) -> None:
    text = " ".join(f"Sentence number {i} talks about topic {i}." for i in range(400))
    chunks = split_text(text, count, 50, 0)
    assert " ".join(chunks) == text


def test_sentences_are_kept_whole_when_possible(count) -> None:
    text = " ".join(f"This is sentence {i} of a paragraph without any line breaks." for i in range(200))
    chunks = split_text(text, count, 60, 0)
    for c in chunks:
        assert c.startswith("This is sentence") and c.endswith("line breaks.")


def test_sentence_split_keeps_closing_quotes(count) -> None:
    text = " ".join(f'He said "stop number {i}." Then he waited (for {i} seconds.) Done.' for i in range(60))
    chunks = split_text(text, count, 40, 0)
    assert " ".join(chunks) == text


def test_giant_word_is_split_by_characters(count) -> None:
    blob = "QmFzZTY0" * 700  # one 5600-character "word"
    chunks = split_text(f"Before. {blob} After.", count, 100, 10)
    assert all(0 < count(c) <= 100 for c in chunks)
    assert blob in "".join(c.replace(" ", "") for c in chunks).replace("Before.", "")


def test_sections_are_never_merged_and_empty_ones_skipped(count) -> None:
    doc = _doc(
        Section("Page one text.", page=1),
        Section("   ", page=2),
        Section("Page three text.", page=3, headings=("Appendix",)),
    )
    chunks = chunk_document(doc, "d", "v", count)
    assert [(c.text, c.page, c.headings, c.index) for c in chunks] == [
        ("Page one text.", 1, (), 0),
        ("Page three text.", 3, ("Appendix",), 1),
    ]


def test_ids_are_deterministic_uuid5(count) -> None:
    doc = _doc(Section(_long_text()[:5000]))
    a = chunk_document(doc, "doc-7", "sha-1", count)
    b = chunk_document(doc, "doc-7", "sha-1", count)
    c = chunk_document(doc, "doc-7", "sha-2", count)
    assert [x.id for x in a] == [x.id for x in b]
    assert len({x.id for x in a}) == len(a)
    assert not {x.id for x in a} & {x.id for x in c}
    assert a[1].id == str(uuid.uuid5(NAMESPACE, "doc-7\x00sha-1\x001"))
    assert uuid.UUID(a[0].id).version == 5


def test_document_mode_keeps_small_document_whole(count) -> None:
    doc = _doc(
        Section("Intro text.", page=2),
        Section("Vacation is 25 days.", page=2, headings=("Handbook", "Vacation")),
        Section("Laptops are provided.", page=3, headings=("Handbook", "Equipment")),
    )
    chunks = chunk_document(doc, "d", "v", count, mode="document", document_max_tokens=512)
    assert len(chunks) == 1
    c = chunks[0]
    assert (c.index, c.page, c.headings) == (0, 2, ())
    assert c.text == (
        "Intro text.\n\nHandbook\n\nVacation\n\nVacation is 25 days.\n\nEquipment\n\nLaptops are provided."
    )


def test_document_mode_falls_back_to_recursive(count) -> None:
    doc = _doc(Section(_long_text(), page=1, headings=("H",)))
    recursive = chunk_document(doc, "d", "v", count, chunk_tokens=150, overlap=20)
    fallback = chunk_document(
        doc, "d", "v", count, chunk_tokens=150, overlap=20, mode="document", document_max_tokens=1000
    )
    assert len(fallback) > 1
    assert [(c.id, c.text, c.headings) for c in fallback] == [(c.id, c.text, c.headings) for c in recursive]


def test_token_counting_is_linear(count) -> None:
    text = _long_text()
    counted = 0

    def counting(t: str) -> int:
        nonlocal counted
        counted += len(t)
        return count(t)

    split_text(text, counting, 200, 32)
    assert counted < 5 * len(text)


def test_whitespace_only_text_gives_no_chunks(count) -> None:
    assert split_text(" \n\n \t", count, 100, 10) == []


@pytest.mark.parametrize(
    "kwargs", [{"mode": "pages"}, {"chunk_tokens": 0}, {"overlap": 200}, {"overlap": -1}]
)
def test_invalid_arguments(count, kwargs: dict[str, typing.Any]) -> None:
    with pytest.raises(ValueError):
        chunk_document(_doc(Section("x")), "d", "v", count, **kwargs)


def test_markdown_code_and_lists_stay_intact_when_small(count) -> None:
    body = "Steps:\n- one\n- two\n\n```\ncode line\n```"
    chunks = split_text(body, count, 200, 32)
    assert chunks == [body]
    assert re.search(r"- one\n- two", chunks[0])
    json.dumps(chunks)  # plain strings
    logging.getLogger(__name__).debug("ok")


def _metered(count):
    """A counter that records how many characters it was asked to count in all."""
    seen = {"chars": 0}

    def metered(text: str) -> int:
        seen["chars"] += len(text)
        return count(text)

    return metered, seen


@pytest.mark.parametrize("n", [10_000, 40_000])
def test_long_runs_without_spaces_are_cut_in_linear_work_within_the_budget(n: int) -> None:
    count = count_tokens_factory()
    text = ("这是一个很长的中文句子没有空格" * (n // 15 + 1))[:n]
    metered, seen = _metered(count)
    chunks = split_text(text, metered, 200, 0)
    assert all(count(c) <= 200 for c in chunks)
    assert "".join(chunks) == text  # cut, never dropped
    assert seen["chars"] < 8 * n  # each character counted a few times, not once per remaining piece


def test_cjk_full_stops_end_sentences() -> None:
    count = count_tokens_factory()
    text = "我们在会议上讨论了预算。接下来的步骤是什么？大家都同意了！" * 40
    chunks = split_text(text, count, 60, 0)
    assert all(c.endswith(("。", "？", "！")) for c in chunks), chunks[:3]
    assert all(count(c) <= 60 for c in chunks)


def test_a_huge_single_word_is_bounded_in_characters_too() -> None:
    # word-piece tokenizers count a word over 100 characters as one [UNK]: the chunk must still be bounded
    count = count_tokens_factory()
    chunks = split_text("x" * 2_000_000, count, 200, 32)
    assert len(chunks) > 100 and max(len(c) for c in chunks) <= 200 * 32
