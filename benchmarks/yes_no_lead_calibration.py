"""Calibrating the yes/no lead on BoolQ's dev split (never the test split): for 150 dev-split questions, what
the verifier would lead with over the retrieved sources, with the gold passage present and removed. No LLM.

    .venv/bin/python benchmarks/yes_no_lead_calibration.py
"""
# ruff: noqa: E401, E402, E702, I001 (a short calibration script)
import json, random, sys, tempfile
from pathlib import Path
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE)); sys.path.insert(0, str(HERE.parent / "src"))
import answer_quality as AQ, datasets as D
from sovrag.answer import AnswerOptions, AnswerPipeline
from sovrag.generate import create_llm
from sovrag.train.sources import split_of
from sovrag.verifier import load, yes_no_claim
v = load()
rows = [r for r in D._rows("boolq") if split_of(r["passage"].strip()) == "dev"]
random.Random(7).shuffle(rows); rows = rows[:150]
passages = D.union([D.load("halueval"), D.load("boolq")]).passages
base = D.test_settings()
out = []
with tempfile.TemporaryDirectory() as tmp:
    data = Path(tmp) / "data"; data.mkdir()
    (data / "models").symlink_to(base.models_dir, target_is_directory=True)
    s = base.with_overrides(data_dir=data)
    col = AQ.build_index(s, "calib", passages)
    p = AnswerPipeline(col, create_llm(s), AnswerOptions())
    for cond in ("present", "removed"):
        if cond == "removed":
            for r in rows:
                col.store.delete_document(D.passage_id(r["passage"].strip()))
        for r in rows:
            q = r["question"]
            ctx = p.retrieve(q)
            ev = ctx.evidence
            claims = [yes_no_claim(q, True), yes_no_claim(q, False)]
            vs = v.score_pairs([(e.text, c) for c in claims for e in ev], q)
            n = len(ev)
            best = max(range(2*n), key=lambda i: vs[i].supported)
            yes = best < n
            other = max(x.supported for x in (vs[n:] if yes else vs[:n]))
            out.append({"cond": cond, "p": vs[best].supported, "other": other, "yes": yes,
                        "gold": str(r["answer"]) == "True", "relevance": ctx.relevance,
                        "src_rel": ctx.sources[best % n].relevance})
    col.close()
(HERE / "results" / "yes_no_lead_calibration.json").write_text(json.dumps(out))
print("done", len(out))
