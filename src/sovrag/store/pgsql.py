"""The SQL of the pgvector store's searches and filters: every ranking runs inside PostgreSQL, in one statement.

- dense: `ORDER BY embedding <=> q` over pgvector's HNSW index; score = cosine similarity (1 - distance);
- bm25: the postings of the query's terms, each weighted by Qdrant's IDF, ln((N - df + 0.5) / (df + 0.5) + 1),
  counted over the live collection, summed per chunk (Qdrant's BM25 with the IDF modifier);
- hybrid: both lists (`prefetch_limit(top_k)` deep) fused with Qdrant's DBSF (each list's scores normalised by
  its mean +- 3 sample standard deviations; a list of one, or of equal scores, gives 0.5) or RRF
  (1 / (k + rank - 1)), as qdrant-client computes them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from psycopg import sql
from psycopg.types.json import Jsonb

from sovrag.store.base import Filters, SearchPlan, prefetch_limit

#: Columns that filters on these payload keys use (b-tree indexed); any other key is matched in the jsonb payload.
COLUMNS = ("doc_id", "version", "source", "format")


def where(filters: Filters | None, params: dict[str, Any]) -> sql.Composable:
    """A WHERE clause (or nothing) for Qdrant-style filters: key -> value (equal) or list (equal to one of
    them). Values go into `params` under named placeholders, so a clause can appear twice in one statement."""
    if not filters:
        return sql.SQL("")
    parts: list[sql.Composable] = []

    def placeholder(value: Any) -> sql.Composable:
        key = f"f{len(params)}"
        params[key] = value
        return sql.Placeholder(key)

    for key, value in filters.items():
        values = list(value) if isinstance(value, list | tuple | set) else [value]
        if not values:
            parts.append(sql.SQL("false"))
        elif key in COLUMNS:
            parts.append(sql.SQL("{} = ANY({}::text[])").format(sql.Identifier(key),
                                                                placeholder([str(v) for v in values])))
        else:
            ors = [sql.SQL("payload @> {}").format(placeholder(Jsonb({key: v}))) for v in values]
            parts.append(sql.SQL("(") + sql.SQL(" OR ").join(ors) + sql.SQL(")"))
    return sql.SQL(" WHERE ") + sql.SQL(" AND ").join(parts)


def _dense(chunks: sql.Identifier, flt: sql.Composable) -> sql.Composable:
    return (sql.SQL("SELECT id, 1 - (embedding <=> %(q)s) AS score FROM {t}").format(t=chunks) + flt
            + sql.SQL(" ORDER BY embedding <=> %(q)s, id LIMIT %(depth)s"))


def _bm25(chunks: sql.Identifier, postings: sql.Identifier, flt: sql.Composable, filtered: bool) -> sql.Composable:
    # IDF over the whole collection (Qdrant's default scope), whatever the filter.
    scored = sql.SQL(
        "SELECT p.chunk_id AS id, sum(p.weight * qi.w)::float8 AS score FROM {p} p JOIN qi ON p.term = qi.term"
    ).format(p=postings)
    if filtered:
        scored = (sql.SQL("SELECT s.id, s.score FROM ({inner} GROUP BY p.chunk_id) s JOIN {t} c ON c.id = s.id")
                  .format(inner=scored, t=chunks) + flt)
    else:
        scored += sql.SQL(" GROUP BY p.chunk_id")
    return sql.SQL("SELECT id, score FROM ({s}) x ORDER BY score DESC, id LIMIT %(depth)s").format(s=scored)


def _terms(postings: sql.Identifier) -> sql.Composable:
    """CTEs: the query's terms (q), the collection's size (nd: the count the catalog keeps), each term's
    IDF-weighted query weight (qi)."""
    return sql.SQL(
        "q AS (SELECT term, w FROM unnest(%(terms)s::int8[], %(qw)s::float8[]) AS t(term, w)), "
        "nd AS (SELECT chunks::float8 AS n FROM sovrag_collections WHERE id = %(cid)s), "
        "qi AS (SELECT q.term, q.w * ln((nd.n - df.df + 0.5) / (df.df + 0.5) + 1) AS w FROM q CROSS JOIN nd "
        "CROSS JOIN LATERAL (SELECT count(*)::float8 AS df FROM {p} WHERE term = q.term) df)"
    ).format(p=postings)


def _normalised(name: str, fusion: str) -> sql.Composable:
    """A candidate list's scores as fusion sees them (DBSF or RRF), over the CTE `name`."""
    src = sql.Identifier(name)
    if fusion == "rrf":
        return sql.SQL(
            "SELECT id, 1.0 / (%(rrf_k)s + row_number() OVER (ORDER BY score DESC, id) - 1) AS s FROM {src}"
        ).format(src=src)
    return sql.SQL(
        "SELECT id, CASE WHEN n = 1 OR sd IS NULL OR sd = 0 THEN 0.5 ELSE (score - (mu - 3 * sd)) / (6 * sd) "
        "END AS s FROM (SELECT id, score, count(*) OVER () AS n, avg(score) OVER () AS mu, "
        "stddev_samp(score) OVER () AS sd FROM {src}) z"
    ).format(src=src)


def search(chunks: sql.Identifier, postings: sql.Identifier, cid: int, plan: SearchPlan, mode: str, top_k: int,
           filters: Filters | None, fusion: str, rrf_k: int) -> tuple[sql.Composable, dict[str, Any], int]:
    """(statement, its parameters, candidate depth) of one search of collection `cid`; rows are (id, payload,
    score), best first."""
    named: dict[str, Any] = {"k": top_k, "rrf_k": rrf_k, "cid": cid}
    flt = where(filters, named)
    if plan.dense is not None:
        named["q"] = np.asarray(plan.dense, dtype=np.float32)
    if plan.sparse is not None:
        named["terms"], named["qw"] = list(plan.sparse[0]), [float(v) for v in plan.sparse[1]]
    hybrid = mode == "hybrid" and plan.dense is not None and plan.sparse is not None
    named["depth"] = prefetch_limit(top_k) if hybrid else top_k
    dense, sparse = _dense(chunks, flt), _bm25(chunks, postings, flt, bool(filters))
    if hybrid:
        body = (sql.SQL("WITH ") + _terms(postings) + sql.SQL(
            ", d AS ({dense}), b AS ({sparse}), f AS (SELECT id, sum(s) AS score FROM ({nd} UNION ALL {nb}) u "
            "GROUP BY id) SELECT c.id, c.payload, f.score FROM f JOIN {t} c ON c.id = f.id "
            "ORDER BY f.score DESC, c.id LIMIT %(k)s"
        ).format(dense=dense, sparse=sparse, nd=_normalised("d", fusion), nb=_normalised("b", fusion), t=chunks))
    elif plan.dense is not None:
        body = sql.SQL("WITH d AS ({dense}) SELECT c.id, c.payload, d.score FROM d JOIN {t} c ON c.id = d.id "
                       "ORDER BY d.score DESC, c.id").format(dense=dense, t=chunks)
    else:
        body = (sql.SQL("WITH ") + _terms(postings) + sql.SQL(
            ", b AS ({sparse}) SELECT c.id, c.payload, b.score FROM b JOIN {t} c ON c.id = b.id "
            "ORDER BY b.score DESC, c.id").format(sparse=sparse, t=chunks))
    return body, named, int(named["depth"])
