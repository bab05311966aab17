"""One conformance suite for every LLM backend: embedded llama.cpp, and the OpenAI-compatible HTTP client
against a live OpenAI-compatible server on loopback (llama.cpp's own server, started by xllamacpp)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sovrag.config import Settings
from sovrag.errors import GenerationError, ModelError
from sovrag.generate import GenerationParams, Message, create_llm
from sovrag.generate.llamacpp import LlamaCppLLM
from sovrag.generate.openai_compat import OpenAICompatLLM

from .conftest import MODELS_DIR

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def local_llm() -> LlamaCppLLM:
    data = MODELS_DIR.parent / "sovrag-test-data"
    llm = create_llm(Settings(data_dir=data, llm_context=1024))
    assert isinstance(llm, LlamaCppLLM)
    return llm


@pytest.fixture(params=["llamacpp", "openai-http"])
def llm(request, local_llm):
    if request.param == "llamacpp":
        return local_llm
    return OpenAICompatLLM(local_llm.server.listening_address + "/v1", "qwen", api_key=local_llm._key,
                           timeout=120, context=local_llm.context_tokens)


CAPITAL = [Message("system", "Answer with one word."), Message("user", "What is the capital of France?")]


def test_chat_answers_with_token_counts(llm):
    g = llm.chat(CAPITAL, GenerationParams(max_tokens=8))
    assert "paris" in g.text.lower()
    assert g.prompt_tokens > 10 and 0 < g.completion_tokens <= 8
    assert g.finish_reason in ("stop", "length") and g.seconds > 0


def test_stream_yields_pieces_then_the_same_text(llm):
    events = list(llm.stream([Message("user", "Count from 1 to 5, separated by commas.")],
                             GenerationParams(max_tokens=24)))
    pieces = [e.delta for e in events if e.done is None]
    done = events[-1].done
    assert done is not None and len(pieces) > 3
    assert "".join(pieces) == done.text and "3" in done.text
    assert done.completion_tokens >= len(pieces) - 1 and done.prompt_tokens > 0


def test_max_tokens_and_determinism(llm):
    msgs = [Message("user", "Write a long story about a robot.")]
    a = llm.chat(msgs, GenerationParams(max_tokens=5))
    b = llm.chat(msgs, GenerationParams(max_tokens=5))
    assert a.finish_reason == "length" and a.completion_tokens == 5
    assert a.text == b.text  # temperature 0, fixed seed


def test_top_logprobs_of_each_token(llm):
    g = llm.chat(CAPITAL, GenerationParams(max_tokens=3, top_logprobs=5))
    assert 1 <= len(g.logprobs) <= 3
    first = g.logprobs[0]
    assert 1 <= len(first) <= 5 and all(v <= 0 for v in first.values())
    best = max(first, key=first.get)
    assert g.text.startswith(best.strip()) or g.text.startswith(best)  # greedy: the likeliest token was written
    assert llm.chat(CAPITAL, GenerationParams(max_tokens=3)).logprobs == []  # not asked: none


def test_json_schema_constrains_the_output(llm):
    schema = {"type": "object", "properties": {"city": {"type": "string"}, "population_millions":
                                                {"type": "number"}}, "required": ["city", "population_millions"]}
    g = llm.chat([Message("user", "Give the largest city of Japan and its population as JSON.")],
                 GenerationParams(max_tokens=60, json_schema=schema))
    data = json.loads(g.text)
    assert set(data) == {"city", "population_millions"} and isinstance(data["population_millions"], int | float)


def test_prompt_over_the_context_is_a_clear_error(llm):
    huge = "word " * 3000
    with pytest.raises(GenerationError, match="context"):
        llm.chat([Message("user", huge)], GenerationParams(max_tokens=4))


def test_count_tokens_is_close_to_the_engine(llm, local_llm):
    text = "Northwind Robotics gives new employees 25 vacation days per year."
    exact = local_llm.count_tokens(text)
    assert 10 <= exact <= 20
    assert abs(llm.count_tokens(text) - exact) <= exact * 0.5


def test_missing_or_corrupt_gguf(tmp_path: Path, local_llm):  # local_llm: the real GGUF is pulled
    with pytest.raises(ModelError, match="file not found"):
        LlamaCppLLM(tmp_path / "nope.gguf", "x")
    real = MODELS_DIR / "qwen2.5-coder-0.5b-instruct-q4_k_m" / "model.gguf"
    cut = tmp_path / "cut.gguf"
    with open(real, "rb") as f:
        cut.write_bytes(f.read(1 << 20))
    with pytest.raises(ModelError, match="cannot load it"):
        LlamaCppLLM(cut, "cut")
    (tmp_path / "text.gguf").write_text("hello")
    with pytest.raises(ModelError, match="not a GGUF file"):
        LlamaCppLLM(tmp_path / "text.gguf", "t")


RAG_COPY = [Message("system", "Answer from the documents, quoting them."),
            Message("user", "Documents:\n[1] Unused vacation days can be carried over into the next year, up to a "
                    "maximum of five days. Carried days must be taken by 31 March, after which they expire.\n\n"
                    "Question: What happens to unused vacation days? Quote the document.")]


def test_ngram_speculation_writes_what_plain_decoding_writes(local_llm):
    """On these prompts speculation writes plain decoding's text (on 5 of 100 benchmark prompts it does not: the
    batched verification can tip a close call, which is why it is off by default), and on an answer that copies
    its source the drafts are accepted."""
    plain = LlamaCppLLM(local_llm.path, "plain", context=1024, speculative="off")
    spec = LlamaCppLLM(local_llm.path, "ngram", context=1024, speculative="ngram")
    params = GenerationParams(max_tokens=64)
    for messages in (RAG_COPY, CAPITAL, [Message("user", "Count from 1 to 30, separated by commas.")],
                     [Message("user", "Write a short story about a robot who learns to paint.")]):
        a, b = plain.chat(messages, params), spec.chat(messages, params)
        assert a.text == b.text, messages[-1].text
        assert a.completion_tokens == b.completion_tokens
        assert "draft_n" not in a.timings or not a.timings["draft_n"]
    copied = spec.chat(RAG_COPY, params)
    assert copied.timings.get("draft_n_accepted", 0) > 0, copied.timings
    streamed = "".join(e.delta for e in spec.stream(RAG_COPY, params) if e.done is None)
    assert streamed == copied.text
    with pytest.raises(ModelError, match="speculative='fast'"):
        LlamaCppLLM(local_llm.path, "x", speculative="fast")


def test_the_speculation_setting_is_checked():
    from sovrag.config import load_settings
    from sovrag.errors import ConfigError

    assert Settings().llm_speculative == "off"
    assert load_settings(llm_speculative="ngram").llm_speculative == "ngram"
    with pytest.raises(ConfigError, match="llm_speculative='fast'"):
        load_settings(llm_speculative="fast")
