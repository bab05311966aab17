"""Server settings beyond sovrag's Settings: limits, rate limits and the admin key, from SOVRAG_SERVE_*."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path

from sovrag.config import read_section
from sovrag.errors import ConfigError

ADMIN_KEY_ENV = "SOVRAG_ADMIN_KEY"
_PREFIX = "SOVRAG_SERVE_"


@dataclass(frozen=True)
class ServerOptions:
    admin_key: str = ""
    #: A separate key for Prometheus to scrape /metrics with (the admin key works too).
    metrics_key: str = ""
    #: Upload limits: one file, one request (all files together), files per request.
    max_upload_file_mb: float = 50.0
    max_upload_request_mb: float = 200.0
    max_upload_files: int = 100
    #: JSON request bodies (chat, search, embeddings) larger than this are refused with 413.
    max_json_mb: float = 4.0
    #: Default per-key limit; each key may have its own, set when the key is created.
    rate_limit_rpm: int = 120
    #: Chat requests waiting for the local LLM beyond this are refused with 503.
    llm_queue_max: int = 32
    #: Default and ceiling for max_tokens of a chat completion.
    default_max_tokens: int = 256
    max_tokens_limit: int = 2048
    embeddings_max_inputs: int = 256
    #: Tokens per input and per request of /v1/embeddings, and per search query; over them is a 413 naming
    #: the limit (one CJK or punctuation character is one token: a 4 MB body could cost half an hour of CPU).
    embeddings_max_input_tokens: int = 8192
    embeddings_max_request_tokens: int = 65536
    search_max_query_tokens: int = 512
    #: Work per key and minute, in embedder tokens (embeddings, search and chat questions), on top of
    #: rate_limit_rpm: requests are not all the same size.
    rate_limit_tpm: int = 500_000
    #: Failed sign-ins (wrong, revoked or malformed keys) per client address and minute before 429s.
    auth_failures_per_minute: int = 30
    #: Slow clients: seconds to send complete request headers, seconds a request body may stall, and open
    #: connections at most (0 = automatic: below the process's file-descriptor limit).
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    max_connections: int = 0
    #: Seconds a shutdown waits for the running ingestion job before aborting it.
    shutdown_grace_s: float = 30.0
    #: Threads for synchronous routes (search, embeddings, uploads); the LLM waits without holding one.
    threadpool: int = 64
    #: More LLMs a client may choose (comma-separated specs or profiles, e.g. "quality"), besides the `llm`
    #: setting (the default); each loads on first use, and they take turns generating on this machine's cores.
    llms: str = ""
    #: Generations sent at once to each remote LLM host (openai://...; a '|'-joined pool: this many per host); the
    #: local llama.cpp model always runs one at a time.
    remote_llm_parallel: int = 8
    #: The server database: empty for SQLite in the data directory (one server process), or postgresql://... for
    #: several workers that behave as one service (keys, rate limits, jobs and uploads shared).
    database: str = ""
    #: Where uploaded files are kept; every worker on one database must see the same folder (empty: the data
    #: directory's tenants/ folder).
    uploads_dir: str = ""
    #: Ingestion jobs this worker runs at a time (0: an API-only worker that takes no jobs).
    ingest_workers: int = 1
    #: Seconds a running job may go without its worker's heartbeat before another worker takes it over.
    job_lease_s: float = 30.0

    def extra_llms(self) -> list[str]:
        return [s.strip() for s in self.llms.split(",") if s.strip()]

    @classmethod
    def from_env(cls, config_file: Path | None = None, **overrides: object) -> ServerOptions:
        """Defaults < the [serve] table of the settings file < SOVRAG_SERVE_* env vars (and SOVRAG_ADMIN_KEY) <
        overrides."""
        values: dict[str, object] = {}
        if config_file is not None:
            types = {f.name: f.type for f in fields(cls)}
            for key, value in read_section(config_file, "serve").items():
                if key not in types:
                    raise ConfigError(f"config file {config_file}: unknown [serve] setting {key!r}; known: "
                                      f"{sorted(types)}")
                expected = {"str": (str,), "int": (int,), "float": (int, float)}[str(types[key])]
                if isinstance(value, bool) or not isinstance(value, expected):
                    raise ConfigError(f"config file {config_file}: [serve] {key} = {value!r}: expected {types[key]}")
                values[key] = float(value) if types[key] == "float" else value
        for f in fields(cls):
            env = os.environ.get(ADMIN_KEY_ENV if f.name == "admin_key" else _PREFIX + f.name.upper())
            if env:
                try:
                    values[f.name] = env if f.type == "str" else (int(env) if f.type == "int" else float(env))
                except ValueError as e:
                    raise ConfigError(f"setting {_PREFIX}{f.name.upper()}={env!r}: expected {f.type}") from e
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]

    def check(self) -> ServerOptions:
        if len(self.admin_key) < 16:
            raise ConfigError(
                f"admin key: {ADMIN_KEY_ENV} is {'missing' if not self.admin_key else 'shorter than 16 characters'};"
                f" set it to a long random secret, e.g. export {ADMIN_KEY_ENV}=$(openssl rand -hex 24)"
            )
        for name in ("remote_llm_parallel", "max_upload_file_mb", "max_upload_request_mb", "max_upload_files",
                     "rate_limit_rpm", "llm_queue_max", "default_max_tokens", "max_json_mb", "max_tokens_limit",
                     "embeddings_max_inputs", "threadpool", "embeddings_max_input_tokens",
                     "embeddings_max_request_tokens", "search_max_query_tokens", "rate_limit_tpm",
                     "auth_failures_per_minute", "header_timeout_s", "body_timeout_s"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"setting {name}={getattr(self, name)}: must be positive")
        if self.max_connections < 0:
            raise ConfigError(f"setting max_connections={self.max_connections}: must be 0 (automatic) or positive")
        if self.ingest_workers < 0:
            raise ConfigError(f"setting ingest_workers={self.ingest_workers}: must be 0 (API only) or more")
        if self.job_lease_s < 3:
            raise ConfigError(f"setting job_lease_s={self.job_lease_s}: must be at least 3 seconds")
        if self.shutdown_grace_s < 0:
            raise ConfigError(f"setting shutdown_grace_s={self.shutdown_grace_s}: must not be negative")
        if self.default_max_tokens > self.max_tokens_limit:  # else every chat without max_tokens is refused
            raise ConfigError(f"setting default_max_tokens={self.default_max_tokens}: over max_tokens_limit="
                              f"{self.max_tokens_limit}")
        if self.metrics_key and len(self.metrics_key) < 16:
            raise ConfigError(f"metrics key: {_PREFIX}METRICS_KEY is shorter than 16 characters; use a long random "
                              "secret")
        return self
