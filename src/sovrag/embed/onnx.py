"""A sentence-transformers style embedder (mean pooling + L2 norm) on onnxruntime; no torch.

Texts longer than the model's window are split into windows whose embeddings are averaged, weighted by
token count, so a whole-document chunk is represented by all of its text, not only its first page.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from sovrag.embed.base import normalize
from sovrag.errors import EmbedError
from sovrag.machine import available_cores


class OnnxEmbedder:
    def __init__(
        self,
        model_path: Path,
        tokenizer_path: Path,
        name: str,
        max_tokens: int = 256,
        batch_size: int = 32,
        threads: int = 0,
    ) -> None:
        from sovrag import offline

        if offline.ORT_LOADED_WITH_TELEMETRY:
            raise EmbedError(
                "onnxruntime was imported before sovrag without ORT_DISABLE_TELEMETRY=1, so its telemetry to "
                "Microsoft is already on in this process; import sovrag first or set ORT_DISABLE_TELEMETRY=1"
            )
        import onnxruntime as ort
        from tokenizers import Tokenizer

        for p, what in ((model_path, "ONNX model"), (tokenizer_path, "tokenizer.json")):
            if not Path(p).is_file():
                raise EmbedError(f"{what} {p}: file not found")
        try:
            self.tokenizer = Tokenizer.from_file(str(tokenizer_path))
        except Exception as e:
            raise EmbedError(f"tokenizer {tokenizer_path}: cannot load ({e})") from e
        self.tokenizer.no_truncation()
        self.tokenizer.no_padding()
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or available_cores()
        opts.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(str(model_path), opts, providers=["CPUExecutionProvider"])
        except Exception as e:
            raise EmbedError(f"ONNX model {model_path}: cannot load ({e})") from e
        self.input_names = {i.name for i in self.session.get_inputs()}
        out = self.session.get_outputs()[0]
        self._dim = int(out.shape[-1])
        self.name = name
        self.max_tokens = max_tokens
        self.batch_size = batch_size
        self.cls_id = self.tokenizer.token_to_id("[CLS]")
        self.sep_id = self.tokenizer.token_to_id("[SEP]")

    @property
    def dim(self) -> int:
        return self._dim

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False).ids)

    def _windows(self, texts: Sequence[str]) -> tuple[list[list[int]], list[int]]:
        """Token id windows (with [CLS]/[SEP]) and, for each window, the index of its text."""
        body = self.max_tokens - 2
        windows: list[list[int]] = []
        owner: list[int] = []
        for i, enc in enumerate(self.tokenizer.encode_batch(list(texts), add_special_tokens=False)):
            ids = enc.ids or []
            for start in range(0, max(len(ids), 1), body):
                windows.append([self.cls_id, *ids[start : start + body], self.sep_id])
                owner.append(i)
        return windows, owner

    def _run(self, windows: list[list[int]]) -> np.ndarray:
        n = len(windows)
        width = max(len(w) for w in windows)
        ids = np.zeros((n, width), dtype=np.int64)
        mask = np.zeros((n, width), dtype=np.int64)
        for r, w in enumerate(windows):
            ids[r, : len(w)] = w
            mask[r, : len(w)] = 1
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self.input_names:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = self.session.run(None, feeds)[0]
        summed = (hidden * mask[..., None]).sum(axis=1)
        return summed / mask.sum(axis=1, keepdims=True)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        windows, owner = self._windows(texts)
        # Sort by length so each batch pads little; restore order afterwards.
        order = sorted(range(len(windows)), key=lambda k: len(windows[k]))
        pooled = np.zeros((len(windows), self.dim), dtype=np.float32)
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            pooled[idx] = self._run([windows[k] for k in idx])
        if len(windows) == len(texts):
            return normalize(pooled)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        weights = np.array([len(w) - 2 for w in windows], dtype=np.float32)
        np.add.at(out, owner, normalize(pooled) * weights[:, None])
        return normalize(out)
