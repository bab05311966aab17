"""The shipped groundedness verifier on real claims: support, contradiction, windows, bad input, corrupt weights."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from sovrag.answer.verify import verify_sentence
from sovrag.answer.yesno import decide
from sovrag.cli import app
from sovrag.errors import ModelError, SovragError
from sovrag.evaluate.faithcheck import check_support
from sovrag.models import REGISTRY, model_status
from sovrag.types import Evidence
from sovrag.verifier import WEIGHTS, claims_of, is_yes_no, load, windows

POLICY = ("Each new employee gets 25 vacation days per year. Unused vacation days expire at the end of March of "
          "the following year. Employees in Germany may carry over up to 5 days.")


@pytest.fixture(scope="module")
def v():
    return load()


def test_supports_a_restatement_and_rejects_altered_ones(v):
    ok = v.score(POLICY, ["New employees get 25 vacation days per year."])[0]
    assert v.supports(ok), ok
    # (known misses, docs/benchmarks.md: a swapped name "Employees in France ...", "per month" for "per year")
    for wrong in ["New employees get 30 vacation days per year.", "Unused vacation days never expire."]:
        verdict = v.score(POLICY, [wrong])[0]
        assert not v.supports(verdict), (wrong, verdict)


def test_three_outcomes_are_probabilities(v):
    (verdict,) = v.score(POLICY, ["The company was founded in 1987 by two engineers."])
    assert abs(verdict.supported + verdict.contradicted + verdict.nei - 1) < 1e-4
    assert verdict.label in ("contradicted", "not enough information")


def test_long_passage_is_windowed_and_max_over_windows(v):
    filler = [f"Section {i} describes the procedure for filing expense report number {i} with the finance team."
              for i in range(60)]
    passage = " ".join([*filler, "Each new employee gets 25 vacation days per year.", *filler[:20]])
    assert len(windows(filler * 2, "vacation days", 200, v.count)) > 1
    (verdict,) = v.score(passage, ["New employees get 25 vacation days per year."])
    assert v.supports(verdict) and "25 vacation days" in verdict.window


def test_bad_input_is_named(v):
    with pytest.raises(SovragError, match="claim"):
        v.score(POLICY, ["  "])
    with pytest.raises(SovragError, match="passage"):
        v.score("", ["New employees get 25 days."])


@pytest.mark.parametrize("claim", [
    "新员工每年有二十五天假期。",
    "Cada empleado nuevo recibe veinticinco días de vacaciones al año según la política de la empresa.",
])
def test_text_outside_training_is_reported_not_scored(v, claim):
    (verdict,) = v.score(POLICY, [claim])
    assert verdict.outside and verdict.label == "not checked"
    r = check_support(POLICY, claim, "model", verifier=v)
    assert not r.supported and r.label == "not checked" and "English" in r.reason


def test_corrupt_weights_give_a_clear_error_and_lexical_still_works(tmp_path):
    folder = tmp_path / "verifier"
    shutil.copytree(WEIGHTS, folder)
    model = folder / "model.onnx"
    model.write_bytes(model.read_bytes()[: 1 << 20])
    with pytest.raises(ModelError, match="corrupt"):
        load(folder)
    (folder / "model.onnx").unlink()
    with pytest.raises(ModelError, match="lexical"):
        load(folder)
    assert check_support(POLICY, "New employees get 25 vacation days per year.", "lexical").supported


def test_registered_with_its_pinned_sha256():
    spec = REGISTRY["sovrag-verifier-minilm-l6"]
    assert spec.kind == "verifier" and model_status(WEIGHTS, spec) == "ready"
    manifest = json.loads((WEIGHTS / "manifest.json").read_text())
    assert manifest["sha256"] == spec.files[0].sha256
    assert set(manifest["test"]) >= {"halueval-qa", "halueval-dialogue", "halueval-summarization", "synthetic"}


def test_yes_no_questions_and_short_answers_are_read_with_the_question():
    q = "do new employees get vacation days"
    assert is_yes_no(q) and not is_yes_no("is it March or April?") and not is_yes_no("How many days?")
    assert claims_of("Yes.", q) == ['The answer to "Do new employees get vacation days?" is yes.']
    assert claims_of("Delhi", "Where is the head office?") == ["Where is the head office? Delhi"]


def _evidence(*texts: str) -> list[Evidence]:
    return [Evidence(i + 1, [t], np.zeros((1, 384), dtype=np.float32), t) for i, t in enumerate(texts)]


def test_answer_sentence_citations_follow_the_verifier(v):
    ev = _evidence("The office canteen opens at 8 am on weekdays.", POLICY)
    s = verify_sentence("New employees get 25 vacation days per year [1].", ev, v)
    assert s.supported and [c.source for c in s.citations] == [2] and s.rejected == (1,)
    assert not s.citations[0].cited_by_model and "25 vacation days" in s.citations[0].evidence
    wrong = verify_sentence("New employees get 40 vacation days per year [2].", ev, v)
    assert not wrong.supported and wrong.citations == ()


def test_yes_no_lead_is_decided_and_cited(v):
    ev = _evidence("The office canteen opens at 8 am on weekdays.", POLICY)
    lead = decide("do unused vacation days expire", ev, v)
    assert lead is not None and lead.text == "Yes." and lead.citations[0].source == 2
    assert decide("how many vacation days do new employees get", ev, v) is None


def test_check_cli_defaults_to_the_verifier():
    runner = CliRunner()
    ok = runner.invoke(app, ["check", "--passage", "Each new employee gets 25 vacation days.",
                             "--answer", "New employees get 25 vacation days."])
    assert ok.exit_code == 0, ok.output
    assert "supported (model)" in ok.output
    bad = runner.invoke(app, ["check", "--passage", "Each new employee gets 25 vacation days.",
                              "--answer", "New employees get 35 vacation days."])
    assert bad.exit_code == 1 and "NOT supported (model)" in bad.output
    lexical = runner.invoke(app, ["check", "--method", "lexical", "--passage", "Each new employee gets 25 vacation "
                                  "days.", "--answer", "New employees get 25 vacation days."])
    assert lexical.exit_code == 0, lexical.output
    missing = runner.invoke(app, ["check", "--passage", "no-such-file.txt", "--answer", "x"])
    assert missing.exit_code == 2 and "no such file" in missing.output
