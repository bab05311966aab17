"""Helpers for the ingest tests: the real MiniLM tokenizer as a token counter."""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

from tokenizers import Tokenizer

from sovrag.models.registry import resolve_file


def models_dir_for_tests() -> Path:
    env = os.environ.get("SOVRAG_TEST_MODELS_DIR")
    return Path(env) if env else Path.home() / ".cache" / "sovrag-test-models"


@lru_cache(maxsize=1)
def _tokenizer() -> Tokenizer:
    tok = Tokenizer.from_file(str(resolve_file(models_dir_for_tests(), "minilm-l6-v2", "tokenizer.json")))
    # tokenizer.json truncates at the model's window (and may pad): a counter must see every token.
    tok.no_truncation()
    tok.no_padding()
    return tok


def count_tokens_factory() -> Callable[[str], int]:
    """len(ids) without [CLS]/[SEP], as the chunker budgets text (fetches the model on first use)."""
    tok = _tokenizer()
    return lambda t: len(tok.encode(t, add_special_tokens=False).ids)
