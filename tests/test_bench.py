"""`sovrag bench`: the run on a real collection (real embedder and store; the real LLM in the slow test, a
scripted one elsewhere), the saved run, bad input, and `sovrag cost` fed by a real results.json."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sovrag.bench.report import save_bench
from sovrag.bench.run import BenchOptions, percentiles, run_bench, token_rates
from sovrag.bench.sample import question_from_chunk, questions_from_collection, read_questions, sample_chunks
from sovrag.cli import app
from sovrag.collection import open_collection
from sovrag.errors import BenchError
from sovrag.generate import Generation, GenerationParams, Message, StreamEvent
from sovrag.generate.shared import SharedLLM
from sovrag.ingest.sync import ingest
from sovrag.reports import list_runs

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "docs"


class ScriptedLLM:
    """Streams a fixed answer word by word with a small delay; reports llama.cpp-style engine timings."""

    name = "scripted:test"
    context_tokens = 4096

    def __init__(self, prompt_s: float = 0.15) -> None:
        self.prompt_s = prompt_s
        self.active = 0
        self.max_active = 0
        self._lock = threading.Lock()

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def chat(self, messages: Sequence[Message], params: GenerationParams | None = None) -> Generation:
        *_, last = self.stream(messages, params)
        assert last.done is not None
        return last.done

    def stream(self, messages: Sequence[Message], params: GenerationParams | None = None) -> Iterator[StreamEvent]:
        with self._lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            t0 = time.perf_counter()
            time.sleep(self.prompt_s)  # "prompt processing"
            words = "New employees get 25 vacation days per year [1].".split()
            for w in words:
                time.sleep(0.005)
                yield StreamEvent(delta=w + " ")
            prompt = sum(self.count_tokens(m.content) for m in messages)
            yield StreamEvent(done=Generation(" ".join(words), prompt, len(words), "stop", time.perf_counter() - t0,
                                              {"prompt_n": prompt, "prompt_ms": 20.0, "predicted_n": len(words),
                                               "predicted_ms": 5.0 * len(words)}))
        finally:
            with self._lock:
                self.active -= 1


@pytest.fixture
def examples(settings):
    with open_collection(settings, "ex", create=True) as col:
        ingest(settings, col, [EXAMPLES])
    return settings


def test_questions_and_chunks_drawn_from_the_collection(examples):
    with open_collection(examples, "ex") as col:
        chunks = sample_chunks(col, 10, seed=1)
        assert len(chunks) == 10 and len({c.id for c in chunks}) == 10
        assert len({c.doc_id for c in chunks}) >= 4  # spread over documents, not one
        qs = questions_from_collection(col, 5, seed=1)
        assert len(qs) == 5 and all(len(q.split()) >= 4 for q in qs)
        assert qs == questions_from_collection(col, 5, seed=1)  # seeded


def test_question_from_chunk():
    assert question_from_chunk("# Vacation\n\nNew employees get **25 days** of leave. More text.") == \
        "New employees get 25 days of leave."
    assert question_from_chunk("# Title\n\nShort.") is None
    long = "Long " + " ".join(["word"] * 100)
    assert len(question_from_chunk(long).split()) == 30


def test_read_questions(tmp_path: Path):
    f = tmp_path / "q.jsonl"
    f.write_text('{"question": "How many days?", "answer": "25"}\n\n{"question": " Who? "}\n')
    assert read_questions(f) == ["How many days?", "Who?"]
    f.write_text('{"question": "ok"}\n{"q": "no"}\n')
    with pytest.raises(BenchError, match="line 2: expected an object"):
        read_questions(f)
    f.write_text("not json\n")
    with pytest.raises(BenchError, match="line 1: not JSON"):
        read_questions(f)
    f.write_text("\n")
    with pytest.raises(BenchError, match="holds no questions"):
        read_questions(f)
    with pytest.raises(BenchError, match="cannot read it"):
        read_questions(tmp_path / "missing.jsonl")


def test_percentiles_and_token_rates():
    assert percentiles([1.0, 2.0, 3.0, 4.0], 1000) == {"n": 4, "p50": 2500.0, "p95": 3850.0, "mean": 2500.0,
                                                      "max": 4000.0}
    assert percentiles([])["p50"] is None
    row = {"generated": True, "prompt_tokens": 300, "completion_tokens": 50, "generate_s": 4.0,
           "llm_first_token_s": 1.0, "prompt_n": 200, "prompt_ms": 1000.0, "predicted_n": 50, "predicted_ms": 2500.0}
    r = token_rates([row, {**row, "generated": False, "completion_tokens": 0}])
    # engine timings: 200 prompt tokens in 1 s, 50 in 2.5 s; whole: 350 tokens in 4 s
    assert r == {"prefill_tokens_per_s": 200.0, "decode_tokens_per_s": 20.0, "tokens_per_s": 87.5,
                 "completion_tokens_per_s": 12.5}
    # a host without engine timings: split at the first token (300 in 1 s; 49 after it in 3 s)
    r = token_rates([{**row, "prompt_ms": None}])
    assert r["prefill_tokens_per_s"] == 300.0 and r["decode_tokens_per_s"] == pytest.approx(16.33)


def test_shared_llm_generates_one_at_a_time():
    inner = ScriptedLLM()
    llm = SharedLLM(inner)
    threads = [threading.Thread(target=lambda: list(llm.stream([Message("user", "hi")]))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert inner.max_active == 1


def test_bench_run_with_a_scripted_llm_is_saved_and_listed(examples, tmp_path: Path):
    # each request's retrieval and verification run before and after its generation; on a busy 2-core machine
    # they can stagger 3 clients by more than a short generation lasts, so generation here lasts a second
    llm = ScriptedLLM(prompt_s=1.0)
    opt = BenchOptions(sample=6, requests=3, concurrency=3, searches=8, ingest_chunks=6, max_tokens=32)
    settings = examples.with_overrides(rerank="off")  # the reranker's time adds to the staggering
    with open_collection(settings, "ex") as col:
        r = run_bench(settings, col, llm, opt)
    assert llm.max_active >= 2  # a remote-style LLM is not serialised: the clients really overlap
    assert r["ingest"]["chunks_per_s"] > 0 and r["ingest"]["chunks"] > 0
    assert 0 < r["search"]["latency_ms"]["p50"] <= r["search"]["latency_ms"]["p95"]
    an = r["answer"]
    assert an["n"] == an["generated"] == 3 and an["decode_tokens_per_s"] == pytest.approx(200.0)
    assert all(0 < x["ttft_s"] < x["total_s"] for x in an["per_request"])
    assert all(x["retrieved"] == 18 for x in an["per_request"])  # 6 documents x at most 3 chunks each
    assert r["concurrency"]["completed"] == 3 and r["concurrency"]["requests_per_s"] > 0
    assert r["cost_inputs"]["tokens_per_s"] > 0 and r["machine"]["cores"] >= 1
    contention = r["machine"]["other_cores_busy"]
    assert set(contention) == {"ingest", "search", "answers", "concurrency"}
    assert all(v is None or 0 <= v <= r["machine"]["cores"] + 0.5 for v in contention.values())
    run_id, folder = save_bench(examples.data_dir, r, tmp_path / "copy")
    assert [s.id for s in list_runs(examples.data_dir, {"ex"})] == [run_id]
    assert (folder / "bench.png").read_bytes().startswith(b"\x89PNG")
    assert "data:image/png;base64," in (folder / "report.html").read_text()
    assert json.loads((tmp_path / "copy" / "results.json").read_text())["run_id"] == run_id


@pytest.fixture
def run(settings):
    runner = CliRunner()

    def invoke(*args: str):
        r = runner.invoke(app, ["--data-dir", str(settings.data_dir), *args], catch_exceptions=False)
        r.text = " ".join(r.output.split())  # Rich wraps long lines at the runner's terminal width
        return r

    return invoke


def test_bench_bad_input_is_one_clear_error(run, settings, tmp_path: Path):
    r = run("bench", "-c", "nope")
    assert r.exit_code == 1 and "collection 'nope': does not exist" in r.text
    with open_collection(settings, "empty", create=True):
        pass
    r = run("bench", "-c", "empty")
    assert r.exit_code == 1 and "collection 'empty': is empty" in r.text
    r = run("bench", "-c", "empty", "--concurrency", "0")
    assert r.exit_code == 1 and "concurrency=0: must be a whole number of at least 1" in r.text
    r = run("bench", "-c", "empty", "--top-k", "500")
    assert r.exit_code == 1 and "top-k=500" in r.text
    r = run("bench", "-c", "empty", "--questions", str(tmp_path / "none.jsonl"))
    assert r.exit_code == 1 and "cannot read it" in r.text
    r = run("bench", "-c", "empty", "--ingest-dir", str(tmp_path / "nowhere"))
    assert r.exit_code == 1 and "no such file or folder" in r.text
    assert not list_runs(settings.data_dir)  # nothing saved for a run that did not happen


@pytest.mark.model
@pytest.mark.slow
def test_bench_on_the_examples_with_the_real_model_then_cost(run, settings, tmp_path: Path):
    assert run("ingest", str(EXAMPLES), "--collection", "ex").exit_code == 0
    out = tmp_path / "bench"
    r = run("bench", "-c", "ex", "--requests", "2", "--concurrency", "2", "--searches", "10", "--sample", "4",
            "--ingest-chunks", "6", "--max-tokens", "16", "--out", str(out))
    assert r.exit_code == 0, r.output
    assert "sovrag bench: ex" in r.text and "ingestion" in r.text and "saved run" in r.text
    res = json.loads((out / "results.json").read_text())
    an = res["answer"]
    assert an["generated"] == 2 and res["models"]["llm"].startswith("llamacpp:qwen2.5-coder-0.5b")
    for x in an["per_request"]:
        assert 0 < x["ttft_s"] < x["total_s"] and x["completion_tokens"] > 0 and x["prompt_tokens"] > 100
        assert x["predicted_n"] and x["prompt_ms"]  # llama.cpp's own timings came through the stream
        assert x["prompt_n"] == x["prompt_tokens"]  # prompt cache off: every prompt processed in full
    assert an["decode_tokens_per_s"] > 0 and an["prefill_tokens_per_s"] > 0 and an["tokens_per_s"] > 0
    assert res["search"]["latency_ms"]["p50"] > 0 and res["ingest"]["chunks_per_s"] > 0
    assert res["concurrency"]["completed"] == 2 and res["concurrency"]["requests_per_s"] > 0
    assert res["machine"]["cpu"] and res["machine"]["ram_gib"] > 0
    (summary,) = list_runs(settings.data_dir, {"ex"})
    assert summary.kind == "bench" and summary.metrics["decode_tokens_per_s"] == an["decode_tokens_per_s"]
    assert (out / "bench.png").is_file() and (out / "report.html").is_file()

    r = run("cost", "--bench", str(out / "results.json"), "--requests-per-month", "20000",
            "--out", str(tmp_path / "cost"))
    assert r.exit_code == 0, r.output
    cost = json.loads((tmp_path / "cost" / "cost.json").read_text())
    ci = res["cost_inputs"]
    # the bench's own means are the default tokens per request, and its split throughput is used
    assert cost["workload"]["prompt_tokens"] == ci["prompt_tokens_mean"]
    expected = ci["overhead_s"] + ci["prompt_tokens_mean"] / ci["prefill_tokens_per_s"] + \
        ci["completion_tokens_mean"] / ci["decode_tokens_per_s"]
    assert cost["self_hosted"]["seconds_per_request"] == pytest.approx(expected)


def test_question_skips_a_sentence_tail_left_by_chunk_overlap():
    assert question_from_chunk("centimetres short of a station. The NW-7 carries up to 12 kg of payload.") == \
        "The NW-7 carries up to 12 kg of payload."
