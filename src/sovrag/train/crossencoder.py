"""Fine-tune a BERT-family cross-encoder (on CPU, or a GPU when one is there), checkpoint and resume, export to
ONNX (fp32 and int8).

Shared by the verifier and the reranker recipes. Needs the `[train]` extra (torch, transformers, onnx); what it
writes runs on onnxruntime alone. Two kinds of training:

- classification (the verifier): labels are class indices; -1 means "one of classes 1..K-1, unknown which"
  (its loss is -log of their summed probability), so a source that only says "not supported" still trains a
  three-way model;
- ranking (the reranker, `group_size` > 0): one logit per pair; examples come in groups of one relevant passage
  and `group_size - 1` others for the same question, and the loss is the group's softmax cross-entropy (rank the
  relevant one first) plus each pair's sigmoid cross-entropy (so the score also says, on its own, whether a
  passage answers: the abstention gate reads it).

The word-embedding matrix stays the base model's (`freeze_embeddings`): half of MiniLM's weights, it barely moves
in a fine-tune, and leaving it out makes a trained model small enough to carry back from a GPU machine
(`save_parts`).
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

#: A transported model's weight files stay under this size (the device tool returns files up to 16 MiB).
PART_BYTES = 15 * 1024 * 1024
WORD_EMBEDDINGS = "embeddings.word_embeddings.weight"


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
    #: Pairs per step (ranking: whole groups, batch_size // group_size of them).
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
    #: "cpu", "cuda" or "auto" (cuda when torch sees a GPU).
    device: str = "cpu"
    freeze_embeddings: bool = True
    #: Keep only the first N transformer layers of the base (0 = all): a faster, smaller model.
    layers: int = 0
    #: Ranking: 1 relevant + group_size - 1 other passages per question (0 = classification).
    group_size: int = 0
    #: Seconds after which training ends early, keeping the model as it is then (0 = none): a machine lent for
    #: a fixed time still returns a model; the step reached is recorded.
    deadline_s: float = 0.0
    #: Mixed precision on a GPU ("bf16" autocast, fp32 weights and optimizer) or "fp32"; a CPU always runs fp32.
    precision: str = "bf16"


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


def _group_batches(groups: Sequence[Sequence[int]], per_step: int, rng: random.Random) -> list[list[int]]:
    order = list(range(len(groups)))
    rng.shuffle(order)
    return [[i for g in order[j:j + per_step] for i in groups[g]] for j in range(0, len(order), per_step)]


def encode(tokenizer, pairs: Sequence[tuple[str, str]], max_tokens: int):
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=max_tokens, strategy="longest_first")
    return tokenizer.encode_batch(list(pairs))


def _tensors(torch, encs, device):
    return tuple(torch.from_numpy(x).to(device) for x in pad(encs))


def loss_fn(torch, logits, labels):
    logp = torch.log_softmax(logits, dim=-1)
    known = labels >= 0
    loss = torch.zeros((), dtype=logits.dtype, device=logits.device)
    if known.any():
        loss = loss + torch.nn.functional.nll_loss(logp[known], labels[known], reduction="sum")
    if (~known).any():
        loss = loss - torch.logsumexp(logp[~known][:, 1:], dim=-1).sum()
    return loss / len(labels)


def rank_loss(torch, logits, labels, group_size: int):
    """Listwise (the relevant passage first in its group) + pointwise (each pair on its own) cross-entropy."""
    z = logits.view(-1)
    listwise = torch.nn.functional.cross_entropy(z.view(-1, group_size), torch.zeros(
        len(z) // group_size, dtype=torch.long, device=z.device))
    pointwise = torch.nn.functional.binary_cross_entropy_with_logits(z, labels.to(z.dtype))
    return listwise + pointwise


def resolve_device(torch, device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise SovragError(f"device {device!r}: torch sees no GPU here; use --device cpu")
    return device


def build_model(cfg: TrainConfig):
    torch = need_torch()
    from transformers import AutoConfig, AutoModelForSequenceClassification

    conf = AutoConfig.from_pretrained(cfg.base, num_labels=cfg.num_labels)
    if cfg.layers:
        conf.num_hidden_layers = cfg.layers
    model = AutoModelForSequenceClassification.from_pretrained(cfg.base, config=conf, dtype=torch.float32)
    if cfg.freeze_embeddings:
        model.base_model.embeddings.word_embeddings.weight.requires_grad_(False)
    return model


def train(cfg: TrainConfig, pairs: Sequence[tuple[str, str]], labels: Sequence[int], tokenizer,
          log=print, groups: Sequence[Sequence[int]] | None = None) -> Path | None:
    """Fine-tune; returns the folder of the final torch weights (None when stopped early by `stop_after`).
    Resumes from out/checkpoint.pt if present: the batch plan is rebuilt from the seed, so a resumed run
    takes the same batches as an uninterrupted one. `groups` (ranking): lists of pair indices, the relevant
    pair first, each of `cfg.group_size` pairs."""
    torch = need_torch()
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    device = resolve_device(torch, cfg.device)
    amp = device.startswith("cuda") and cfg.precision == "bf16"
    if device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    if cfg.group_size and (groups is None or any(len(g) != cfg.group_size for g in groups)):
        raise SovragError(f"ranking needs groups of exactly {cfg.group_size} pairs")
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    model = build_model(cfg).to(device)
    encs = encode(tokenizer, pairs, cfg.max_tokens)
    rng = random.Random(cfg.seed)
    plan: list[list[int]] = []
    for _ in range(math.ceil(cfg.epochs)):
        if cfg.group_size:
            plan.extend(_group_batches(groups or [], max(1, cfg.batch_size // cfg.group_size), rng))
        else:
            plan.extend(_batches([len(e.ids) for e in encs], cfg.batch_size, rng))
    plan = plan[: int(len(plan) * cfg.epochs / math.ceil(cfg.epochs))]
    steps = len(plan)
    no_decay = ("bias", "LayerNorm.weight")
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    groups_ = [
        {"params": [p for n, p in params if not any(x in n for x in no_decay)], "weight_decay": cfg.weight_decay},
        {"params": [p for n, p in params if any(x in n for x in no_decay)], "weight_decay": 0.0},
    ]
    opt = torch.optim.AdamW(groups_, lr=cfg.lr)
    warm = max(1, int(steps * cfg.warmup))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * max(0.0, (steps - s) / max(1, steps - warm)))
    start = 0
    ckpt = out / "checkpoint.pt"
    if ckpt.is_file():
        state = torch.load(ckpt, weights_only=False, map_location=device)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        torch.set_rng_state(state["torch_rng"])
        start = state["step"]
        log(f"resuming at step {start}/{steps} from {ckpt}")
    y_all = torch.tensor(list(labels), dtype=torch.long)
    model.train()
    t0, seen = time.time(), 0
    running = torch.zeros((), device=device)  # on the device: reading it every step would sync a GPU
    for step in range(start, steps):
        b = plan[step]
        ids, mask, types = _tensors(torch, [encs[i] for i in b], device)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
            logits = model(input_ids=ids, attention_mask=mask, token_type_ids=types).logits.float()
        y = y_all[b].to(device)
        loss = rank_loss(torch, logits, y, cfg.group_size) if cfg.group_size else loss_fn(torch, logits, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for _, p in params], 1.0)
        opt.step()
        sched.step()
        opt.zero_grad()
        running = 0.98 * running + 0.02 * loss.detach() if step > start else loss.detach()
        seen += 1
        if step % 200 == 0 or step == steps - 1:
            rate = (time.time() - t0) / seen
            log(f"step {step + 1}/{steps} loss {float(running):.4f} lr {sched.get_last_lr()[0]:.2e} "
                f"{rate:.3f} s/step, ETA {rate * (steps - step - 1) / 60:.1f} min")
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
        if cfg.deadline_s and time.time() - t0 > cfg.deadline_s and step + 1 < steps:
            log(f"deadline: ending at step {step + 1}/{steps}")
            steps_done = step + 1
            break
    else:
        steps_done = steps
    final = out / "torch"
    model.to("cpu").save_pretrained(final)
    (out / "train_config.json").write_text(json.dumps({**asdict(cfg), "steps": steps, "steps_done": steps_done},
                                                      indent=2))
    ckpt.unlink(missing_ok=True)
    return final


def save_parts(model_dir: Path, out: Path, name: str) -> list[Path]:
    """The trained weights without the (frozen, base) word embeddings, as fp16 safetensors files of at most
    PART_BYTES each, plus the model's config: what a GPU machine sends back. `load_parts` rebuilds the model."""
    need_torch()
    from safetensors.torch import load_file, save_file

    state = load_file(str(Path(model_dir) / "model.safetensors"))
    out.mkdir(parents=True, exist_ok=True)
    config = json.loads((Path(model_dir) / "config.json").read_text())
    (out / f"{name}.config.json").write_text(json.dumps(config, indent=1))
    paths, part, size = [], {}, 0
    keys = [k for k in sorted(state) if not k.endswith(WORD_EMBEDDINGS)]
    for k in keys:
        t = state[k].half() if state[k].is_floating_point() else state[k]
        n = t.numel() * t.element_size()
        if part and size + n > PART_BYTES:
            paths.append(out / f"{name}.part{len(paths)}.safetensors")
            save_file(part, str(paths[-1]))
            part, size = {}, 0
        part[k], size = t.contiguous(), size + n
    if part:
        paths.append(out / f"{name}.part{len(paths)}.safetensors")
        save_file(part, str(paths[-1]))
    return paths


def load_parts(base: Path, parts_dir: Path, name: str, out: Path) -> Path:
    """A full model folder (save_pretrained) from `save_parts` output and the base's word embeddings."""
    need_torch()
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoModelForSequenceClassification

    conf = AutoConfig.from_pretrained(str(parts_dir / f"{name}.config.json"))
    model = AutoModelForSequenceClassification.from_config(conf)
    state = {}
    for p in sorted(parts_dir.glob(f"{name}.part*.safetensors")):
        state.update({k: v.float() if v.is_floating_point() else v for k, v in load_file(str(p)).items()})
    if not state:
        raise SovragError(f"{parts_dir}: no {name}.part*.safetensors")
    base_state = load_file(str(base / "model.safetensors"))
    prefix = next(k for k in state if k.endswith("embeddings.position_embeddings.weight")).rsplit(
        "embeddings.position_embeddings.weight", 1)[0]
    key = prefix + WORD_EMBEDDINGS
    base_key = next(k for k in base_state if k.endswith(WORD_EMBEDDINGS))
    state[key] = base_state[base_key].float()
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise SovragError(f"{parts_dir}: weights do not fit the config (missing {missing[:3]}, unexpected "
                          f"{unexpected[:3]})")
    model.save_pretrained(out)
    return out


def export_onnx(torch_dir: Path, out: Path, quantize: bool = True) -> dict[str, Path]:
    """model-fp32.onnx (and model-int8.onnx, dynamic int8 weights) with inputs input_ids, attention_mask,
    token_type_ids and output logits."""
    torch = need_torch()
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(torch_dir)
    model.eval()
    ids = torch.ones((2, 16), dtype=torch.long)
    out.mkdir(parents=True, exist_ok=True)
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


def predict(model_dir: Path, tokenizer, pairs: Sequence[tuple[str, str]], max_tokens: int, device: str = "cpu",
            batch: int = 64, threads: int = 2):
    """Logits (numpy) of a trained torch model for `pairs`, in order, batched by similar length."""
    import numpy as np

    torch = need_torch()
    from transformers import AutoModelForSequenceClassification

    torch.set_num_threads(threads)
    device = resolve_device(torch, device)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir).to(device).eval()
    encs = encode(tokenizer, pairs, max_tokens)
    order = sorted(range(len(encs)), key=lambda i: len(encs[i].ids))
    out = np.zeros((len(encs), model.config.num_labels), dtype=np.float32)
    with torch.inference_mode():
        for j in range(0, len(order), batch):
            idx = order[j:j + batch]
            ids, mask, types = _tensors(torch, [encs[i] for i in idx], device)
            out[idx] = model(input_ids=ids, attention_mask=mask, token_type_ids=types).logits.float().cpu().numpy()
    return out
