"""sovrag.train: document-disjoint splits, synthetic claims, and a real (short) fine-tune -> ONNX -> onnxruntime."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from sovrag.train import perturb
from sovrag.train.sources import split_of

CACHE = Path.home() / ".cache" / "sovrag-train"


def test_split_is_a_function_of_the_document():
    docs = [f"Document number {i} about topic {i % 7}." for i in range(5000)]
    splits = [split_of(d) for d in docs]
    assert splits == [split_of(d) for d in docs]
    assert split_of("  Document number 3 about topic 3. ") == split_of("Document number 3 about topic 3.")
    share = {s: splits.count(s) / len(splits) for s in ("train", "dev", "test")}
    assert 0.77 < share["train"] < 0.83 and 0.08 < share["dev"] < 0.12 and 0.08 < share["test"] < 0.12


def test_perturbations_change_what_they_claim_to():
    rng = random.Random(1)
    s = "The Oberoi Group, founded in 1934 by Mohan Singh Oberoi, runs 31 hotels in India."
    changed = perturb.change_number(s, rng)
    assert changed != s and ("1934" not in changed or "31" not in changed)
    assert perturb.negate("Unused days are carried over.") == "Unused days are not carried over."
    assert perturb.negate("Unused days are not carried over.") == "Unused days are carried over."
    assert perturb.swap_names("In the final, Paris beat Lyon.") == "In the final, Lyon beat Paris."
    assert perturb.drop_hedge("Most employees may work remotely.") == "employees may work remotely."
    assert perturb.flip_word("Payment is due before the meeting.", rng) == "Payment is due after the meeting."


def test_synthetic_claims_are_deterministic_and_labelled():
    sents = ["The Oberoi Group, founded in 1934 by Mohan Singh Oberoi, runs 31 hotels in India.",
             "Its head office (a listed building) is in Delhi, where the company was registered.",
             "The group is not listed on the London Stock Exchange."]
    others = ["The Taj Group is headquartered in Mumbai and runs 80 hotels."]
    a = perturb.make_claims(sents, others, ["Mumbai", "Ratan Tata"], random.Random(5), n=40)
    b = perturb.make_claims(sents, others, ["Mumbai", "Ratan Tata"], random.Random(5), n=40)
    assert a == b and len(a) >= 20
    assert {c.label for c in a} >= {perturb.SUPPORTED, perturb.CONTRADICTED, perturb.NEI}
    for c in a:
        if c.kind == "removed":
            assert c.claim not in c.premise
        if c.label == perturb.SUPPORTED and c.kind == "verbatim":
            assert c.claim in c.premise


@pytest.mark.slow
def test_fine_tune_resume_export_and_run_on_onnxruntime(tmp_path):
    pytest.importorskip("torch")
    from tokenizers import Tokenizer

    from sovrag.train.crossencoder import TrainConfig, export_onnx, train
    from sovrag.train.verifier import base_model
    from sovrag.verifier import Verifier

    base = base_model(CACHE)
    tok = Tokenizer.from_file(str(base / "tokenizer.json"))
    rng = random.Random(3)
    pairs, labels = [], []
    for i in range(48):
        n = rng.randint(2, 40)
        premise = f"The warehouse in Leeds stores {n} pallets of paper."
        pairs.append((premise, f"The warehouse in Leeds stores {n if i % 2 else n + 7} pallets of paper."))
        labels.append(0 if i % 2 else (1 if i % 4 == 0 else -1))

    def cfg(out: Path, **kw) -> TrainConfig:
        return TrainConfig(base=str(base), out=str(out), batch_size=8, max_tokens=64, epochs=1.0, seed=5,
                           threads=1, checkpoint_every=100, **kw)

    logs: list[str] = []
    assert train(cfg(tmp_path / "a", stop_after=3), pairs, labels, tok, logs.append) is None
    assert (tmp_path / "a" / "checkpoint.pt").is_file()
    resumed = train(cfg(tmp_path / "a"), pairs, labels, tok, logs.append)
    assert any("resuming at step 3/6" in line for line in logs)
    straight = train(cfg(tmp_path / "b"), pairs, labels, tok, lambda _: None)
    from safetensors.numpy import load_file

    a, b = load_file(str(resumed / "model.safetensors")), load_file(str(straight / "model.safetensors"))
    assert a.keys() == b.keys()
    assert max(float(np.abs(a[k] - b[k]).max()) for k in a) < 1e-5  # a resumed run is the uninterrupted run

    paths = export_onnx(resumed, tmp_path / "a")
    for path in paths.values():
        v = Verifier(path, base / "tokenizer.json", max_tokens=64, threads=1)
        verdicts = v.score_pairs(pairs[:6])
        assert len(verdicts) == 6
        assert all(abs(x.supported + x.contradicted + x.nei - 1) < 1e-4 for x in verdicts)
        alone = v.score_pairs(pairs[:1])[0]  # padding in a batch changes nothing
        assert abs(alone.supported - verdicts[0].supported) < 1e-4
    fp32 = Verifier(paths["fp32"], base / "tokenizer.json", max_tokens=64, threads=1).score_pairs(pairs[:6])
    int8 = Verifier(paths["int8"], base / "tokenizer.json", max_tokens=64, threads=1).score_pairs(pairs[:6])
    assert max(abs(x.supported - y.supported) for x, y in zip(fp32, int8, strict=True)) < 0.15
