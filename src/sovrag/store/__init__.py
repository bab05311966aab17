"""Vector stores behind one protocol, chosen by one spec string (txtai-style factory).

- `qdrant-edge`               embedded Qdrant engine under DATA_DIR/collections (default)
- `qdrant-edge:/some/dir`     embedded, collections under that folder
- `qdrant://host:6333`        a Qdrant server or cluster over HTTP (`qdrants://` for TLS); the API key
                              is read from SOVRAG_QDRANT_API_KEY
- `qdrant-local:/some/dir`    qdrant-client's local mode (`qdrant-local::memory:` in memory): the server
                              adapter without a server, used by the conformance tests
- `postgresql://user@host/db` PostgreSQL with pgvector (`pip install 'sovrag[postgres]'`); libpq's URL and
                              environment (PGPASSWORD, ~/.pgpass, sslmode=...) apply
"""

from __future__ import annotations

import os
from pathlib import Path

from sovrag.config import redact_url
from sovrag.errors import ConfigError
from sovrag.store.base import (
    SEARCH_MODES,
    DocumentState,
    Filters,
    SearchMode,
    SearchQuery,
    Store,
    StoreBackend,
)

__all__ = [
    "SEARCH_MODES",
    "DocumentState",
    "Filters",
    "SearchMode",
    "SearchQuery",
    "Store",
    "StoreBackend",
    "open_backend",
]


def open_backend(spec: str, data_dir: Path) -> StoreBackend:
    scheme, _, rest = spec.partition(":")
    if scheme == "qdrant-edge":
        from sovrag.store.qdrant_edge import EdgeBackend

        root = Path(rest).expanduser() if rest else data_dir / "collections"
        return EdgeBackend(root, spec)
    if scheme in ("qdrant", "qdrants", "qdrant-local"):
        from qdrant_client import QdrantClient

        from sovrag.store.qdrant_server import QdrantServerBackend, ReachableClient

        if scheme == "qdrant-local":
            if not rest:
                raise ConfigError(f"store {spec!r}: give a folder or :memory: after 'qdrant-local:'")
            client = QdrantClient(location=":memory:") if rest == ":memory:" else QdrantClient(path=rest)
        else:
            https = scheme == "qdrants"
            url = ("https" if https else "http") + spec[len(scheme):]
            client = ReachableClient(QdrantClient(url=url, api_key=os.environ.get("SOVRAG_QDRANT_API_KEY") or None,
                                                  timeout=60), url)
        return QdrantServerBackend(client, spec)  # type: ignore[arg-type]
    if scheme in ("postgresql", "postgres"):
        try:
            from sovrag.store.pgvector import PgvectorBackend
        except ImportError as e:
            raise ConfigError(f"store {redact_url(spec)!r}: the PostgreSQL store needs its extra: "
                              f"pip install 'sovrag[postgres]' ({e})") from e
        return PgvectorBackend(spec)
    raise ConfigError(
        f"store {spec!r}: unknown kind {scheme!r} (expected qdrant-edge, qdrant://host:port, qdrant-local:DIR or "
        "postgresql://user@host/db)"
    )

