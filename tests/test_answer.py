"""The answer pipeline on the example documents with the real embedder and the bundled 0.5B model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sovrag.answer import AnswerOptions, AnswerPipeline
from sovrag.answer.contradict import find_contradictions
from sovrag.answer.verify import verify
from sovrag.collection import open_collection
from sovrag.config import Settings
from sovrag.errors import SovragError
from sovrag.generate import create_llm
from sovrag.ingest.sync import ingest
from sovrag.text import split_sentences
from sovrag.types import Answer, Chunk, Evidence, Source

from .conftest import MODELS_DIR

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "docs"


def _src(embedder, number: int, text: str) -> Evidence:
    sents = split_sentences(text)
    return Evidence(number, sents, embedder.embed(sents), text)


def test_verification_ignores_wrong_brackets_and_finds_real_support(embedder):
    sources = [
        _src(embedder, 1, "Hotels are reimbursed up to 180 EUR per night. Breakfast is included."),
        _src(embedder, 2, "New employees get 25 vacation days per year. After five years this rises to 30."),
    ]
    out = verify("New employees get 25 vacation days a year [1]. Hotels cost up to 180 EUR per night [1]. "
                 "The CEO is called Maria Lopez [2].", sources, embedder)
    first, second, third = out
    assert [c.source for c in first.citations] == [2] and first.rejected == (1,)
    assert not first.citations[0].cited_by_model and "25 vacation days" in first.citations[0].evidence
    assert [c.source for c in second.citations] == [1] and second.citations[0].cited_by_model
    assert not third.supported and third.citations == () and third.rejected == (2,)


def test_a_wrong_number_is_not_supported(embedder):
    sources = [_src(embedder, 1, "New employees get 25 vacation days per year.")]
    (s,) = verify("New employees get 28 vacation days per year.", sources, embedder)
    assert not s.supported


def _source(n: int, doc: str, text: str) -> Source:
    return Source(n, Chunk(f"c{n}", doc, text, f"/{doc}", doc, 0), text, 0.9)


def test_contradiction_between_documents_on_the_asked_number(embedder):
    a = "The NW-7 battery lasts 9 hours on a full charge."
    b = "On a full charge the NW-7 battery lasts 7 hours."
    c = "The NW-7 can carry 12 kg."
    srcs = [_source(1, "faq", a), _source(2, "brochure", b), _source(3, "specs", c)]
    q = embedder.embed(["How long does the NW-7 battery last?"])[0]
    sents = {s.number: [s.text] for s in srcs}
    vecs = {s.number: embedder.embed([s.text]) for s in srcs}
    (found,) = find_contradictions(srcs, sents, vecs, q)
    assert (found.source_a, found.source_b) == (1, 2) and found.values_a == ("9",) and found.values_b == ("7",)
    agree = [_source(1, "faq", a), _source(2, "brochure", b.replace("7 hours", "9 hours"))]
    assert find_contradictions(agree, {1: [a], 2: [agree[1].text]},
                               {1: vecs[1], 2: embedder.embed([agree[1].text])}, q) == []
    same_doc = [_source(1, "faq", a), _source(2, "faq", b)]
    assert find_contradictions(same_doc, sents, vecs, q) == []


@pytest.fixture(scope="module")
def kb(tmp_path_factory, embedder):
    data = tmp_path_factory.mktemp("answer") / "data"
    data.mkdir()
    (data / "models").symlink_to(MODELS_DIR, target_is_directory=True)
    settings = Settings(data_dir=data, llm_context=2048)
    docs = tmp_path_factory.mktemp("docs")
    for f in EXAMPLES.iterdir():
        (docs / f.name).write_bytes(f.read_bytes())
    (docs / "battery-brochure.md").write_text(
        "# NW-7 sales brochure\n\nThe NW-7 is our most capable robot. A fully charged NW-7 runs for 7 hours of "
        "continuous operation with a typical load.\n")
    with open_collection(settings, "examples", create=True) as col:
        report = ingest(settings, col, [docs])
        assert not report.failed, report.failed
    col = open_collection(settings, "examples")
    yield settings, col
    col.close()


@pytest.fixture(scope="module")
def pipeline(kb) -> AnswerPipeline:
    settings, col = kb
    return AnswerPipeline(col, create_llm(settings), AnswerOptions(max_tokens=80))


def _cited_docs(a: Answer) -> set[str]:
    by_number = {s.number: s for s in a.sources}
    return {Path(by_number[c.source].chunk.source).name for s in a.sentences for c in s.citations}


def test_compression_keeps_the_answer_in_far_fewer_tokens(pipeline):
    q = "How many vacation days do new employees get?"
    compressed = pipeline.prepare(q)
    whole = AnswerPipeline(pipeline.col, pipeline.llm, AnswerOptions(compress=False)).prepare(q)
    count = pipeline.llm.count_tokens
    tokens = [sum(count(m.content) for m in p.messages) for p in (compressed, whole)]
    assert tokens[0] <= 0.6 * tokens[1], tokens
    assert any("25 vacation days" in s.text for s in compressed.sources)


@pytest.mark.model
@pytest.mark.slow
def test_grounded_answer_with_verified_citation(pipeline):
    a = pipeline.answer("How many vacation days do new employees get?")
    assert not a.abstained and "25" in a.text
    assert "handbook.md" in _cited_docs(a)
    assert a.prompt_tokens > 0 and a.completion_tokens > 0 and a.timings["generate_s"] > 0


@pytest.mark.model
def test_off_topic_question_abstains_without_generating(pipeline):
    a = pipeline.answer("Who won the 1966 FIFA World Cup final?")
    assert a.abstained and a.text.startswith("The documents do not answer this")
    assert "no retrieved passage answers the question" in a.abstain_reason and a.completion_tokens == 0 and a.sources


@pytest.mark.model
@pytest.mark.slow
def test_contradicting_sources_are_flagged(pipeline):
    a = pipeline.answer("How many hours does a fully charged NW-7 run?")
    assert a.contradictions, a
    c = a.contradictions[0]
    assert {"7", "9"} == set(c.values_a) | set(c.values_b)
    assert "disagree" in a.text


@pytest.mark.model
@pytest.mark.slow
def test_streaming_gives_verified_sentences_then_the_answer(pipeline):
    items = list(pipeline.stream("What is the hotel limit per night?"))
    final = items[-1]
    assert isinstance(final, Answer) and all(isinstance(i, str) for i in items[:-1])
    assert "".join(items[:-1]) == final.text and "180" in final.text and "[" in items[0]
    assert final.timings["first_text_s"] >= final.timings["first_token_s"]


@pytest.mark.model
@pytest.mark.slow
def test_an_abstention_streams_as_the_abstention_text(pipeline):
    items = list(pipeline.stream("Who won the 1966 FIFA World Cup final?"))
    final = items[-1]
    assert final.abstained, final.text
    assert "".join(items[:-1]) == final.text and final.text.startswith("The documents do not answer this")


@pytest.mark.model
@pytest.mark.slow
def test_an_unanswered_on_topic_question_abstains(pipeline):
    # the handbook mentions parental leave, never adoption: once a fluent answer reusing its words got through
    a = pipeline.answer("What is the parental leave policy for adoptive parents?")
    assert a.abstained and "reranker" in a.abstain_reason and a.completion_tokens == 0, a.text


@pytest.mark.model
@pytest.mark.slow
def test_yes_no_question_is_answered_yes_or_no_first(pipeline):
    led = AnswerPipeline(pipeline.col, pipeline.llm, AnswerOptions(max_tokens=80, yes_no_lead=True))
    a = led.answer("Do new employees get vacation days?")
    assert not a.abstained and a.text.startswith("Yes."), a.text
    assert a.sentences[0].citations and "handbook.md" in _cited_docs(a)
    # by default the model's own answer, verified (the lead is off: docs/benchmarks.md)
    plain = pipeline.answer("Do new employees get vacation days?")
    assert not plain.abstained and not plain.text.startswith("Yes.["), plain.text
    assert "handbook.md" in _cited_docs(plain)


@pytest.mark.model
@pytest.mark.slow
def test_a_question_nothing_answers_is_refused_before_generating(pipeline):
    a = pipeline.answer("Who won the 1966 FIFA World Cup final?")
    assert a.abstained and "reranker" in a.abstain_reason and a.draft == "" and a.answerable is not None


@pytest.mark.model
def test_an_unsupported_draft_gives_way_to_a_quote_of_the_best_source(pipeline):
    from sovrag.generate import Generation

    prep = pipeline.prepare("How many vacation days do new employees get?")
    assert not prep.abstain_reason and prep.context.answerable >= prep.context.answerable_threshold
    a = pipeline.finish(prep, Generation("New employees get 40 vacation days and a company car."))
    assert not a.abstained and a.quoted, a.text
    assert a.sentences[0].text.startswith("New employees get 40") and not a.sentences[0].supported
    quote = a.sentences[-1]
    assert quote.text.startswith('The documents say: "') and quote.supported and quote.citations
    assert "25" in quote.citations[0].evidence and "[unsupported]" in a.text
    refused = pipeline.finish(prep, Generation("The documents do not answer this."))
    assert refused.quoted and refused.text.startswith('The documents say: "'), refused.text  # no refusal shown
    off = AnswerPipeline(pipeline.col, pipeline.llm, AnswerOptions(max_tokens=80, quote_fallback=False))
    assert off.finish(prep, Generation("New employees get 40 vacation days.")).abstained


@pytest.mark.model
@pytest.mark.slow
def test_withheld_unsupported_sentences_are_not_shown(pipeline):
    p = AnswerPipeline(pipeline.col, pipeline.llm, AnswerOptions(max_tokens=80, unsupported="withhold"))
    items = list(p.stream("How many vacation days do new employees get?"))
    final = items[-1]
    assert "".join(items[:-1]) == final.text and "[unsupported]" not in final.text
    assert all(s.text not in final.text for s in final.sentences if not s.supported)


def test_bad_questions(pipeline):
    with pytest.raises(SovragError, match="question: empty"):
        pipeline.answer("   ")
    with pytest.raises(SovragError, match="too long for the model's context"):
        pipeline.answer("why " * 3000)


def test_retrieval_vectors_are_unit_length(pipeline):
    ctx = pipeline.retrieve("What is the warranty of the NW-7?")
    assert ctx.evidence and all(np.allclose(np.linalg.norm(e.vectors, axis=1), 1, atol=1e-4) for e in ctx.evidence)
    assert np.isclose(np.linalg.norm(ctx.question_vector), 1, atol=1e-4)


def test_the_question_is_embedded_once_per_answer(pipeline):
    """Retrieval embeds the question and the retrieved sentences; nothing downstream embeds the question again."""
    seen: list[str] = []
    real = pipeline.col.embedder.embed

    def spy(texts):
        seen.extend(texts)
        return real(texts)

    pipeline.col.embedder.embed = spy
    try:
        q = "What is the warranty of the NW-7?"
        pipeline.retrieve(q)
    finally:
        del pipeline.col.embedder.embed
    assert seen.count(q) == 1, seen[:5]


@pytest.mark.model
@pytest.mark.slow
def test_multi_document_question_cites_each_document(pipeline):
    a = pipeline.answer("What is the hotel limit per night, and how many characters must a password have?")
    assert not a.abstained, a.abstain_reason
    assert "180" in a.text and "14" in a.text
    assert {"expense-policy.docx", "security-policy.pdf"} <= _cited_docs(a), a.text


def test_clause_splitting():
    from sovrag.answer.verify import clauses

    assert clauses("The hotel limit is 180 EUR, and passwords need 14 characters.") == [
        "The hotel limit is 180 EUR", "passwords need 14 characters."]
    # "Salt" alone states nothing: the sentence is not treated as two claims.
    assert len(clauses("Salt and pepper are served.")) < 2


def test_compression_keeps_the_best_chunk_whole_and_trims_the_rest(embedder):
    from sovrag.retrieve.compress import build_pool, compress
    from sovrag.types import ScoredChunk

    texts = [
        "Mount Etna is on Sicily. It erupted in 2021. The summit is 3,357 m high. Tourists visit it in summer.",
        "Vesuvius is near Naples. It destroyed Pompeii in 79 AD. Bread is baked in Naples. Pizza is popular.",
        "Etna's lava flows reached Catania in 1669. Oranges grow on its slopes. Football is played in Catania.",
    ]
    hits = [ScoredChunk(Chunk(f"c{i}", f"d{i}", t, f"/d{i}", "", 0), 1.0, i + 1) for i, t in enumerate(texts)]
    q = "When did Etna's lava reach Catania?"
    pool = build_pool(embedder, embedder.embed([q])[0], hits)
    count = lambda s: len(s.split())  # noqa: E731
    comp = compress(pool, q, 3, budget_tokens=40, count_tokens=count, keep_whole=1)
    assert comp.kept[0] == [0, 1, 2, 3]  # the best-ranked chunk, whole
    kept_text = [pool.sentences[i] for idx in comp.kept[1:] for i in idx]
    assert "Etna's lava flows reached Catania in 1669." in kept_text
    assert "Pizza is popular." not in kept_text
    assert sum(count(pool.sentences[i]) + 2 for idx in comp.kept for i in idx) <= 40


def test_follow_up_retrieves_with_the_earlier_question(pipeline):
    from sovrag.answer.followup import Turn, is_follow_up

    history = [Turn("user", "How many vacation days do new employees get?"),
               Turn("assistant", "New employees get 25 vacation days per year [1].")]
    follow_up = "Until when must they be taken?"
    assert is_follow_up(follow_up)
    with_history = pipeline.prepare(follow_up, history)
    assert any("31 March" in s.text for s in with_history.sources), [s.text for s in with_history.sources]
    assert not with_history.abstain_reason
    # the model sees the earlier exchange, without citation marks, before the new question
    roles = [m.role for m in with_history.messages]
    assert roles == ["system", "user", "assistant", "user"]
    assert with_history.messages[2].content == "New employees get 25 vacation days per year."
    assert with_history.question == follow_up and follow_up in with_history.messages[-1].content
    # a question that stands on its own changes the subject: the old topic is not searched
    switch = pipeline.prepare("What is the hotel limit per night on business trips?", history)
    assert any("180" in s.text for s in switch.sources)
    assert not any("vacation" in s.text.lower() for s in switch.sources)
    assert [m.role for m in switch.messages] == ["system", "user", "assistant", "user"]


def test_follow_up_detection_and_history_trimming():
    from sovrag.answer.followup import Turn, context_turns, is_follow_up, retrieval_query

    assert is_follow_up("And for part-time staff?") and is_follow_up("Why?") and is_follow_up("What about Lyon?")
    assert not is_follow_up("What is the hotel limit per night on business trips?")
    h = [Turn("user", "Q1 about vacation days?"), Turn("assistant", "A1."), Turn("user", "Q2 about carry-over rules?"),
         Turn("assistant", "A2 [1][2]. " + "More words here. " * 60)]
    assert retrieval_query("Why?", h) == "Q2 about carry-over rules? Why?"
    assert retrieval_query("Why?", []) == "Why?"
    turns = context_turns(h)
    assert [t.role for t in turns] == ["user", "assistant"] and turns[0].text == "Q2 about carry-over rules?"
    assert turns[1].text.startswith("A2.") and turns[1].text.endswith(".") and len(turns[1].text) <= 600
    assert context_turns([Turn("assistant", "hello")]) == []


def test_source_order_puts_the_best_source_first_or_next_to_the_closing_question():
    from sovrag.answer.prompt import build_messages

    chunks = [Chunk(f"d{i}", f"d{i}", f"passage {i}", f"doc{i}.txt", f"Doc {i}", 0) for i in (1, 2, 3)]
    sources = [Source(i, c, c.text, 0.9 - i / 10) for i, c in enumerate(chunks, start=1)]
    first = build_messages("What is in passage 1?", sources)[-1].content
    last = build_messages("What is in passage 1?", sources, order="best-last")[-1].content
    assert first.index("[1]") < first.index("[2]") < first.index("[3]")
    assert last.index("[3]") < last.index("[2]") < last.index("[1]")  # the same numbers, the best nearest the end
    assert sorted(first) == sorted(last)  # the same text, only reordered
    with pytest.raises(ValueError, match="source order 'random'"):
        build_messages("q", sources, order="random")
