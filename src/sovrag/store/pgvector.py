"""PostgreSQL with pgvector: the store for teams whose workers share one database they already run.

Every search is done by PostgreSQL itself, in one SQL statement:
- dense: pgvector's HNSW index (cosine, m=16, ef_construction=100: Qdrant's defaults), with iterative index
  scans when a filter is set so a selective filter still returns `top_k` rows;
- BM25: the same Qdrant BM25 model as the Qdrant backends (sovrag.store.bm25) writes each chunk's term weights
  into a postings table (an inverted index: primary key (term, chunk)); a query weights its terms with
  Qdrant's IDF, ln((N - df + 0.5) / (df + 0.5) + 1), counted over the live collection at query time, and sums
  weight x idf per chunk. So `bm25` ranks exactly as it does in Qdrant, not like PostgreSQL's ts_rank;
- hybrid: both candidate lists fused in SQL with Qdrant's DBSF (each list's scores normalised by its own mean
  +- 3 sample standard deviations; a list of one, or of equal scores, scores 0.5) or RRF (1 / (k + rank - 1)).

Layout: one catalog table `sovrag_collections` (name, id, dim, metadata) and, per collection, a chunk table
`sovrag_chunks_<id>` (id, the filterable fields as columns, the payload as jsonb with a GIN index, the
embedding) and a postings table `sovrag_postings_<id>` whose rows go with their chunk (ON DELETE CASCADE).
A write of a batch is one transaction; schema changes take an advisory lock, so several workers may start
against one empty database at once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import psycopg
from pgvector.psycopg import register_vector
from psycopg import sql
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool, PoolTimeout

from sovrag.config import redact_url
from sovrag.errors import CollectionError, StoreError
from sovrag.store import bm25, pgsql
from sovrag.store.base import (
    DEFAULT_FUSION,
    DEFAULT_RRF_K,
    DocumentState,
    Filters,
    SearchMode,
    SearchQuery,
    check_collection_name,
    check_fusion,
    check_vectors,
    plan_search,
)
from sovrag.store.pgsql import COLUMNS
from sovrag.types import Chunk, ScoredChunk

log = logging.getLogger(__name__)

CATALOG = "sovrag_collections"
#: pgvector's HNSW index takes `vector` columns of at most this many dimensions.
MAX_DIM = 2000
_UPSERT_BATCH = 256
_SCHEMA_LOCK = 0x50F7A6  # pg_advisory_xact_lock key for schema changes
_CONNECT_TIMEOUT_S = 10
_initialised: set[str] = set()
_init_lock = threading.Lock()
#: Keeps each collection's chunk count in the catalog (BM25's IDF needs N on every query; counting 100k rows each
#: time cost more than the rest of the search). Statement-level triggers with transition tables: exact under
#: INSERT ... ON CONFLICT (only inserted rows are in NEW TABLE) and under cascades.
COUNT_FUNCTION = (
    "CREATE OR REPLACE FUNCTION sovrag_count_chunks() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "IF TG_OP = 'INSERT' THEN UPDATE sovrag_collections SET chunks = chunks + (SELECT count(*) FROM new_rows) "
    "WHERE id = TG_ARGV[0]::int; "
    "ELSE UPDATE sovrag_collections SET chunks = chunks - (SELECT count(*) FROM old_rows) WHERE id = TG_ARGV[0]::int; "
    "END IF; RETURN NULL; END $$"
)


def _configure(conn: psycopg.Connection) -> None:
    register_vector(conn)


class PgvectorStore:
    def __init__(
        self, backend: PgvectorBackend, name: str, cid: int, dim: int, fusion: str = DEFAULT_FUSION,
        rrf_k: int = DEFAULT_RRF_K,
    ) -> None:
        self.backend = backend
        self.name = name
        self.dim = dim
        self.fusion = check_fusion(fusion)
        self.rrf_k = rrf_k
        self.cid = cid
        self.chunks_t = sql.Identifier(f"sovrag_chunks_{cid}")
        self.post_t = sql.Identifier(f"sovrag_postings_{cid}")

    @contextmanager
    def _cursor(self, what: str) -> Iterator[psycopg.Cursor]:
        with self.backend.connection() as conn:
            try:
                with conn.transaction(), conn.cursor() as cur:
                    yield cur
            except psycopg.errors.UndefinedTable as e:
                raise CollectionError(f"collection {self.name!r}: no longer exists in {self.backend.spec} "
                                      "(dropped by another process?)") from e
            except psycopg.OperationalError:
                raise
            except psycopg.Error as e:
                raise StoreError(f"collection {self.name!r}: PostgreSQL {what} failed "
                                 f"({str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__})") from e

    def upsert(self, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        check_vectors(chunks, vectors, self.dim)
        insert = sql.SQL(
            "INSERT INTO {t} (id, doc_id, version, source, format, payload, embedding) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO UPDATE SET doc_id = EXCLUDED.doc_id, "
            "version = EXCLUDED.version, source = EXCLUDED.source, format = EXCLUDED.format, "
            "payload = EXCLUDED.payload, embedding = EXCLUDED.embedding"
        ).format(t=self.chunks_t)
        drop_postings = sql.SQL("DELETE FROM {p} WHERE chunk_id = ANY(%s::uuid[])").format(p=self.post_t)
        add_postings = sql.SQL(
            "INSERT INTO {p} (term, chunk_id, weight) SELECT * FROM unnest(%s::int8[], %s::uuid[], %s::float4[]) "
            "ON CONFLICT DO NOTHING"
        ).format(p=self.post_t)
        for start in range(0, len(chunks), _UPSERT_BATCH):
            batch = chunks[start : start + _UPSERT_BATCH]
            vecs = vectors[start : start + _UPSERT_BATCH]
            rows, terms, owners, weights = [], [], [], []
            for chunk, vec in zip(batch, vecs, strict=True):
                payload = chunk.payload()
                rows.append((chunk.id, chunk.doc_id, chunk.version, chunk.source, chunk.format, Jsonb(payload),
                             np.asarray(vec, dtype=np.float32)))
                idx, val = bm25.encode_document(chunk.text)
                terms.extend(idx)
                owners.extend([chunk.id] * len(idx))
                weights.extend(val)
            with self._cursor("upsert") as cur:
                cur.executemany(insert, rows)
                cur.execute(drop_postings, ([r[0] for r in rows],))
                cur.execute(add_postings, (terms, owners, weights))

    def delete_document(self, doc_id: str, keep_version: str | None = None) -> None:
        query = sql.SQL("DELETE FROM {t} WHERE doc_id = %s").format(t=self.chunks_t)
        params: list[Any] = [doc_id]
        if keep_version:
            query += sql.SQL(" AND version IS DISTINCT FROM %s")
            params.append(keep_version)
        with self._cursor("delete") as cur:
            cur.execute(query, params)

    def count(self, filters: Filters | None = None) -> int:
        params: dict[str, Any] = {}
        where = pgsql.where(filters, params)
        with self._cursor("count") as cur:
            cur.execute(sql.SQL("SELECT count(*) FROM {t}").format(t=self.chunks_t) + where, params)
            return int(cur.fetchone()[0])

    def documents(self) -> dict[str, DocumentState]:
        with self._cursor("documents") as cur:
            cur.execute(sql.SQL(
                "SELECT doc_id, version, count(*), max((payload->>'chunk_count')::int) FROM {t} GROUP BY 1, 2"
            ).format(t=self.chunks_t))
            present: dict[str, dict[str, int]] = {}
            expected: dict[str, dict[str, int]] = {}
            for doc, ver, n, total in cur.fetchall():
                present.setdefault(doc, {})[ver] = int(n)
                expected.setdefault(doc, {})[ver] = int(total if total is not None else -1)
        return {d: DocumentState(d, present[d], expected[d]) for d in present}

    def chunks(self, filters: Filters | None = None, limit: int = 1000) -> list[Chunk]:
        params: dict[str, Any] = {"limit": limit}
        where = pgsql.where(filters, params)
        query = (sql.SQL("SELECT id, payload FROM {t}").format(t=self.chunks_t) + where
                 + sql.SQL(" ORDER BY doc_id, (payload->>'chunk_index')::int, id LIMIT %(limit)s"))
        with self._cursor("chunks") as cur:
            cur.execute(query, params)
            return [Chunk.from_payload(str(i), p) for i, p in cur.fetchall()]

    def optimize(self) -> None:
        """HNSW and the postings index are maintained on every write; VACUUM ANALYZE after a large ingestion
        refreshes the planner's statistics and the visibility map, so BM25 reads its postings from the index alone
        (autovacuum gets there too, later)."""
        with self.backend.connection() as conn:
            conn.autocommit = True  # VACUUM runs outside a transaction
            try:
                for table in (self.chunks_t, self.post_t):
                    conn.execute(sql.SQL("VACUUM (ANALYZE) {t}").format(t=table))
            except psycopg.errors.UndefinedTable as e:
                raise CollectionError(f"collection {self.name!r}: no longer exists in {self.backend.spec}") from e
            finally:
                conn.autocommit = False

    # -- search ---------------------------------------------------------------------------------------------

    def search(
        self, query: SearchQuery, top_k: int = 10, mode: SearchMode = "hybrid", filters: Filters | None = None
    ) -> list[ScoredChunk]:
        plan = plan_search(query, mode, top_k, self.dim)
        if plan.empty:
            return []
        statement, params, depth = pgsql.search(self.chunks_t, self.post_t, self.cid, plan, mode, top_k, filters,
                                                self.fusion, self.rrf_k)
        with self._cursor("search") as cur:
            if plan.dense is not None:
                ef = str(min(1000, max(100, depth)))
                # Unfiltered, the HNSW index is always the fast way; PostgreSQL's planner prices a few thousand rows'
                # sequential scan below it (measured: 9 ms vs 2 ms at 2,938 chunks). Filtered, the planner's choice
                # between HNSW (with iterative scans) and a b-tree stays.
                cur.execute("SELECT set_config('hnsw.ef_search', %s, true), "
                            "set_config('hnsw.iterative_scan', %s, true), set_config('enable_seqscan', %s, true)",
                            (ef, "strict_order" if filters else "off", "on" if filters else "off"))
            cur.execute(statement, params)
            rows = cur.fetchall()
        return [ScoredChunk(Chunk.from_payload(str(i), p), float(s), rank)
                for rank, (i, p, s) in enumerate(rows, start=1)]

    def flush(self) -> None:
        """Every write is committed before upsert/delete returns: nothing is buffered."""

    def close(self) -> None:
        """Connections belong to the backend's pool; they are closed there."""


class PgvectorBackend:
    """Collections in one PostgreSQL database (the pgvector extension is created if the role may)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.spec = redact_url(url)
        self._bootstrap()
        self.pool = ConnectionPool(url, min_size=1, max_size=8, open=False, configure=_configure,
                                   kwargs={"connect_timeout": _CONNECT_TIMEOUT_S}, name="sovrag-pgvector")
        try:
            self.pool.open(wait=True, timeout=_CONNECT_TIMEOUT_S)
        except PoolTimeout as e:
            self.pool.close()
            raise StoreError(f"PostgreSQL at {self.spec}: no connection within {_CONNECT_TIMEOUT_S} s") from e

    def _unreachable(self, e: Exception) -> StoreError:
        reason = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
        return StoreError(f"PostgreSQL at {self.spec}: unreachable ({reason}); is it running, and is --store right?")

    def _bootstrap(self) -> None:
        """The vector extension and the catalog table, created once per database (under a lock, so workers
        starting together do not race)."""
        with _init_lock:
            if self.url in _initialised:
                return
            try:
                conn = psycopg.connect(self.url, connect_timeout=_CONNECT_TIMEOUT_S, autocommit=False)
            except psycopg.OperationalError as e:
                raise self._unreachable(e) from e
            try:
                with conn.transaction(), conn.cursor() as cur:
                    cur.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
                    cur.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'")
                    if cur.fetchone() is None:
                        try:
                            with conn.transaction():
                                cur.execute("CREATE EXTENSION IF NOT EXISTS vector")
                        except psycopg.Error as e:
                            raise StoreError(
                                f"PostgreSQL at {self.spec}: the pgvector extension is not installed in this database "
                                f"and could not be created ({str(e).strip().splitlines()[0]}); install pgvector on the "
                                "server and run CREATE EXTENSION vector as its owner"
                            ) from e
                    cur.execute(sql.SQL(
                        "CREATE TABLE IF NOT EXISTS {c} (id serial UNIQUE, name text PRIMARY KEY, dim int NOT NULL, "
                        "meta jsonb NOT NULL, created_at timestamptz NOT NULL DEFAULT now(), "
                        "chunks bigint NOT NULL DEFAULT 0)"
                    ).format(c=sql.Identifier(CATALOG)))
                    cur.execute(COUNT_FUNCTION)
            finally:
                conn.close()
            _initialised.add(self.url)

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        try:
            with self.pool.connection(timeout=_CONNECT_TIMEOUT_S * 3) as conn:
                yield conn
        except PoolTimeout as e:
            raise self._unreachable(e) from e
        except psycopg.OperationalError as e:
            raise self._unreachable(e) from e

    def _row(self, name: str) -> tuple[int, int, dict[str, Any]] | None:
        with self.connection() as conn:
            row = conn.execute(sql.SQL("SELECT id, dim, meta FROM {c} WHERE name = %s").format(
                c=sql.Identifier(CATALOG)), (name,)).fetchone()
            conn.commit()
        return (int(row[0]), int(row[1]), dict(row[2])) if row else None

    def list(self) -> list[str]:
        with self.connection() as conn:
            names = [r[0] for r in conn.execute(sql.SQL("SELECT name FROM {c} ORDER BY name").format(
                c=sql.Identifier(CATALOG))).fetchall()]
            conn.commit()
        return names

    def exists(self, name: str) -> bool:
        return self._row(check_collection_name(name)) is not None

    def meta(self, name: str) -> dict[str, Any]:
        row = self._row(check_collection_name(name))
        if row is None:
            known = ", ".join(self.list()) or "none"
            raise CollectionError(f"collection {name!r}: does not exist in {self.spec} (collections: {known})")
        _, dim, meta = row
        return {**meta, "dim": dim}

    def create(self, name: str, dim: int, meta: dict[str, Any]) -> PgvectorStore:
        check_collection_name(name)
        if not 1 <= dim <= MAX_DIM:
            raise CollectionError(f"collection {name!r}: {dim} dimensions; pgvector's HNSW index takes 1 to {MAX_DIM}")
        with self.connection() as conn, conn.transaction(), conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            cur.execute(sql.SQL("INSERT INTO {c} (name, dim, meta) VALUES (%s, %s, %s) ON CONFLICT (name) DO NOTHING "
                                "RETURNING id").format(c=sql.Identifier(CATALOG)), (name, dim, Jsonb(meta)))
            row = cur.fetchone()
            if row is None:
                raise CollectionError(f"collection {name!r}: already exists in {self.spec}")
            cid = int(row[0])
            t, p = sql.Identifier(f"sovrag_chunks_{cid}"), sql.Identifier(f"sovrag_postings_{cid}")
            cur.execute(sql.SQL(
                "CREATE TABLE {t} (id uuid PRIMARY KEY, doc_id text NOT NULL, version text, source text, format text, "
                "payload jsonb NOT NULL, embedding vector({dim}) NOT NULL)").format(t=t, dim=sql.Literal(dim)))
            cur.execute(sql.SQL("CREATE INDEX ON {t} USING hnsw (embedding vector_cosine_ops) "
                                "WITH (m = 16, ef_construction = 100)").format(t=t))
            for col in COLUMNS:
                cur.execute(sql.SQL("CREATE INDEX ON {t} ({col})").format(t=t, col=sql.Identifier(col)))
            cur.execute(sql.SQL("CREATE INDEX ON {t} USING gin (payload jsonb_path_ops)").format(t=t))
            cur.execute(sql.SQL(
                "CREATE TABLE {p} (term int8 NOT NULL, chunk_id uuid NOT NULL REFERENCES {t} (id) ON DELETE CASCADE, "
                "weight float4 NOT NULL, PRIMARY KEY (term, chunk_id) INCLUDE (weight))").format(p=p, t=t))
            cur.execute(sql.SQL("CREATE INDEX ON {p} (chunk_id)").format(p=p))
            for event, table in (("INSERT", "NEW TABLE AS new_rows"), ("DELETE", "OLD TABLE AS old_rows")):
                cur.execute(sql.SQL("CREATE TRIGGER {name} AFTER {event} ON {t} REFERENCING {table} FOR EACH STATEMENT "
                                    "EXECUTE FUNCTION sovrag_count_chunks({cid})").format(
                    name=sql.Identifier(f"sovrag_count_{event.lower()}"), event=sql.SQL(event), t=t,
                    table=sql.SQL(table), cid=sql.Literal(cid)))
        return PgvectorStore(self, name, cid, dim)

    def open(self, name: str) -> PgvectorStore:
        row = self._row(check_collection_name(name))
        if row is None:
            self.meta(name)  # raises the error that lists the collections
        assert row is not None
        cid, dim, _ = row
        return PgvectorStore(self, name, cid, dim)

    def drop(self, name: str) -> None:
        check_collection_name(name)
        with self.connection() as conn, conn.transaction(), conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            cur.execute(sql.SQL("DELETE FROM {c} WHERE name = %s RETURNING id").format(c=sql.Identifier(CATALOG)),
                        (name,))
            row = cur.fetchone()
            if row is None:
                raise CollectionError(f"collection {name!r}: does not exist in {self.spec}")
            cid = int(row[0])
            cur.execute(sql.SQL("DROP TABLE IF EXISTS {p}, {t}").format(
                p=sql.Identifier(f"sovrag_postings_{cid}"), t=sql.Identifier(f"sovrag_chunks_{cid}")))

    def close(self) -> None:
        self.pool.close()
