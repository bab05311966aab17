"""A peft LoRA adapter written as a llama.cpp GGUF adapter, applied at run time on the unchanged quantized model.

The layout follows llama.cpp's `convert_lora_to_gguf.py`: the base tensor's GGUF name with `.lora_a` / `.lora_b`
(`lora_a` is (rank, in), `lora_b` (out, rank), as peft keeps them), `general.type = adapter`, `adapter.type =
lora` and `adapter.lora.alpha` (llama.cpp scales by alpha / rank, like peft). The names come from the `gguf`
package's own map of Hugging Face names to GGUF names. For the `llama` architecture the GGUF converter permutes
the rows of the query and key projections (rotary layout); transformers undoes that when it loads the GGUF, so the
adapter's `lora_b` for those projections is permuted back the same way. sovrag adds the base model's sha256, so
an adapter is never applied to another base.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from sovrag.errors import ModelError

#: GGUF keys sovrag writes beside llama.cpp's own.
BASE_SHA256_KEY = "sovrag.base_sha256"
BASE_NAME_KEY = "sovrag.base_name"


def _permute(w: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's convert_hf_to_gguf permutation of q/k rows (LlamaModel.permute)."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def gguf_tensor_name(arch: str, n_layers: int, hf_module: str) -> str:
    """`model.layers.3.self_attn.q_proj` -> `blk.3.attn_q.weight` for this architecture."""
    import gguf

    enum = next((k for k, v in gguf.MODEL_ARCH_NAMES.items() if v == arch), None)
    if enum is None:
        raise ModelError(f"architecture {arch!r}: unknown to the gguf package; cannot name its adapter tensors")
    name = gguf.get_tensor_name_map(enum, n_layers).get_name(hf_module + ".weight", try_suffixes=(".weight",))
    if name is None:
        raise ModelError(f"{hf_module}: no GGUF tensor of architecture {arch!r} corresponds to it")
    return name


def write_adapter(lora: Mapping[str, np.ndarray], out: Path, *, arch: str, n_layers: int, n_head: int,
                  n_head_kv: int, alpha: float, base_sha256: str, base_name: str) -> int:
    """Write peft's LoRA tensors (`...<module>.lora_A.weight` / `.lora_B.weight`, module names as in the Hugging
    Face model) as a GGUF adapter at `out`; returns the number of tensors written."""
    import gguf

    out.parent.mkdir(parents=True, exist_ok=True)
    w = gguf.GGUFWriter(str(out), arch)
    w.add_string("general.type", "adapter")
    w.add_string("adapter.type", "lora")
    w.add_float32("adapter.lora.alpha", float(alpha))
    w.add_string(BASE_SHA256_KEY, base_sha256)
    w.add_string(BASE_NAME_KEY, base_name)
    count = 0
    for key in sorted(lora):
        if ".lora_A." in key:
            which = "lora_a"
        elif ".lora_B." in key:
            which = "lora_b"
        else:
            continue
        module = key.split(".lora_")[0]
        module = module.removeprefix("base_model.model.")
        t = np.asarray(lora[key], dtype=np.float32)
        if arch == "llama" and which == "lora_b":
            if module.endswith("q_proj"):
                t = _permute(t, n_head)
            elif module.endswith("k_proj"):
                t = _permute(t, n_head_kv)
        w.add_tensor(f"{gguf_tensor_name(arch, n_layers, module)}.{which}", np.ascontiguousarray(t))
        count += 1
    if not count:
        raise ModelError("adapter: no LoRA tensors to write")
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return count
