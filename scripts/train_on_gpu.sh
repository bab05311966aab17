#!/usr/bin/env bash
# Fine-tune sovrag's verifier and reranker on a GPU machine that has torch but no network (how the shipped
# models were trained; docs/benchmarks.md). It runs in a copy of the repository with $GPU_DIR (build/gpu) in it:
#   base/               the fp16 base weights (sovrag.train.base.base_fp16 writes them to the training cache)
#   verifier.pack.xz    python -m sovrag.train pack verifier --out build/gpu/verifier.pack.xz
#   reranker.pack.xz    python -m sovrag.train pack reranker --out build/gpu/reranker.pack.xz
#   whl/                cp312 wheels of sentencex and PyStemmer (sovrag.text imports them)
# Recipe variants train side by side on the one GPU; the best of each kind on the dev split is written to $OUT
# as `fit --parts` weight files (what fits in what the machine can send back), which
# `python -m sovrag.train export` finishes on a CPU. Every variant's dev metrics are in $OUT/meta.tgz.
set -u
GPU_DIR=${GPU_DIR:-build/gpu}
OUT=${OUT:-$GPU_DIR/out}
DEVICE=${DEVICE:-cuda}
LIMIT=${LIMIT:-450}   # seconds per variant before it is killed
DEADLINE=${DEADLINE:-330}  # seconds of training per variant, then it ends early and keeps its model
WORK=${WORK:-/tmp/fit}
mkdir -p "$OUT" "$WORK"
export PYTHONUNBUFFERED=1
if ! python3 -c "import sentencex, Stemmer" 2>/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site "$GPU_DIR"/whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD/src
nvidia-smi -L 2>/dev/null
python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"
B=$GPU_DIR/base
V=$GPU_DIR/verifier.pack.xz
R=$GPU_DIR/reranker.pack.xz
run() {  # name pack parts-name [fit options...]
    local name=$1 pack=$2 parts=$3; shift 3
    timeout "$LIMIT" python3 -m sovrag.train fit "$pack" --base "$B" --out "$WORK/$name" --device "$DEVICE" \
        --deadline "$DEADLINE" --parts "$parts" "$@" > "$WORK/$name.log" 2>&1
    echo "$name exit $?"
}
# one variant per line: name, pack (V or R), the name its weights are returned under, fit options. The first
# run trained the first five side by side; the second the last three (docs/benchmarks.md says which shipped).
RUNS=${RUNS:-"v-e3 V verifier --epochs 3
v-e4 V verifier --epochs 4
v5-e4 V verifier5 --epochs 4 --layers 5
r6-e2 R reranker --epochs 2
r3-e3 R reranker3 --epochs 3 --layers 3"}
while read -r name pack parts opts; do
    [ -n "$name" ] || continue
    if [ "$pack" = V ]; then pack=$V; else pack=$R; fi
    # shellcheck disable=SC2086
    run "$name" "$pack" "$parts" $opts &
done <<< "$RUNS"
wait
python3 - "$OUT" "$WORK" <<'PY'
import json, shutil, sys
from pathlib import Path
out, work = Path(sys.argv[1]), Path(sys.argv[2])
runs = {d.name: json.loads((d / "dev.json").read_text()) for d in sorted(work.iterdir())
        if d.is_dir() and (d / "dev.json").is_file()}
summary = {k: {"dev": v["dev"], "train_minutes": v["train_minutes"], "config": v["config"]} for k, v in runs.items()}
chosen, budget = {}, 60 * 10**6  # bytes of weights the machine may send back, with room for meta.tgz
kinds = list(dict.fromkeys(p.name.split(".")[0] for d in work.iterdir() if d.is_dir()
                           for p in sorted((d / "parts").glob("*.part0.safetensors"))))
for kind in sorted(kinds, key=lambda k: ("verifier", "reranker", "reranker3", "verifier5").index(k)
                   if k in ("verifier", "reranker", "reranker3", "verifier5") else 9):  # in order of need
    cands = {k: v for k, v in runs.items() if (work / k / "parts" / f"{kind}.part0.safetensors").is_file()}
    name = max(cands, key=lambda k: cands[k]["dev"]["mean"])
    files = sorted((work / name / "parts").glob("*.safetensors"))
    size = sum(f.stat().st_size for f in files)
    if size <= budget:
        budget -= size
        chosen[kind] = name
        for f in files:
            shutil.copy(f, out / f.name)
summary["returned"] = chosen
meta = work / "meta"
meta.mkdir(exist_ok=True)
for name in runs:
    for f in (work / name / "parts").glob("*.json"):
        shutil.copy(f, meta / f"{name}.{f.name}")
(meta / "summary.json").write_text(json.dumps(summary, indent=1))
print(json.dumps({k: (v["dev"] if isinstance(v, dict) and "dev" in v else v) for k, v in summary.items()}, indent=1))
PY
(cd "$WORK" && tar czf "$OUT/meta.tgz" ./*.log meta)
ls -la "$OUT"
