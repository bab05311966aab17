"""One Settings object, read from defaults, then a TOML file, then SOVRAG_* environment variables.

Later sources win, and explicit CLI flags win over all of them (the CLI passes them as overrides).
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from sovrag.errors import ConfigError


def default_data_dir() -> Path:
    """Per-user data directory, following the XDG base-directory convention."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "sovrag"


@dataclass(frozen=True)
class Settings:
    data_dir: Path = field(default_factory=default_data_dir)
    # Backend spec strings (txtai-style): see sovrag.store.open_store and sovrag.embed.create_embedder.
    store: str = "qdrant-edge"
    embedder: str = "onnx:minilm-l6-v2"
    embed_threads: int = 0  # 0 = the cores this process may use
    embed_batch_size: int = 32
    # Chunks embedded and written together. The embedder sorts them by length before batching, so each batch pads
    # only to its own longest text: from a pool of 64 chunks 40% of the tokens a batch of HaluEval passages ran
    # were padding, from 512 9% (benchmarks/ingest_vs_llamaindex.py). Smaller shows progress sooner.
    ingest_batch_chunks: int = 512
    # Chunking: "recursive" splits by headings/paragraphs/sentences; "document" keeps a document
    # whole when it fits document_max_tokens (for long-context models).
    chunk_mode: str = "recursive"
    chunk_tokens: int = 200
    chunk_overlap: int = 32
    document_max_tokens: int = 8192
    max_file_mb: float = 50.0
    # Bounds on parsing one untrusted file (see sovrag.ingest.isolate): what a DOCX may unpack to, the parser
    # process's address space, and its time per file. A file over any of them fails alone; the batch goes on.
    max_unpacked_mb: float = 256.0
    parse_memory_mb: float = 1024.0
    parse_timeout_s: float = 120.0
    # Bundled models are downloaded by `sovrag models pull`; true lets any command fetch a missing one itself
    # (a network connection to the package index that nothing else would make).
    auto_pull: bool = False
    # A symlink in an ingested folder whose target lies outside that folder is refused unless this is true.
    follow_symlinks_outside: bool = False
    # Generation: `llamacpp:NAME|PATH.gguf` (embedded llama.cpp) or `openai://host:port/v1?model=NAME`.
    llm: str = "llamacpp:qwen2.5-coder-0.5b-instruct-q4_k_m"
    llm_threads: int = 0  # 0 = the cores this process may use
    llm_context: int = 4096  # tokens of context the local model is loaded with
    llm_timeout: float = 120.0  # seconds per request to an HTTP host
    # Speculative decoding in llama.cpp: "ngram" drafts the next tokens from n-grams already in the prompt and
    # the answer (RAG answers copy their sources) and verifies them in one batch. Off by default: measured on 100
    # RAG prompts (benchmarks/speculative.py) it answered 12% sooner with the 0.5B model and no sooner with the
    # 1.5B, and 5 of the 100 answers were worded differently from plain decoding (batched verification rounds
    # differently), so it is not the "same answer, sooner" it should be.
    llm_speculative: str = "off"
    # How answers are checked: "model" (the shipped groundedness verifier), "lexical" (no model), or the folder
    # of a verifier trained by `python -m sovrag.train verifier`; and whether an unsupported sentence is
    # "mark"ed or "withhold"n.
    verify: str = "model"
    unsupported: str = "mark"
    # Retrieval's second stage: "model" (the shipped reranker reorders hybrid search's best 20 and gates
    # abstention on whether the best of them answers), "off", or the folder of a reranker trained by
    # `python -m sovrag.train reranker`.
    rerank: str = "model"

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    def with_overrides(self, **overrides: Any) -> Settings:
        """A copy with the given non-None values applied (None means: flag not given)."""
        return _coerce(replace(self, **{k: v for k, v in overrides.items() if v is not None}))


_ENV_PREFIX = "SOVRAG_"

OPENAI_SCHEMES = ("openai", "openai+http", "openai+https")


def redact_url(url: str) -> str:
    """A URL without its password (postgresql://user:***@host/db), for messages and listings."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if not parts.password:
        return url
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit((parts.scheme, user + host, parts.path, parts.query, parts.fragment))


def parse_openai_spec(spec: str, what: str) -> tuple[str, str]:
    """`openai://host:port/v1?model=NAME` (or openai+https://...) -> (base URL, model name)."""
    from urllib.parse import parse_qs, urlsplit

    u = urlsplit(spec)
    model = (parse_qs(u.query).get("model") or [""])[0]
    if not model or not u.netloc:
        raise ConfigError(f"{what} {spec!r}: expected openai://HOST:PORT/PATH?model=NAME")
    http = "https" if u.scheme == "openai+https" else "http"
    return f"{http}://{u.netloc}{u.path}", model


_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off", "")


def _bool(v: Any) -> bool:
    """A bool from TOML (true/false) or an environment variable (1/0, true/false, yes/no, on/off)."""
    if isinstance(v, bool):
        return v
    text = str(v).strip().lower()
    if text in _TRUE or text in _FALSE:
        return text in _TRUE
    raise ValueError(f"{v!r} is not a yes/no value")


def _coerce(s: Settings) -> Settings:
    values: dict[str, Any] = {}
    for f in fields(Settings):
        v = getattr(s, f.name)
        try:
            if f.name == "data_dir":
                v = Path(v).expanduser()
            elif f.type in ("int",):
                v = int(v)
            elif f.type in ("float",):
                v = float(v)
            elif f.type in ("bool",):
                v = _bool(v)
            else:
                v = str(v)
        except (TypeError, ValueError) as e:
            raise ConfigError(f"setting {f.name}={v!r}: expected {f.type}") from e
        values[f.name] = v
    out = Settings(**values)
    if out.llm_speculative not in ("ngram", "off"):
        raise ConfigError(f"setting llm_speculative={out.llm_speculative!r}: expected 'ngram' or 'off'")
    if out.unsupported not in ("mark", "withhold"):
        raise ConfigError(f"setting unsupported={out.unsupported!r}: expected 'mark' or 'withhold'")
    if out.chunk_mode not in ("recursive", "document"):
        raise ConfigError(f"setting chunk_mode={out.chunk_mode!r}: expected 'recursive' or 'document'")
    if out.ingest_batch_chunks < 1:
        raise ConfigError(f"setting ingest_batch_chunks={out.ingest_batch_chunks}: must be at least 1")
    if out.chunk_tokens < 16:
        raise ConfigError(f"setting chunk_tokens={out.chunk_tokens}: must be at least 16")
    if not 0 <= out.chunk_overlap < out.chunk_tokens:
        raise ConfigError(
            f"setting chunk_overlap={out.chunk_overlap}: must be >= 0 and below chunk_tokens"
        )
    for name in ("max_file_mb", "max_unpacked_mb", "parse_memory_mb", "parse_timeout_s"):
        if getattr(out, name) <= 0:
            raise ConfigError(f"setting {name}={getattr(out, name)}: must be positive")
    return out


#: Tables of the settings file that belong to other parts (``[serve]``: the server's options).
SECTIONS = ("serve",)


def _read_toml(config_file: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(Path(config_file).read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise ConfigError(f"config file {config_file}: not found") from e
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config file {config_file}: invalid TOML ({e})") from e


def read_section(config_file: Path, table: str) -> dict[str, Any]:
    """One table of a settings file (e.g. ``[serve]``), {} when absent."""
    value = _read_toml(config_file).get(table, {})
    if not isinstance(value, dict):
        raise ConfigError(f"config file {config_file}: [{table}] must be a table")
    return value


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Defaults < config file (given, or $SOVRAG_CONFIG) < SOVRAG_* env vars < overrides."""
    names = {f.name for f in fields(Settings)}
    values: dict[str, Any] = {}
    path = config_file or (Path(os.environ["SOVRAG_CONFIG"]) if os.environ.get("SOVRAG_CONFIG") else None)
    if path is not None:
        data = _read_toml(path)
        section = {k: v for k, v in data.get("sovrag", data).items() if k not in SECTIONS}
        unknown = set(section) - names
        if unknown:
            raise ConfigError(f"config file {path}: unknown settings {sorted(unknown)}")
        values.update(section)
    for name in names:
        env = os.environ.get(_ENV_PREFIX + name.upper())
        if env is not None and env != "":
            values[name] = env
    values.update({k: v for k, v in overrides.items() if v is not None})
    return _coerce(Settings(**values))
