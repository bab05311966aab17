"""The reranker: how well does a passage answer a question? A cross-encoder on onnxruntime, no torch.

MiniLM-L6 fine-tuned by `python -m sovrag.train reranker` on HaluEval-QA and BoolQ (question, passage) pairs with
hard negatives mined by sovrag's own hybrid search, exported to int8 ONNX. It reads ``[CLS] question [SEP]
passage [SEP]`` and gives one logit; its sigmoid was trained to say, on its own, whether the passage answers the
question, so the best candidate's probability is also the answerability signal the abstention gate reads.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from sovrag.config import Settings
from sovrag.errors import ModelError
from sovrag.models.registry import sha256

HERE = Path(__file__).resolve().parent
#: The shipped model (trained by `python -m sovrag.train reranker`; recipe and metrics in its manifest).
WEIGHTS = HERE / "weights"


class Reranker:
    """`scores(question, passages)`: one logit per passage; `probability` turns them into P(answers)."""

    def __init__(self, model: Path, tokenizer: Path, max_tokens: int = 256, threads: int | None = None,
                 name: str = "reranker", candidates: int = 20, hybrid_weight: float = 0.0,
                 gate: dict | None = None) -> None:
        for p, what in ((model, "model"), (tokenizer, "tokenizer")):
            if not Path(p).is_file():
                raise ModelError(f"reranker {what} {p}: not found; search without --rerank needs no model")
        import onnxruntime as ort
        from tokenizers import Tokenizer

        try:
            self.tok = Tokenizer.from_file(str(tokenizer))
        except Exception as e:  # noqa: BLE001 - the tokenizers library raises plain Exceptions
            raise ModelError(f"reranker tokenizer {tokenizer}: cannot be read ({e})") from e
        self.tok.no_padding()
        self.tok.enable_truncation(max_length=max_tokens, strategy="longest_first")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or min(4, os.cpu_count() or 1)
        opts.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])
        except Exception as e:  # noqa: BLE001 - onnxruntime raises its own untyped errors
            raise ModelError(f"reranker model {model}: cannot be loaded ({str(e)[:200]}); it may be corrupt: "
                             "reinstall sovrag or retrain it") from e
        self.inputs = {i.name for i in self.session.get_inputs()}
        self.model_path, self.tokenizer_path = Path(model), Path(tokenizer)
        self.max_tokens = max_tokens
        self.name = name
        #: Hybrid search's best this many are reranked; the final order is logit + hybrid_weight * hybrid score.
        self.candidates = candidates
        self.hybrid_weight = hybrid_weight
        #: The abstention gate's calibration (manifest "gate"): per search mode, weights and threshold.
        self.gate = gate or {}

    def scores(self, question: str, passages: Sequence[str], batch: int = 32) -> np.ndarray:
        """One logit per passage, in the passages' order."""
        from sovrag.verifier import pad

        if not passages:
            return np.zeros(0, dtype=np.float32)
        encs = self.tok.encode_batch([(question, p) for p in passages])
        order = sorted(range(len(encs)), key=lambda i: len(encs[i].ids))
        out = np.zeros(len(encs), dtype=np.float32)
        for j in range(0, len(order), batch):
            idx = order[j:j + batch]
            ids, mask, types = pad([encs[i] for i in idx])
            feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
            # onnxruntime's run() is thread-safe: concurrent questions rerank side by side
            (logits,) = self.session.run(["logits"], {k: v for k, v in feed.items() if k in self.inputs})
            out[idx] = logits[:, 0]
        return out

    @staticmethod
    def probability(logits: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-np.asarray(logits, dtype=np.float64)))

    def answerable(self, best_logit: float, best_hybrid: float | None) -> tuple[float, float]:
        """(P(some candidate answers the question), the threshold under which sovrag abstains). `best_hybrid`:
        the best hybrid-search score among the candidates, or None when another search mode found them."""
        g = self.gate.get("hybrid" if best_hybrid is not None else "logit_only")
        if not g:  # an uncalibrated model: its own probability, the conventional threshold
            return float(self.probability(np.array([best_logit]))[0]), 0.5
        return answerable(best_logit, best_hybrid, g), float(g["threshold"])


def answerable(best_logit: float, best_hybrid: float | None, gate: dict) -> float:
    z = gate["bias"] + gate["logit"] * best_logit + gate.get("hybrid", 0.0) * (best_hybrid or 0.0)
    return float(1.0 / (1.0 + np.exp(-z)))


def manifest(weights: Path = WEIGHTS) -> dict:
    path = weights / "manifest.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ModelError(f"reranker manifest {path}: cannot be read ({e})") from e


_LOADED: dict[str, Reranker] = {}
_LOADED_LOCK = threading.Lock()


def load(path: str | Path | None = None) -> Reranker:
    """The shipped reranker (registered in sovrag.models with its pinned sha256), or a `python -m sovrag.train
    reranker` output folder (model.onnx, tokenizer.json, manifest.json). Loaded once per process."""
    from sovrag.models.registry import get_spec, resolve_file

    if path in (None, "", "model"):
        spec = get_spec("reranker")
        model = resolve_file(Path("."), spec.name, "model.onnx")
        tok = resolve_file(Path("."), spec.name, "tokenizer.json")
        folder = model.parent
    else:
        folder = Path(path).expanduser()
        if not folder.is_dir():
            raise ModelError(f"reranker {folder}: not a folder (expected model.onnx, tokenizer.json, manifest.json "
                             "from `python -m sovrag.train reranker`)")
        model, tok = folder / "model.onnx", folder / "tokenizer.json"
    key = str(folder.resolve())
    with _LOADED_LOCK:
        if key not in _LOADED:
            man = manifest(folder)
            if path not in (None, "", "model") and man.get("sha256") and model.is_file() \
                    and sha256(model) != man["sha256"]:
                raise ModelError(f"reranker model {model}: does not match the sha256 in its manifest (corrupt); "
                                 "retrain it")
            _LOADED[key] = Reranker(model, tok, int(man.get("max_tokens", 256)), name=str(man.get("name", "reranker")),
                                    candidates=int(man.get("candidates", 20)),
                                    hybrid_weight=float(man.get("hybrid_weight", 0.0)), gate=man.get("gate"))
        return _LOADED[key]


def reranker_of(settings: Settings) -> Reranker:
    """The reranker the settings name ("model": the shipped one, or a trained folder); "off" means the shipped one
    too here, for a caller that asked to rerank explicitly."""
    return load(None if settings.rerank in ("off", "model") else settings.rerank)
