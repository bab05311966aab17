"""Fine-tune a BERT-family cross-encoder on CPU, checkpoint and resume, export to ONNX (fp32 and int8).

Shared by the verifier and the reranker recipes. Needs the `[train]` extra (torch, transformers, onnx); what it
writes runs on onnxruntime alone. Labels are class indices; -1 means "one of classes 1..K-1, unknown which"
(its loss is -log of their summed probability), so a source that only says "not supported" still trains a
three-way model.
"""

from __future__ import annotations

import json
import math
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from sovrag.errors import SovragError
from sovrag.verifier import pad


def need_torch():
    try:
        import torch
        import transformers  # noqa: F401
    except ImportError as e:
        raise SovragError(f"training needs the [train] extra ({e.name} is missing): pip install 'sovrag[train]'") from e
    return torch


@dataclass
class TrainConfig:
    base: str  # a folder with config.json + model.safetensors (+ tokenizer.json)
    out: str
    num_labels: int = 3
    max_tokens: int = 256
    batch_size: int = 16
    epochs: float = 1.0
    lr: float = 5e-5
    weight_decay: float = 0.01
    warmup: float = 0.06
    seed: int = 13
    threads: int = 2
    checkpoint_every: int = 400
    #: Stop after this many steps with a checkpoint written (0 = run to the end); a later run resumes from it.
    stop_after: int = 0


def _batches(lengths: Sequence[int], batch: int, rng: random.Random) -> list[list[int]]:
    """Shuffled batches of similar length (less padding), in shuffled order."""
    idx = list(range(len(lengths)))
    rng.shuffle(idx)
    out = []
    for i in range(0, len(idx), batch * 50):
        group = sorted(idx[i:i + batch * 50], key=lambda k: lengths[k])
        out.extend(group[j:j + batch] for j in range(0, len(group), batch))
    rng.shuffle(out)
    return out


def encode(tokenizer, pairs: Sequence[tuple[str, str]], max_tokens: int):
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=max_tokens, strategy="longest_first")
    return tokenizer.encode_batch(list(pairs))


def _tensors(torch, encs):
    return tuple(torch.from_numpy(x) for x in pad(encs))


def loss_fn(torch, logits, labels):
    logp = torch.log_softmax(logits, dim=-1)
    known = labels >= 0
    loss = torch.zeros((), dtype=logits.dtype)
    if known.any():
        loss = loss + torch.nn.functional.nll_loss(logp[known], labels[known], reduction="sum")
    if (~known).any():
        loss = loss - torch.logsumexp(logp[~known][:, 1:], dim=-1).sum()
    return loss / len(labels)


def train(cfg: TrainConfig, pairs: Sequence[tuple[str, str]], labels: Sequence[int], tokenizer,
          log=print) -> Path | None:
    """Fine-tune; returns the folder of the final torch weights (None when stopped early by `stop_after`).
    Resumes from out/checkpoint.pt if present: the batch plan is rebuilt from the seed, so a resumed run
    takes the same batches as an uninterrupted one."""
    torch = need_torch()
    from transformers import AutoConfig, AutoModelForSequenceClassification

    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    conf = AutoConfig.from_pretrained(cfg.base, num_labels=cfg.num_labels)
    model = AutoModelForSequenceClassification.from_pretrained(cfg.base, config=conf)
    encs = encode(tokenizer, pairs, cfg.max_tokens)
    rng = random.Random(cfg.seed)
    plan: list[list[int]] = []
    for _ in range(math.ceil(cfg.epochs)):
        plan.extend(_batches([len(e.ids) for e in encs], cfg.batch_size, rng))
    plan = plan[: int(len(plan) * cfg.epochs / math.ceil(cfg.epochs))]
    steps = len(plan)
    no_decay = ("bias", "LayerNorm.weight")
    groups = [
        {"params": [p for n, p in model.named_parameters() if not any(x in n for x in no_decay)],
         "weight_decay": cfg.weight_decay},
        {"params": [p for n, p in model.named_parameters() if any(x in n for x in no_decay)], "weight_decay": 0.0},
    ]
    opt = torch.optim.AdamW(groups, lr=cfg.lr)
    warm = max(1, int(steps * cfg.warmup))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * max(0.0, (steps - s) / max(1, steps - warm)))
    start = 0
    ckpt = out / "checkpoint.pt"
    if ckpt.is_file():
        state = torch.load(ckpt, weights_only=False)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        torch.set_rng_state(state["torch_rng"])
        start = state["step"]
        log(f"resuming at step {start}/{steps} from {ckpt}")
    y_all = torch.tensor(list(labels), dtype=torch.long)
    model.train()
    t0, seen, running = time.time(), 0, 0.0
    for step in range(start, steps):
        b = plan[step]
        ids, mask, types = _tensors(torch, [encs[i] for i in b])
        logits = model(input_ids=ids, attention_mask=mask, token_type_ids=types).logits
        loss = loss_fn(torch, logits, y_all[b])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad()
        running = 0.98 * running + 0.02 * float(loss) if step > start else float(loss)
        seen += 1
        if step % 50 == 0 or step == steps - 1:
            rate = (time.time() - t0) / seen
            log(f"step {step + 1}/{steps} loss {running:.4f} lr {sched.get_last_lr()[0]:.2e} "
                f"{rate:.2f} s/step, ETA {rate * (steps - step - 1) / 60:.1f} min")
            sys.stdout.flush()
        stopping = cfg.stop_after and step + 1 - start >= cfg.stop_after and step + 1 < steps
        if ((step + 1) % cfg.checkpoint_every == 0 and step + 1 < steps) or stopping:
            tmp = ckpt.with_suffix(".tmp")
            torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                        "torch_rng": torch.get_rng_state(), "step": step + 1}, tmp)
            tmp.replace(ckpt)
        if stopping:
            log(f"stopped after step {step + 1}/{steps}; checkpoint {ckpt}")
            return None
    final = out / "torch"
    model.save_pretrained(final)
    (out / "train_config.json").write_text(json.dumps({**asdict(cfg), "steps": steps}, indent=2))
    ckpt.unlink(missing_ok=True)
    return final


def export_onnx(torch_dir: Path, out: Path, quantize: bool = True) -> dict[str, Path]:
    """model-fp32.onnx (and model-int8.onnx, dynamic int8 weights) with inputs input_ids, attention_mask,
    token_type_ids and output logits."""
    torch = need_torch()
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(torch_dir)
    model.eval()
    ids = torch.ones((2, 16), dtype=torch.long)
    fp32 = out / "model-fp32.onnx"

    class Wrap(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.m(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).logits

    axes = {"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"},
            "token_type_ids": {0: "batch", 1: "seq"}, "logits": {0: "batch"}}
    torch.onnx.export(Wrap(model), (ids, torch.ones_like(ids), torch.zeros_like(ids)), str(fp32),
                      input_names=["input_ids", "attention_mask", "token_type_ids"], output_names=["logits"],
                      dynamic_axes=axes, opset_version=17, dynamo=False)
    paths = {"fp32": fp32}
    if quantize:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        int8 = out / "model-int8.onnx"
        quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8, per_channel=False)
        paths["int8"] = int8
    return paths
