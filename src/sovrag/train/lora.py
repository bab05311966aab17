"""LoRA fine-tuning of the local LLM on CPU: a GGUF base loaded by transformers, peft's LoRA, a plain loop.

The base is the very GGUF file llama.cpp runs (transformers dequantizes it to float32 for training); the trained
adapter is written as a GGUF adapter (gguf_adapter.py) that llama.cpp applies on top of the unchanged quantized
file. Each example is the chat prompt sovrag's answer pipeline sends, then the answer; the loss is on the answer
and the chat template's end-of-turn marker only (without the marker the tuned model runs past its answer).

Training is resumable: every `checkpoint_every` steps the LoRA weights, the optimizer, the step and the RNG states
are written to the work folder (atomically); a rerun with the same examples and settings continues from there.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import random
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from sovrag.errors import ModelError, SovragError
from sovrag.generate import Message
from sovrag.models.registry import check_gguf

log = logging.getLogger(__name__)

EPOCHS, MIN_STEPS, MAX_STEPS = 3, 10, 300
TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass
class LoraSettings:
    rank: int = 8
    alpha: float = 16.0
    targets: tuple[str, ...] = TARGETS
    lr: float = 2e-4
    #: Optimizer steps; 0: about EPOCHS passes over the examples (at least MIN_STEPS, at most MAX_STEPS).
    steps: int = 0
    #: Examples per optimizer step (gradients accumulated one example at a time: CPU memory stays flat).
    batch: int = 4
    #: Longer examples are left out (counted in the report), never cut: a cut answer teaches a cut answer.
    max_tokens: int = 1024
    warmup: int = 5
    seed: int = 13
    threads: int = 0
    checkpoint_every: int = 10

    def check(self) -> None:
        for name, value, low in (("rank", self.rank, 1), ("steps", self.steps, 0), ("batch", self.batch, 1),
                                 ("max_tokens", self.max_tokens, 32), ("checkpoint_every", self.checkpoint_every, 1)):
            if value < low:
                raise SovragError(f"{name.replace('_', '-')} {value}: must be at least {low}")
        if not (0 < self.lr < 1):
            raise SovragError(f"lr {self.lr}: expected a learning rate between 0 and 1 (e.g. 2e-4)")
        if self.alpha <= 0:
            raise SovragError(f"alpha {self.alpha}: must be positive")
        bad = [t for t in self.targets if t not in TARGETS]
        if bad or not self.targets:
            raise SovragError(f"target modules {', '.join(bad) or '(none)'}: expected some of {', '.join(TARGETS)}")


@dataclass(frozen=True)
class Example:
    """One training example: the messages sovrag sends and the answer the tuned model should give."""

    messages: tuple[Message, ...]
    answer: str
    kind: str = "answerable"  # or "unanswerable"

    def to_dict(self) -> dict:
        return {"messages": [m.as_dict() for m in self.messages], "answer": self.answer, "kind": self.kind}

    @classmethod
    def from_dict(cls, d: dict) -> Example:
        return cls(tuple(Message(m["role"], m["content"]) for m in d["messages"]), d["answer"], d.get("kind", ""))


@dataclass
class Progress:
    step: int
    steps: int
    loss: float
    elapsed_s: float
    resumed_from: int = 0


@dataclass
class TrainResult:
    lora: dict = field(repr=False)  # peft's LoRA tensors as numpy arrays
    steps: int = 0
    resumed_from: int = 0
    examples: int = 0
    skipped_long: int = 0
    train_s: float = 0.0
    seconds_per_step: float = 0.0
    final_loss: float = 0.0
    peak_rss_mb: float = 0.0
    arch: str = ""
    n_layers: int = 0
    n_head: int = 0
    n_head_kv: int = 0


def need_train_extra():
    """torch, transformers, peft and gguf, or a clear error with the install command."""
    try:
        import gguf  # noqa: F401
        import peft  # noqa: F401
        import torch
        import transformers  # noqa: F401
    except ImportError as e:
        raise SovragError(f"`sovrag tune` needs the [train] extra ({e.name} is missing); install it with: "
                          "pip install 'sovrag[train]'  (from a checkout: pip install -e '.[train]')") from e
    return torch


def gguf_architecture(path: Path) -> str:
    import gguf

    try:
        reader = gguf.GGUFReader(str(path))
        field_ = reader.fields["general.architecture"]
        return bytes(field_.parts[field_.data[0]]).decode()
    except (KeyError, ValueError, OSError) as e:
        raise ModelError(f"base model {path}: not a readable GGUF file ({e})") from e


def load_base(path: Path, threads: int = 0):
    """(model, tokenizer) from a GGUF file, dequantized to float32 for training."""
    torch = need_train_extra()
    import transformers

    from sovrag.machine import available_cores

    torch.set_num_threads(threads or available_cores())
    path = check_gguf(path, "base model")
    arch = gguf_architecture(path)
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()  # the CLI shows its own progress...
    _quiet_gguf_loading()
    try:
        tok = transformers.AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
        model = transformers.AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name,
                                                                  dtype=torch.float32)
    except (ValueError, KeyError, RuntimeError, OSError, NotImplementedError) as e:
        raise ModelError(f"base model {path}: transformers cannot load this GGUF for training (architecture "
                         f"{arch!r}: {str(e)[:300]}); tune a model transformers supports, e.g. the bundled Qwen2.5 "
                         "models") from e
    # A GGUF-loaded model carries quantization markers; the weights are plain float32 now, and peft and saving
    # refuse a model that still says it is quantized.
    model.hf_quantizer = None
    model.is_quantized = False
    if getattr(model.config, "quantization_config", None) is not None:
        del model.config.quantization_config
    if tok.chat_template is None:
        raise ModelError(f"base model {path}: the GGUF has no chat template; sovrag answers through one")
    return model, tok, arch


def _quiet_gguf_loading() -> None:
    """...and transformers' GGUF reader draws a tqdm bar of its own, outside its progress-bar switch."""
    from functools import partial

    from tqdm.auto import tqdm

    try:
        from transformers import modeling_gguf_pytorch_utils as gguf_utils
    except ImportError:
        return
    if getattr(gguf_utils, "tqdm", None) is tqdm:
        gguf_utils.tqdm = partial(tqdm, disable=True)


def end_of_turn(tok) -> str:
    """What the chat template writes after an assistant message (Qwen/SmolLM: '<|im_end|>')."""
    probe = "SOVRAG_PROBE"
    text = tok.apply_chat_template([{"role": "user", "content": "x"}, {"role": "assistant", "content": probe}],
                                   tokenize=False)
    tail = text.split(probe, 1)[1].strip()
    return tail or (tok.eos_token or "")


def encode(tok, examples: Sequence[Example], max_tokens: int) -> tuple[list[tuple[list[int], int]], int]:
    """(token ids, prompt length) per example, and how many were too long to keep."""
    end = end_of_turn(tok)
    out, long_ = [], 0
    for ex in examples:
        prompt = tok.apply_chat_template([m.as_dict() for m in ex.messages], tokenize=False, add_generation_prompt=True)
        p = tok(prompt, add_special_tokens=False)["input_ids"]
        a = tok(ex.answer.strip() + end, add_special_tokens=False)["input_ids"]
        if len(p) + len(a) > max_tokens:
            long_ += 1
            continue
        out.append((p + a, len(p)))
    return out, long_


def auto_steps(examples: int, batch: int) -> int:
    return max(MIN_STEPS, min(MAX_STEPS, math.ceil(EPOCHS * examples / batch)))


def data_digest(examples: Sequence[Example], cfg: LoraSettings, base_sha256: str) -> str:
    """What a checkpoint is valid for: the examples, the settings that shape training, and the base."""
    h = hashlib.sha256(base_sha256.encode())
    for ex in examples:
        h.update(json.dumps(ex.to_dict(), sort_keys=True).encode())
    shape = {k: v for k, v in asdict(cfg).items() if k not in ("threads", "checkpoint_every", "steps")}
    h.update(json.dumps(shape, sort_keys=True, default=list).encode())
    return h.hexdigest()


def _save_checkpoint(torch, work: Path, state: dict) -> None:
    tmp = work / "checkpoint.pt.tmp"
    torch.save(state, tmp)
    os.replace(tmp, work / "checkpoint.pt")


def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def train_lora(base: Path, examples: Sequence[Example], cfg: LoraSettings, work: Path, base_sha256: str,
               progress: Callable[[Progress], None] | None = None, stop_after: int = 0) -> TrainResult:
    """Train a LoRA adapter on `examples`; resumes from `work`/checkpoint.pt when it matches. `stop_after` ends
    the run after that many steps in this call (what an interruption does; the next call resumes)."""
    cfg.check()
    torch = need_train_extra()
    from peft import LoraConfig, get_peft_model

    work.mkdir(parents=True, exist_ok=True)
    model, tok, arch = load_base(base, cfg.threads)
    data, long_ = encode(tok, examples, cfg.max_tokens)
    if not data:
        raise SovragError(f"no training example fits in {cfg.max_tokens} tokens ({long_} too long); raise max-tokens")
    digest = data_digest(examples, cfg, base_sha256)
    if not cfg.steps:
        cfg = replace(cfg, steps=auto_steps(len(data), cfg.batch))
    random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    peft_cfg = LoraConfig(r=cfg.rank, lora_alpha=cfg.alpha, target_modules=list(cfg.targets), lora_dropout=0.0,
                          bias="none", task_type="CAUSAL_LM")
    with warnings.catch_warnings():  # transformers' deprecation notice about a name peft still uses
        warnings.simplefilter("ignore", FutureWarning)
        model = get_peft_model(model, peft_cfg)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.0)

    def lr_at(step: int) -> float:  # linear warmup, cosine decay to a tenth
        if step < cfg.warmup:
            return cfg.lr * (step + 1) / cfg.warmup
        t = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
        return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, t))))

    # The order of examples: a seeded shuffle per pass, fixed by the seed alone (so a resumed run sees the same).
    order: list[int] = []
    rng = random.Random(cfg.seed)
    while len(order) < cfg.steps * cfg.batch:
        idx = list(range(len(data)))
        rng.shuffle(idx)
        order.extend(idx)
    start, loss_ema = 0, float("nan")
    ckpt = work / "checkpoint.pt"
    if ckpt.is_file():
        try:
            state = torch.load(ckpt, map_location="cpu", weights_only=False)
        except Exception as e:  # noqa: BLE001 - torch raises many kinds for a damaged file
            log.warning("checkpoint %s unreadable (%s): starting over", ckpt, e)
            state = None
        if state and state.get("digest") == digest and state.get("step", 0) <= cfg.steps:
            model.load_state_dict(state["lora"], strict=False)
            opt.load_state_dict(state["optimizer"])
            torch.set_rng_state(state["torch_rng"])
            start, loss_ema = int(state["step"]), float(state["loss"])
            log.info("resuming from step %d of %d (%s)", start, cfg.steps, ckpt)
        elif state:
            log.info("checkpoint %s is for other examples or settings: starting over", ckpt)
    model.train()
    t0 = time.perf_counter()
    step = start
    done_here = 0
    while step < cfg.steps:
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        total = 0.0
        for i in order[step * cfg.batch:(step + 1) * cfg.batch]:
            ids, n_prompt = data[i]
            x = torch.tensor([ids])
            labels = x.clone()
            labels[0, :n_prompt] = -100
            loss = model(input_ids=x, labels=labels).loss / cfg.batch
            loss.backward()
            total += float(loss.detach())
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        step += 1
        done_here += 1
        loss_ema = total if math.isnan(loss_ema) else 0.8 * loss_ema + 0.2 * total
        if progress:
            progress(Progress(step, cfg.steps, loss_ema, time.perf_counter() - t0, start))
        if step % cfg.checkpoint_every == 0 or step == cfg.steps or (stop_after and done_here >= stop_after):
            lora = {k: v.detach().clone() for k, v in model.state_dict().items() if "lora_" in k}
            _save_checkpoint(torch, work, {"digest": digest, "step": step, "loss": loss_ema, "lora": lora,
                                           "optimizer": opt.state_dict(), "torch_rng": torch.get_rng_state()})
        if stop_after and done_here >= stop_after and step < cfg.steps:
            raise Interrupted(step, cfg.steps)
    elapsed = time.perf_counter() - t0
    lora = {k: v.detach().float().numpy().copy() for k, v in model.state_dict().items() if "lora_" in k}
    c = model.config
    return TrainResult(lora=lora, steps=cfg.steps, resumed_from=start, examples=len(data), skipped_long=long_,
                       train_s=round(elapsed, 2), seconds_per_step=round(elapsed / max(1, step - start), 3),
                       final_loss=round(loss_ema, 4), peak_rss_mb=round(_peak_rss_mb(), 1), arch=arch,
                       n_layers=c.num_hidden_layers, n_head=c.num_attention_heads,
                       n_head_kv=getattr(c, "num_key_value_heads", c.num_attention_heads))


class Interrupted(SovragError):
    """Training stopped before its last step; the checkpoint holds the progress and a rerun resumes."""

    def __init__(self, step: int, steps: int) -> None:
        super().__init__(f"training stopped at step {step} of {steps}; run the same command again to resume")
        self.step = step
