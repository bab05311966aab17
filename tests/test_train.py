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

    from sovrag.train.base import base_fp16
    from sovrag.train.crossencoder import TrainConfig, export_onnx, load_parts, save_parts, train
    from sovrag.verifier import Verifier

    base = base_fp16(CACHE)
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

    # weights carried back from a GPU machine (fp16, without the frozen word embeddings) rebuild the same model
    parts = save_parts(resumed, tmp_path / "parts", "verifier")
    assert all(p.stat().st_size <= 15 * 1024 * 1024 for p in parts)
    rebuilt = load_parts(base, tmp_path / "parts", "verifier", tmp_path / "rebuilt")
    r = load_file(str(rebuilt / "model.safetensors"))
    assert r.keys() == a.keys()
    assert max(float(np.abs(a[k] - r[k]).max()) for k in a) < 2e-3  # fp16 rounding of trained weights only
    emb = next(k for k in a if k.endswith("word_embeddings.weight"))
    assert np.array_equal(a[emb], r[emb])  # frozen: the base's, exactly

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


def test_qa_answers_become_whole_statements():
    made = perturb.qa_statement("The author of Oh, the Things I Know! was a United States Senator from what state?",
                                "Minnesota", "The author of Oh, the Things I Know! was a United States Senator from "
                                             "Alabama.")
    assert made == ("The author of Oh, the Things I Know! was a United States Senator from Minnesota.", "Alabama")
    made = perturb.qa_statement("When was Stephen Rea born?", "31 October 1946", "Stephen Rea was born in 1947.")
    assert made == ("Stephen Rea was born in 31 October 1946.", "1947")
    # no single entity to swap, a negation, a yes/no answer, or a number for a name: no statement
    assert perturb.qa_statement("Who directed it?", "Marc Forster", "Marc Foster directed \"World War Z\".") is None
    assert perturb.qa_statement("On what channel?", "BBC One", "Joanne Clifton did not win the series.") is None
    assert perturb.qa_statement("Do they belong to the same family?", "no", "They belong to different families.") \
        is None
    assert perturb.qa_statement("Which band formed first?", "The Melvins", "Better Than Ezra formed in 1985.") is None


def test_distractors_are_the_wrong_thing_from_the_right_passage():
    rng = random.Random(0)
    doc = ("Northwind Robotics was founded in 1998 by Ada Lovelace in Leeds. Its first robot, built by Grace "
           "Hopper, sold 4,000 units in 2003.")
    for _ in range(5):  # a name for a name, never one sharing a word with the answer or the question
        other = perturb.distractor(doc, "Who founded Northwind Robotics?", "Ada Lovelace", rng)
        assert other in {"Leeds", "Grace Hopper"}
    assert perturb.distractor(doc, "When was Northwind Robotics founded?", "1998", rng) == "2003"
    assert perturb.distractor(doc, "How many units did its first robot sell?", "4,000", rng) is None  # no other
    assert perturb.distractor(doc, "Who was first, Ada Lovelace or Grace Hopper?", "Ada Lovelace", rng) == \
        "Grace Hopper"
    # a yes/no answer, or a common noun (its synonyms are likely in the passage): none
    assert perturb.distractor(doc, "Was it founded in Leeds?", "yes", rng) is None
    assert perturb.distractor(doc, "What does it build?", "robots", rng) is None


def test_training_pack_round_trip_and_refusal(tmp_path):
    from sovrag.errors import SovragError
    from sovrag.train import pack as P

    content = {"kind": "reranker", "seed": 3, "max_tokens": 64, "texts": {"a": "x"}, "train": [], "dev": []}
    digest = P.write(tmp_path / "r.pack.xz", content)
    back, again = P.read(tmp_path / "r.pack.xz")
    assert again == digest and back["texts"] == {"a": "x"} and back["format"] == P.FORMAT
    (tmp_path / "bad.pack.xz").write_bytes(b"not a pack")
    with pytest.raises(SovragError, match="bad.pack.xz: cannot be read"):
        P.read(tmp_path / "bad.pack.xz")


def test_reranker_ndcg_fusion_and_gate():
    from sovrag.reranker import answerable
    from sovrag.train import pack as P
    from sovrag.train.reranker import GATE_KEEP, fit_gate, gate_features, gate_rates, ndcg

    rows = [["q1", "g1", ["x", "g1", "y"], [0.9, 0.8, 0.1], "halueval-qa", "a"],
            ["q2", "g2", ["g2", "z", "w"], [0.9, 0.5, 0.4], "boolq", "yes"],
            # the reranker prefers "u" by a little; hybrid search is sure of "g3": fusion gets it right
            ["q3", "g3", ["g3", "u"], [1.5, 0.2], "boolq", "no"]]
    scores = [[0.0, 5.0, -1.0], [4.0, -2.0, -3.0], [1.0, 1.5]]
    half = 1 / np.log2(3)
    assert ndcg(rows, scores, None) == pytest.approx({"halueval-qa": half, "boolq": 1.0, "union": 1 - (1 - half) / 3},
                                                     abs=1e-4)
    assert ndcg(rows, scores, 0.0)["boolq"] == pytest.approx((1 + half) / 2, abs=1e-4)
    assert ndcg(rows, scores, 2.0) == {"halueval-qa": 1.0, "boolq": 1.0, "union": 1.0}
    m = P.reranker_dev({"dev": rows[:2]}, scores[:2])  # what fit reports on dev while training
    assert m["halueval-qa"] == {"hybrid": round(half, 4), "reranked": 1.0} and m["answerable_auc"] == 1.0
    x, y = gate_features(rows, scores)  # per question: gold present, then the same question without it
    assert x[:2].tolist() == [[5.0, 0.9], [0.0, 0.9]] and y.tolist() == [1, 0, 1, 0, 1, 0]
    # a gate on 200 noisy questions: the threshold keeps GATE_KEEP of those whose passage is present
    rng = np.random.default_rng(0)
    many = []
    for i in range(200):
        hyb = sorted(rng.uniform(0.2, 1.6, 6), reverse=True)
        sc = list(rng.normal(-4, 2, 6))
        sc[0] = float(rng.normal(4, 3))
        many.append(([f"q{i}", f"g{i}", [f"g{i}"] + [f"n{i}_{k}" for k in range(5)], hyb, "boolq", "yes"], sc))
    rows2, scores2 = [r for r, _ in many], [s for _, s in many]
    gate = fit_gate(rows2, scores2)
    assert set(gate) == {"hybrid", "logit_only"} and gate["hybrid"]["logit"] > 0
    rates = gate_rates(rows2, scores2, gate)
    for name in gate:
        assert rates[name]["abstain_present"] == pytest.approx(1 - GATE_KEEP, abs=0.01)
        assert rates[name]["abstain_removed"] == gate[name]["dev_abstain_removed"] > 0.5
    g = gate["hybrid"]
    assert answerable(8.0, 1.5, g) > g["threshold"] > answerable(-6.0, 0.3, g)


@pytest.mark.slow
def test_reranker_trains_to_put_the_answering_passage_first(tmp_path):
    """Group (listwise + pointwise) training on a task a few steps can learn: the passage naming the asked city."""
    pytest.importorskip("torch")
    from tokenizers import Tokenizer

    from sovrag.train.base import base_fp16
    from sovrag.train.crossencoder import TrainConfig, predict, train

    base = base_fp16(CACHE)
    tok = Tokenizer.from_file(str(base / "tokenizer.json"))
    cities = ["Leeds", "Lyon", "Porto", "Graz", "Turin", "Ghent", "Cork", "Bergen"]
    pairs, labels, groups = [], [], []
    rng = random.Random(4)
    for i in range(64):
        city = cities[i % len(cities)]
        others = rng.sample([c for c in cities if c != city], 3)
        g = []
        for c, y in [(city, 1)] + [(o, 0) for o in others]:
            g.append(len(pairs))
            pairs.append((f"Which warehouse is in {city}?", f"The warehouse in {c} stores paper."))
            labels.append(y)
        groups.append(g)
    cfg = TrainConfig(base=str(base), out=str(tmp_path), num_labels=1, group_size=4, batch_size=16, epochs=3.0,
                      lr=1e-4, max_tokens=32, threads=1, seed=2)
    model = train(cfg, pairs, labels, tok, lambda _: None, groups=groups)
    test = [("Which warehouse is in Porto?", f"The warehouse in {c} stores paper.") for c in ("Graz", "Porto", "Cork")]
    logits = predict(model, tok, test, 32)[:, 0]
    assert int(np.argmax(logits)) == 1


def test_a_sample_keeps_a_source_with_the_positives_of_its_premises():
    from sovrag.train.fit import sample_rows

    rows = [[0, "c0", 1, "distractors", ""], [0, "c1", 0, "qa", ""], [0, "c2", -1, "qa", ""],
            [0, "c3", 0, "synthetic", ""], [1, "c4", 0, "qa", ""], [2, "c5", 0, "dialogue", ""],
            [3, "c6", -1, "dialogue", ""], [4, "c7", 0, "boolq", ""]]
    got = sample_rows(rows, 4, ("distractors",), seed=1, pair_with=("qa",))
    assert len(got) == 4 and got == sorted(got, key=rows.index)  # the pack's order
    assert rows[0] in got and rows[1] in got  # the kept source and the supported qa row of its premise
    assert rows[2] not in got or rows[3] not in got  # the rest is sampled: two of the five others
    assert sample_rows(rows, 4, ("distractors",), seed=1, pair_with=("qa",)) == got  # seeded
    assert len(sample_rows(rows, 1, ("distractors",), seed=1, pair_with=("qa",))) == 2  # kept rows always stay


def test_fit_refuses_sampling_options_it_would_ignore(tmp_path):
    from sovrag.errors import SovragError
    from sovrag.train import pack as P
    from sovrag.train.fit import fit

    P.write(tmp_path / "r.pack.xz", {"kind": "reranker", "seed": 3, "max_tokens": 64, "texts": [], "train": [],
                                     "dev": []})
    with pytest.raises(SovragError, match="--sample: only for a verifier pack"):
        fit(tmp_path / "r.pack.xz", tmp_path, tmp_path / "out", sample=10)
    with pytest.raises(SovragError, match="only with --sample"):
        fit(tmp_path / "r.pack.xz", tmp_path, tmp_path / "out", keep=("halueval-qa-distractors",))
