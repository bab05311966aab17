"""`sovrag eval` and the hallucination check: dataset reading, metrics per sample, judge failures, reports."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sovrag.answer import AnswerOptions
from sovrag.cli import app
from sovrag.collection import open_collection
from sovrag.config import Settings
from sovrag.evaluate.dataset import DatasetError, read_dataset
from sovrag.evaluate.faithcheck import check_support, lexical_check
from sovrag.evaluate.judge import Judge, _check
from sovrag.evaluate.report import save_run
from sovrag.evaluate.run import EvalOptions, evaluate, retrieval_ranking
from sovrag.generate import create_llm
from sovrag.generate.openai_compat import OpenAICompatLLM
from sovrag.ingest.sync import ingest
from sovrag.reports import list_runs
from sovrag.types import Chunk, ScoredChunk

from .conftest import MODELS_DIR

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "docs"
DATASET = ROOT / "examples" / "eval.jsonl"


# ------------------------------------------------------------------ dataset
def test_malformed_lines_are_reported_with_line_numbers_and_the_rest_kept(tmp_path: Path) -> None:
    f = tmp_path / "d.jsonl"
    f.write_text("\n".join([
        '{"question": "How many vacation days?", "answer": "25", "relevant_sources": "handbook.md", "tag": "hr"}',
        '{"question": "broken',
        '["not", "an", "object"]',
        '{"reference": "no question here"}',
        "",
        '{"question": "Hotel limit?", "reference": 180}',
        '{"question": "Hotel limit?", "relevant": [1, 2]}',
        '{"user_input": "Warranty?", "ground_truth": "3 years", "reference_contexts": ["3-year warranty"]}',
    ]), encoding="utf-8")
    ds = read_dataset(f)
    assert [s.line for s in ds.samples] == [1, 8]
    first, last = ds.samples
    assert first.reference == "25" and first.relevant == ("handbook.md",) and first.extra == {"tag": "hr"}
    assert last.question == "Warranty?" and last.reference == "3 years"
    assert last.reference_contexts == ("3-year warranty",)
    problems = dict(ds.errors)
    assert "not valid JSON" in problems[2] and "expected a JSON object" in problems[3]
    assert "'question' is missing" in problems[4] and "'reference' must be a string" in problems[6]
    assert "'relevant' must be a string or a list of strings" in problems[7]
    assert [s.line for s in read_dataset(f, limit=1).samples] == [1]


def test_unreadable_datasets_say_why(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="not found"):
        read_dataset(tmp_path / "missing.jsonl")
    (tmp_path / "bin.jsonl").write_bytes(b"\xff\xfe\x00\x01")
    with pytest.raises(DatasetError, match="not UTF-8"):
        read_dataset(tmp_path / "bin.jsonl")
    (tmp_path / "bad.jsonl").write_text('{"q": 1}\n')
    with pytest.raises(DatasetError, match="no valid question line; first problem: line 1"):
        read_dataset(tmp_path / "bad.jsonl")


# ------------------------------------------------------------------ retrieval relevance
def _hit(rank: int, source: str, text: str, doc: str | None = None) -> ScoredChunk:
    return ScoredChunk(Chunk(f"c{rank}", doc or source, text, source, "", 0), 1.0 / rank, rank)


def test_retrieval_ranking_by_document_name_or_by_reference_context() -> None:
    from sovrag.evaluate.dataset import Sample
    from sovrag.evaluate.ir import ndcg_at_k, recall_at_k

    hits = [_hit(1, "/d/faq.html", "payload 12 kg"), _hit(2, "/d/handbook.md", "New employees get 25 vacation days"),
            _hit(3, "/d/handbook.md", "carry over five days")]
    ranked, relevant = retrieval_ranking(hits, Sample(1, "1", "q", relevant=("handbook.md",)))
    assert ranked == ["/d/faq.html", "handbook.md", "handbook.md"] and relevant == {"handbook.md"}
    assert recall_at_k(ranked, relevant, 10) == 1.0 and ndcg_at_k(ranked, relevant, 10) == pytest.approx(0.6309, 1e-3)
    ctx = Sample(1, "1", "q", reference_contexts=("New employees get 25 vacation days per year.", "Lyon office"))
    ranked, relevant = retrieval_ranking(hits, ctx)
    assert ranked[1] == "context:0" and relevant == {"context:0", "context:1"}
    assert recall_at_k(ranked, relevant, 10) == 0.5
    assert retrieval_ranking(hits, Sample(1, "1", "q")) is None


# ------------------------------------------------------------------ hallucination check
def test_lexical_check_finds_words_and_numbers_the_passage_lacks() -> None:
    passage = "The Timbarra Gold Mine is near the Bruxner Highway. It produced 4,000 ounces of gold in 1998."
    assert check_support(passage, "Bruxner Highway", "lexical").supported
    # numbers compared as written, sans commas
    assert check_support(passage, "It produced 4000 ounces.", "lexical").supported
    bad = check_support(passage, "The mine is at the intersection of the Pacific Highway, opened in 1975.",
                        "lexical")
    assert not bad.supported and "pacif" in bad.unsupported_terms and bad.unsupported_numbers == ("1975",)
    assert 0 < bad.coverage < 1 and "not in the passage" in bad.reason
    yes = lexical_check(passage, "Yes")
    assert yes.supported and "nothing to check" in yes.method
    assert not check_support(passage, "  ").supported
    with pytest.raises(ValueError, match="needs a judge"):
        check_support(passage, "Yes", method="combined")
    with pytest.raises(ValueError, match="method 'magic'"):
        check_support(passage, "x", method="magic")  # type: ignore[arg-type]


def test_judge_schema_check_refuses_what_a_host_ignoring_the_schema_sends() -> None:
    schema = {"type": "object", "required": ["v"], "properties": {"v": {"type": "array", "minItems": 2, "maxItems": 2,
                                                                        "items": {"type": "integer", "enum": [0, 1]}}}}
    _check({"v": [0, 1]}, schema)
    for bad, msg in (({"v": [0]}, "expected 2..2 items"), ({"v": [0, 2]}, "expected one of"), ({}, "missing key"),
                     ({"v": [True, 0]}, "expected one of"), ([], "expected an object")):
        with pytest.raises((ValueError, TypeError), match=msg):
            _check(bad, schema)


# ------------------------------------------------------------------ a real evaluation
@pytest.fixture(scope="module")
def examples(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    data = tmp_path_factory.mktemp("eval") / "data"
    data.mkdir()
    (data / "models").symlink_to(MODELS_DIR, target_is_directory=True)
    settings = Settings(data_dir=data, llm_context=2048)
    with open_collection(settings, "examples", create=True) as col:
        assert not ingest(settings, col, [EXAMPLES]).failed
    yield settings


@pytest.mark.model
@pytest.mark.slow
def test_eval_scores_every_metric_with_a_local_judge_and_writes_the_report(examples: Settings) -> None:
    ds = read_dataset(DATASET, limit=1)
    llm = create_llm(examples)
    with open_collection(examples, "examples") as col:
        result = evaluate(col, llm, Judge(llm), ds.samples, EvalOptions(answer=AnswerOptions(max_tokens=64)),
                          dataset=str(DATASET))
    (s,) = result.samples
    assert not s.failed and not s.skipped, (s.failed, s.skipped)
    assert "25" in s.answer and s.scores["exact_match"] in (0.0, 1.0) and s.scores["token_f1"] > 0.5
    assert s.scores["hit_rate@10"] == 1.0 and s.scores["mrr@10"] == 1.0  # handbook.md ranked first
    for m in ("faithfulness", "answer_relevancy", "context_precision", "context_recall"):
        assert 0.0 <= s.scores[m] <= 1.0, m
    assert len(s.verdicts["faithfulness"]) == len(s.verdicts["statements"]) >= 1
    assert len(s.verdicts["context_precision"]) == len(s.contexts) and len(s.verdicts["answer_relevancy"]) == 3
    assert s.judge_calls >= 6 and s.judge_seconds > 0 and result.judge_seconds_per_sample == s.judge_seconds
    folder = save_run(result, examples.data_dir)
    html = (folder / "report.html").read_text()
    assert "data:image/png;base64," in html and "How many vacation days" in html and "judge verdicts" in html
    data = json.loads((folder / "results.json").read_text())
    assert data["summary"]["faithfulness"]["scored"] == 1 and data["machine"]["cores"]
    (run,) = [r for r in list_runs(examples.data_dir) if r.id == folder.name]
    assert run.kind == "eval" and run.collection == "examples" and run.metrics["ndcg@10"] == 1.0


@pytest.mark.model
def test_a_judge_cut_short_is_reported_as_failed_not_nan(examples: Settings) -> None:
    ds = read_dataset(DATASET, limit=1)
    llm = create_llm(examples)
    judge = Judge(llm, max_retries=1, max_tokens=3)  # every reply is cut mid-JSON, even the retry's 6 tokens
    opts = EvalOptions(metrics=("faithfulness", "context_recall", "token_f1"), answer=AnswerOptions(max_tokens=48))
    with open_collection(examples, "examples") as col:
        result = evaluate(col, llm, judge, ds.samples, opts)
    (s,) = result.samples
    assert set(s.failed) == {"faithfulness", "context_recall"} and "token_f1" in s.scores
    assert "cut off at max_tokens" in s.failed["faithfulness"] and "after 2 attempts" in s.failed["faithfulness"]
    assert result.summary["faithfulness"].failed == 1 and result.summary["faithfulness"].mean is None
    assert judge.stats.retries == 2


@pytest.fixture
def hung_host() -> Iterator[str]:
    class H(BaseHTTPRequestHandler):
        def log_message(self, *a: object) -> None:
            pass

        def do_POST(self) -> None:
            time.sleep(3)
            self.send_response(500)
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


def test_a_judge_that_times_out_fails_that_metric_only(hung_host: str) -> None:
    judge = Judge(OpenAICompatLLM(hung_host, "judge", timeout=0.5, retries=0), max_retries=0)
    from sovrag.evaluate.judge import JudgeError

    t0 = time.monotonic()
    with pytest.raises(JudgeError, match="statements: the judge failed"):
        judge.statements("q", "a")
    assert time.monotonic() - t0 < 3


@pytest.mark.model
def test_eval_cli_goes_on_past_bad_lines_and_exits_3(examples: Settings, tmp_path: Path) -> None:
    f = tmp_path / "d.jsonl"
    lines = DATASET.read_text().splitlines()
    f.write_text("\n".join([lines[1], "{oops", lines[3]]) + "\n")
    r = CliRunner().invoke(app, ["--data-dir", str(examples.data_dir), "eval", str(f), "-c", "examples",
                                 "--judge", "none", "--max-tokens", "48", "--out", str(tmp_path / "out")])
    assert r.exit_code == 3, r.output
    # Rich wraps at a width and place that depend on the terminal and the temporary path: compare content only
    assert "".join(f"{f}:2: skipped: not valid JSON".split()) in "".join(r.output.split())
    assert "hit_rate@10" in r.output and (tmp_path / "out" / "report.html").is_file()
    data = json.loads((tmp_path / "out" / "results.json").read_text())
    assert len(data["samples"]) == 2 and data["dataset_errors"][0][0] == 2
    assert data["summary"]["faithfulness"]["skipped"] == 2 and data["summary"]["hit_rate@10"]["mean"] == 1.0
    r = CliRunner().invoke(app, ["--data-dir", str(examples.data_dir), "eval", str(f), "-c", "nope"])
    assert r.exit_code != 0 and "nope" in r.output
    r = CliRunner().invoke(app, ["--data-dir", str(examples.data_dir), "eval", str(f), "-c", "examples",
                                 "--metrics", "faithfulness,bleu"])
    assert r.exit_code != 0 and "unknown ['bleu']" in r.output


def test_check_cli_exit_status_says_supported_or_not(tmp_path: Path) -> None:
    p = tmp_path / "p.txt"
    p.write_text("New employees get 25 vacation days per year.")
    runner = CliRunner()
    ok = runner.invoke(app, ["check", "--passage", str(p), "--answer", "25 vacation days"])
    bad = runner.invoke(app, ["check", "--passage", str(p), "--answer", "30 vacation days", "--json"])
    assert ok.exit_code == 0 and "supported" in ok.output
    assert bad.exit_code == 1 and json.loads(bad.output)["unsupported_numbers"] == ["30"]
    assert runner.invoke(app, ["check", "--passage", str(tmp_path / "none"), "--answer", "x"]).exit_code == 2
