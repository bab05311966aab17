"""`sovrag tune`: the training set from a collection, LoRA on CPU, the GGUF adapter in llama.cpp, the registry.

The model-backed tests run the whole path on the bundled SmolLM2-135M (questions written by the bundled 0.5B
model): generate, train (interrupted and resumed), convert, register, load in llama.cpp, evaluate base vs tuned.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from sovrag.config import Settings
from sovrag.errors import ConfigError, ModelError, SovragError
from sovrag.generate import Message
from sovrag.models import adapters
from sovrag.train.gguf_adapter import _permute, write_adapter
from sovrag.train.lora import Example, LoraSettings, need_train_extra
from sovrag.train.tune import TuneRequest, base_spec
from sovrag.train.tune_data import Item, heldout_of, make_item, parse_generated, withhold
from sovrag.types import Chunk, Context, Evidence, Source

ROOT = Path(__file__).resolve().parent.parent
CHUNK = Chunk(id="c1", doc_id="d1", source="handbook.md", title="Handbook", index=0,
              text="New employees get 25 vacation days per year. After five years of service with Northwind "
                   "Robotics, the allowance rises to 30 vacation days per year. Unused days expire in March.")


# ------------------------------------------------------------------ the training set


def test_generated_questions_are_read_from_json_or_plain_lines():
    assert parse_generated('{"question": "How many days?", "answer": "25 days"}') == ("How many days?", "25 days")
    assert parse_generated("Question: How many days?\nAnswer: 25 days") == ("How many days?", "25 days")
    assert parse_generated("I cannot help with that.") is None
    assert parse_generated('{"question": "", "answer": "x"}') is None


def test_an_item_must_be_answered_by_its_chunk_in_sovrags_format():
    item, why = make_item(CHUNK, '{"question": "How many vacation days do new employees get?", '
                                 '"answer": "25 vacation days"}', None)
    assert why == "" and item is not None
    assert item.evidence == "New employees get 25 vacation days per year."
    assert item.target() == '25 vacation days. The documents say: "New employees get 25 vacation days per year."'
    # an answer that restates the whole sentence is the sentence, not said twice
    whole = Item("c1", "x", "q?", "Unused days expire in March", "Unused days expire in March.")
    assert whole.target() == "Unused days expire in March."
    rejected = {
        '{"question": "How many vacation days do new employees get?", "answer": "40 days of paid leave"}':
            "answer not in chunk",
        '{"question": "Do new employees get 25 vacation days?", "answer": "25 vacation days"}':
            "question gives answer away",
        '{"question": "Vacation days for new employees", "answer": "25"}': "not a question",
        '{"question": "What happens?", "answer": "' + " ".join(["word"] * 30) + '"}': "answer too long",
        "nonsense": "unparsable",
    }
    for reply, reason in rejected.items():
        assert make_item(CHUNK, reply, None) == (None, reason)


def test_the_verifier_rejects_an_answer_its_chunk_does_not_support():
    from sovrag.verifier import load

    v = load()
    ok, _ = make_item(CHUNK, '{"question": "How many vacation days do new employees get?", "answer": "25"}', v)
    assert ok is not None
    bad, why = make_item(CHUNK, '{"question": "When do new employees get their vacation days?", '
                                '"answer": "March"}', v)
    assert bad is None and why == "not grounded (verifier)"


def test_the_held_out_split_is_by_chunk_and_seeded():
    ids = [f"chunk-{i}" for i in range(400)]
    held = [c for c in ids if heldout_of(c, 13, 0.2)]
    assert 50 < len(held) < 110
    assert held == [c for c in ids if heldout_of(c, 13, 0.2)]  # the same split every time
    assert held != [c for c in ids if heldout_of(c, 14, 0.2)]  # another seed, another split


def _context(texts: list[str]) -> Context:
    chunks = [Chunk(id=f"c{i}", doc_id=f"d{i}", source=f"doc{i}.md", title="", index=0, text=t)
              for i, t in enumerate(texts, 1)]
    sources = [Source(i, c, c.text, 0.9 - i / 10) for i, c in enumerate(chunks, 1)]
    evidence = [Evidence(i, [c.text], np.ones((1, 4), dtype=np.float32), c.text) for i, c in enumerate(chunks, 1)]
    from sovrag.types import ScoredChunk

    return Context("q?", "q?", np.ones(4, dtype=np.float32), [ScoredChunk(c, 1.0, i) for i, c in enumerate(chunks)],
                   sources, evidence, 0.8, 1.0, answerable=0.9)


def test_withholding_a_chunk_renumbers_the_rest():
    ctx = _context(["alpha", "beta", "gamma"])
    w = withhold(ctx, "c2")
    assert [s.number for s in w.sources] == [1, 2] and [s.text for s in w.sources] == ["alpha", "gamma"]
    assert [e.number for e in w.evidence] == [1, 2] and [e.text for e in w.evidence] == ["alpha", "gamma"]
    assert [h.chunk.id for h in w.hits] == ["c1", "c3"]
    assert w.answerable is None and w.relevance == pytest.approx(0.8)
    assert len(ctx.sources) == 3  # the original is untouched


# ------------------------------------------------------------------ adapters: the file and the registry


def _lora(n_layers: int = 2, hidden: int = 8, rank: int = 2) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    out = {}
    for layer in range(n_layers):
        for mod in ("self_attn.q_proj", "self_attn.k_proj", "mlp.down_proj"):
            key = f"base_model.model.model.layers.{layer}.{mod}"
            out[f"{key}.lora_A.default.weight"] = rng.normal(size=(rank, hidden)).astype(np.float32)
            out[f"{key}.lora_B.default.weight"] = rng.normal(size=(hidden, rank)).astype(np.float32)
    return out


def _write(path: Path, arch: str = "qwen2", base_sha: str = "a" * 64) -> Path:
    write_adapter(_lora(), path, arch=arch, n_layers=2, n_head=2, n_head_kv=2, alpha=16.0, base_sha256=base_sha,
                  base_name="base-model")
    return path


def test_the_adapter_file_is_llama_cpps_lora_format(tmp_path):
    import gguf

    lora = _lora()
    path = _write(tmp_path / "a.gguf")
    meta = adapters.gguf_metadata(path)
    assert meta["general.type"] == "adapter" and meta["adapter.type"] == "lora"
    assert meta["adapter.lora.alpha"] == 16.0 and meta["general.architecture"] == "qwen2"
    assert meta[adapters.BASE_SHA256_KEY] == "a" * 64
    tensors = {t.name: t for t in gguf.GGUFReader(str(path)).tensors}
    assert len(tensors) == 12
    a = tensors["blk.1.attn_q.weight.lora_a"]
    np.testing.assert_array_equal(np.asarray(a.data).reshape(2, 8),
                                  lora["base_model.model.model.layers.1.self_attn.q_proj.lora_A.default.weight"])
    assert "blk.0.ffn_down.weight.lora_b" in tensors
    # llama: q/k rows are in the GGUF's rotary order, the permutation llama.cpp's converter applies
    llama = _write(tmp_path / "l.gguf", arch="llama")
    b = {t.name: t for t in gguf.GGUFReader(str(llama)).tensors}["blk.0.attn_q.weight.lora_b"]
    src = lora["base_model.model.model.layers.0.self_attn.q_proj.lora_B.default.weight"]
    np.testing.assert_array_equal(np.asarray(b.data).reshape(8, 2), _permute(src, 2))
    assert not np.array_equal(_permute(src, 2), src)


def _record(name: str, path: Path, base_sha: str = "a" * 64) -> adapters.AdapterRecord:
    from sovrag.models.registry import sha256

    return adapters.AdapterRecord(name=name, base="base-model", base_sha256=base_sha, sha256=sha256(path),
                                  size=path.stat().st_size, rank=2, alpha=16.0, created="2026-12-04T00:00:00Z")


def test_registered_adapters_are_checked_before_llama_cpp_sees_them(tmp_path):
    data = tmp_path / "data"
    src = _write(tmp_path / "a.gguf")
    path = adapters.register(data, _record("mine", src), src)
    assert [r.name for r, _ in adapters.list_adapters(data)] == ["sovrag-rag", "mine"]  # shipped ones first
    assert adapters.status(*adapters.find(data, "mine")) == "ready"
    assert adapters.resolve(data, "mine", "a" * 64, "base-model") == path
    with pytest.raises(ModelError, match=r"trained for base-model .*not for other-model"):
        adapters.resolve(data, "mine", "b" * 64, "other-model")
    with pytest.raises(ModelError, match="not registered.*adapters: sovrag-rag, mine"):
        adapters.resolve(data, "yours", "a" * 64, "base-model")
    with pytest.raises(ModelError, match="adapter name"):
        adapters.check_name("Bad Name/..")
    # one flipped byte: refused by its recorded sha256, never handed to llama.cpp
    raw = bytearray(path.read_bytes())
    raw[-5] ^= 0xFF
    path.write_bytes(bytes(raw))
    assert adapters.status(*adapters.find(data, "mine")) == "corrupt"
    with pytest.raises(ModelError, match="damaged"):
        adapters.resolve(data, "mine", "a" * 64, "base-model")
    # re-registering replaces it whole
    src2 = _write(tmp_path / "b.gguf")
    adapters.register(data, _record("mine", src2), src2)
    assert adapters.status(*adapters.find(data, "mine")) == "ready"


def test_a_file_that_is_not_a_lora_adapter_is_refused(tmp_path):
    import gguf

    not_gguf = tmp_path / "x.gguf"
    not_gguf.write_bytes(b"PK\x03\x04 not a gguf")
    with pytest.raises(ModelError, match="not a GGUF file"):
        adapters.resolve(tmp_path, str(not_gguf), "a" * 64, "base")
    model = tmp_path / "model.gguf"
    w = gguf.GGUFWriter(str(model), "qwen2")
    w.add_tensor("token_embd.weight", np.zeros((4, 4), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    with pytest.raises(ModelError, match="not a LoRA adapter"):
        adapters.resolve(tmp_path, str(model), "a" * 64, "base")
    with pytest.raises(ModelError, match="file not found"):
        adapters.resolve(tmp_path, str(tmp_path / "missing.gguf"), "a" * 64, "base")


def test_an_adapter_on_a_host_or_a_tuned_base_is_refused(tmp_path):
    from sovrag.generate import create_llm

    s = Settings(data_dir=tmp_path)
    with pytest.raises(ConfigError, match="llama.cpp models only"):
        create_llm(s, "openai://localhost:9/v1?model=m+lora:x")
    with pytest.raises(ConfigError, match="OpenAI-compatible host cannot be tuned"):
        base_spec(s, "openai://localhost:9/v1?model=m")
    with pytest.raises(ConfigError, match="base model alone"):
        base_spec(s, "fast+lora:x")
    assert base_spec(s, "quality") == "llamacpp:qwen2.5-coder-1.5b-instruct-q4_k_m"
    assert base_spec(s, "smollm2-135m") == "llamacpp:smollm2-135m"


def test_bad_training_settings_are_named():
    for kwargs, match in (({"rank": 0}, "rank 0"), ({"lr": 3.0}, "lr 3.0"), ({"steps": -1}, "steps -1"),
                          ({"targets": ("q_proj", "lm_head")}, "lm_head")):
        with pytest.raises(SovragError, match=match):
            LoraSettings(**kwargs).check()


def test_without_the_train_extra_the_error_gives_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "peft", None)  # what `import peft` meets when it is not installed
    with pytest.raises(SovragError, match=r"pip install 'sovrag\[train\]'"):
        need_train_extra()


def test_a_collection_too_small_to_tune_on_says_how_many_chunks_it_needs(settings, tmp_path):
    from typer.testing import CliRunner

    from sovrag.cli import app

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "note.md").write_text("# Note\n\nNew employees get 25 vacation days per year.\n")
    runner = CliRunner()
    base = ["--data-dir", str(settings.data_dir)]
    assert runner.invoke(app, [*base, "ingest", str(docs), "-c", "tiny"]).exit_code == 0

    def tune(*args: str) -> str:
        r = runner.invoke(app, [*base, "tune", "-c", "tiny", *args])
        assert r.exit_code == 1
        return " ".join(r.output.split())

    assert "none.gguf: file not found" in tune("--base", str(tmp_path / "none.gguf"))
    assert "adapter name 'Bad Name'" in tune("--out", "Bad Name")
    smol = settings.models_dir / "smollm2-135m-instruct-q4_1" / "model.gguf"
    if smol.is_file():
        assert "'tiny': 1 chunks; tuning needs at least 12" in tune("--base", "smollm2-135m")


# ------------------------------------------------------------------ the whole path on real models


@pytest.fixture(scope="module")
def smol(tmp_path_factory) -> Settings:
    from sovrag.models import pull
    from tests.conftest import MODELS_DIR

    pull(MODELS_DIR, "smollm2-135m-instruct-q4_1")
    data = tmp_path_factory.mktemp("tune") / "data"
    data.mkdir()
    (data / "models").symlink_to(MODELS_DIR, target_is_directory=True)
    return Settings(data_dir=data)


@pytest.mark.slow
@pytest.mark.model
def test_a_trained_adapter_changes_what_llama_cpp_says(smol, tmp_path):
    """Overfit one answer with torch, convert, and llama.cpp (on the unchanged Q4_1 model) says exactly that answer:
    the tensor names, the q/k permutation and the scale are right, or it would not."""
    from sovrag.generate import GenerationParams, create_llm
    from sovrag.generate.llamacpp import load_llamacpp
    from sovrag.train.lora import train_lora

    base = smol.models_dir / "smollm2-135m-instruct-q4_1" / "model.gguf"
    messages = (Message("system", "You answer questions."), Message("user", "What colour is the sky?"))
    target = "Bananas are purple zebras."
    cfg = LoraSettings(steps=30, batch=1, lr=1e-3, warmup=1, checkpoint_every=100)
    result = train_lora(base, [Example(messages, target)], cfg, tmp_path / "work", "x" * 64)
    assert result.final_loss < 0.05
    src = write_adapter(result.lora, tmp_path / "a.gguf", arch=result.arch, n_layers=result.n_layers,
                        n_head=result.n_head, n_head_kv=result.n_head_kv, alpha=cfg.alpha,
                        base_sha256="x" * 64, base_name="smollm2") and tmp_path / "a.gguf"
    params = GenerationParams(max_tokens=20, temperature=0.0)
    plain = create_llm(smol, "llamacpp:smollm2-135m").chat(list(messages), params).text
    tuned = load_llamacpp(base, "tuned", context=1024, lora=((str(src), 1.0),)).chat(list(messages), params).text
    assert tuned.strip() == target
    assert plain.strip() != target


@pytest.mark.slow
@pytest.mark.model
def test_tune_end_to_end_interrupted_resumed_registered_and_measured(smol):
    from typer.testing import CliRunner

    from sovrag.cli import app
    from sovrag.generate import create_llm
    from sovrag.train.lora import Interrupted
    from sovrag.train.tune import tune

    runner = CliRunner()
    r = runner.invoke(app, ["--data-dir", str(smol.data_dir), "ingest", str(ROOT / "examples" / "docs"),
                            "-c", "examples"])
    assert r.exit_code == 0, r.output
    req = TuneRequest(collection="examples", name="smoke", base="smollm2-135m", generator="fast",
                      lora=LoraSettings(steps=4, batch=1, lr=1e-3, checkpoint_every=1), max_chunks=48,
                      stop_after=2)
    with pytest.raises(Interrupted, match="step 2 of 4"):
        tune(smol, req)
    work = adapters.adapters_dir(smol.data_dir) / ".work" / "smoke"
    generated = json.loads((work / "data.json").read_text())
    assert generated["summary"]["train_examples"] > 0 and (work / "checkpoint.pt").is_file()
    seen: list[tuple[str, int, int]] = []
    req.stop_after = 0
    result = tune(smol, req, lambda name, done, total, info: seen.append((name, done, total)))
    # resumed: the questions were not written again, and training went on from step 2
    assert not any(name == "data" for name, *_ in seen)
    assert [d for name, d, _ in seen if name == "train"] == [3, 4]
    assert result.training["resumed_from"] == 2 and not work.exists()
    assert result.data == generated["summary"]
    # registered, listed, and loadable only on its own base
    assert result.record.base == "smollm2-135m-instruct-q4_1" and result.adapter.is_file()
    listing = runner.invoke(app, ["--data-dir", str(smol.data_dir), "models", "list"])
    assert "smoke" in listing.output and result.record.sha256[:12] in listing.output
    with pytest.raises(ModelError, match="trained for smollm2-135m-instruct-q4_1"):
        create_llm(smol, "llamacpp:qwen2.5-0.5b+lora:smoke")
    # measured base vs tuned on the held-out questions, with a saved report
    assert set(result.evaluation) == {"base", "tuned"}
    for m in ("f1", "contains_answer", "abstain_answerable", "seconds_per_answer"):
        assert result.evaluation["tuned"][m] is not None
    assert result.evaluation["tuned"]["questions"] == result.data["heldout_questions"]
    html = (result.report / "report.html").read_text()
    assert "Base vs tuned" in html and "data:image/png;base64," in html
    summary = json.loads((result.report / "summary.json").read_text())
    assert summary["kind"] == "tune" and summary["collection"]
    # and sovrag ask answers with it
    r = runner.invoke(app, ["--data-dir", str(smol.data_dir), "ask", "How many vacation days do new employees get?",
                            "-c", "examples", "--llm", "llamacpp:smollm2-135m+lora:smoke"])
    assert r.exit_code == 0, r.output


def test_the_server_names_an_adapted_model_by_its_base_and_adapter():
    from sovrag.serve.app import _check_llm_spec
    from sovrag.serve.routes.openai import spec_names

    assert spec_names("fast+lora:team")[0] == "qwen2.5-coder-0.5b-instruct-q4_k_m+lora:team"
    assert spec_names("llamacpp:/m/base.gguf+lora:/a/team.gguf")[0] == "base+lora:team"
    _check_llm_spec("llamacpp:qwen2.5-0.5b+lora:team")  # the base is checked; the adapter when loaded
    with pytest.raises(ConfigError, match="not a bundled model"):
        _check_llm_spec("llamacpp:no-such-model+lora:team")


def test_the_shipped_adapters_data_is_public_train_split_and_in_sovrags_format():
    from sovrag.answer.prompt import ABSTAIN_TEXT
    from sovrag.train.lora_public import examples
    from sovrag.train.sources import split_of

    cache = Path.home() / ".cache" / "sovrag-train"
    ex = examples(cache, 6, seed=13)
    assert sorted({e.kind for e in ex}) == ["boolq", "halueval", "unanswerable"]
    assert ex == examples(cache, 6, seed=13)  # seeded
    assert sum(e.kind == "unanswerable" for e in ex) == 4  # a quarter of 16 by default
    fewer = examples(cache, 6, seed=13, unanswerable_share=0.1)
    assert sum(e.kind == "unanswerable" for e in fewer) == 1 and len(fewer) == 13
    answerable = sorted(e.answer for e in ex if e.kind != "unanswerable")
    assert sorted(e.answer for e in fewer if e.kind != "unanswerable") == answerable  # the same answerable items
    for e in ex:
        prompt = e.messages[-1].content
        passages = [p.split("\n", 1)[1] for p in prompt.split("Documents:\n\n", 1)[1].split("\n\nQuestion:")[0]
                    .split("\n\n[")]
        assert all(split_of(p) == "train" for p in passages), "only train-split documents"
        if e.kind == "unanswerable":
            assert e.answer == ABSTAIN_TEXT
        elif e.kind == "boolq":
            assert e.answer.split(".")[0] in ("Yes", "No") and 'The documents say: "' in e.answer
        else:
            quoted = e.answer.split('The documents say: "', 1)[-1].rstrip('"')
            assert quoted in prompt


def test_an_adapter_that_measures_worse_is_called_out():
    from sovrag.cli.tune import verdict

    base = {"contains_answer": 0.60, "f1": 0.16, "abstain_answerable": 0.0}
    assert verdict({"base": base, "tuned": {"contains_answer": 0.44, "f1": 0.07, "abstain_answerable": 0.48}}) == (
        "contains_answer 0.60 -> 0.44, f1 0.16 -> 0.07, abstain_answerable 0.00 -> 0.48")
    assert verdict({"base": base, "tuned": {"contains_answer": 0.62, "f1": 0.15, "abstain_answerable": 0.04}}) == ""


def test_the_shipped_adapter_is_pinned_and_intact():
    (rec, path), = [(r, p) for r, p in adapters.list_adapters(Path("/nonexistent")) if r.name == "sovrag-rag"]
    assert rec.shipped and rec.base == "qwen2.5-coder-0.5b-instruct-q4_k_m"
    assert rec.sha256 == adapters.SHIPPED_SHA256["sovrag-rag"] and adapters.status(rec, path) == "ready"
    assert adapters.gguf_metadata(path)[adapters.BASE_SHA256_KEY] == rec.base_sha256


@pytest.mark.slow
@pytest.mark.model
def test_the_shipped_adapter_answers_on_its_base_only(settings):
    from sovrag.generate import GenerationParams, create_llm

    llm = create_llm(settings, "fast+lora:sovrag-rag")
    assert llm.name == "llamacpp:qwen2.5-coder-0.5b-instruct-q4_k_m+lora:sovrag-rag"
    messages = [Message("system", "You are a precise assistant that answers questions from the given documents only."),
                Message("user", "Question: How many vacation days do new employees get?\n\nDocuments:\n\n[1] "
                                "(handbook.md)\nNew employees get 25 vacation days per year.\n\nQuestion: How many "
                                "vacation days do new employees get?\nWrite a short answer based on the documents.")]
    tuned = llm.chat(messages, GenerationParams(max_tokens=48)).text
    plain = create_llm(settings, "fast").chat(messages, GenerationParams(max_tokens=48)).text
    assert "25" in tuned and tuned != plain
    from sovrag.models import pull
    from tests.conftest import MODELS_DIR

    pull(MODELS_DIR, "smollm2-135m-instruct-q4_1")
    with pytest.raises(ModelError, match="trained for qwen2.5-coder-0.5b"):
        create_llm(settings, "llamacpp:smollm2-135m+lora:sovrag-rag")
