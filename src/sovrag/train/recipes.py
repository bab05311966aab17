"""One entry per trainable model: build its pack, fit it, export it (the steps of `python -m sovrag.train`)."""

from __future__ import annotations

from pathlib import Path

from sovrag.train import reranker, verifier
from sovrag.train.base import base_fp16
from sovrag.train.fit import fit

RECIPES = {"verifier": verifier, "reranker": reranker}


def make_pack(model: str, out: Path, cache: Path, seed: int = 13, quick: bool = False, log=print,
              distractors: bool = False) -> str:
    extra = {"distractors": True} if distractors else {}  # the verifier's option (verifier_data.build)
    return RECIPES[model].make_pack(out, cache, seed=seed, quick=quick, log=log, **extra)


def export(model: str, weights: Path, pack: Path, out: Path, cache: Path, threads: int = 2, quick: bool = False,
           log=print) -> dict:
    return RECIPES[model].export(weights, pack, out, cache, threads=threads, quick=quick, log=log)


def run(model: str, out: Path, cache: Path, seed: int = 13, quick: bool = False, log=print, **fit_options) -> dict:
    """Pack, fit and export in one go; each step is skipped when its output exists, so an interrupted run
    resumes (the fine-tune itself from its last checkpoint)."""
    out.mkdir(parents=True, exist_ok=True)
    pack = out / f"{model}.pack.xz"
    if not pack.is_file():
        make_pack(model, pack, cache, seed=seed, quick=quick, log=log)
    fitted = out / "fit"
    if not (fitted / "dev.json").is_file():
        if not fit(pack, base_fp16(cache), fitted, log=log, **fit_options):
            return {}  # stopped early (--stop-after): rerun to resume
    return export(model, fitted, pack, out, cache, threads=fit_options.get("threads") or 2, quick=quick, log=log)
