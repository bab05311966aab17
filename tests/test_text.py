"""Sentence splitting and stemming: the library-backed helpers every splitter and matcher uses."""

from __future__ import annotations

import pytest

from sovrag.answer.streaming import SentenceBuffer
from sovrag.evaluate.faithcheck import lexical_check
from sovrag.text import content_terms, split_sentences, stem


@pytest.mark.parametrize("text", [
    "Use a strong key, e.g. a passphrase of five words.",
    "Dr. Smith signed the contract for the U.S. office.",
    "The fee is approx. 3.5 EUR per day.",
    "Inflation was 2.5% in 2023, i.e. below target.",
    "Mr. Jones of Acme Inc. agreed to the terms.",
])
def test_abbreviations_and_decimals_do_not_end_a_sentence(text):
    assert split_sentences(text) == [text]


def test_sentences_paragraphs_and_list_items():
    text = ("Employees get 25 days. Contractors get none!\n\nSteps:\n- open the form\n- sign it\n"
            "1. First, read.\n2. Then, sign. Is that all?")
    assert split_sentences(text) == ["Employees get 25 days.", "Contractors get none!", "Steps:", "- open the form",
                                     "- sign it", "1. First, read.", "2. Then, sign.", "Is that all?"]


def test_stemmer_conflates_inflections():
    assert stem("employees") == stem("employee")
    assert stem("rotated") == stem("rotate") == stem("rotating")
    assert stem("studies") == stem("study")
    assert stem("2024") == "2024"
    assert content_terms("Each new employee gets 25 vacation days.") == content_terms(
        "New employees get 25 vacation days.")


def test_lexical_check_accepts_plural_restatement():
    r = lexical_check("Each new employee gets 25 vacation days.", "New employees get 25 vacation days.")
    assert r.supported, r.reason


def test_sentence_buffer_yields_sentences_as_they_complete():
    buf = SentenceBuffer()
    got = []
    for delta in ["New employ", "ees get 25 days, e.g. in ", "2024 [1]. Contractors", " get none [2].", " Done"]:
        got.extend(buf.feed(delta))
        if delta.startswith(" get none"):
            assert got == ["New employees get 25 days, e.g. in 2024 [1]."]
    got.extend(buf.close())
    assert got == ["New employees get 25 days, e.g. in 2024 [1].", "Contractors get none [2].", "Done"]
