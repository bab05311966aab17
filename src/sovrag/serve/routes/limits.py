"""What one request may cost: token caps on embedding inputs and queries, and the per-key work allowance.

Requests differ in cost by orders of magnitude (one CJK or punctuation character is one embedder token, and
a legal 4 MB JSON body is millions of them), so limits count tokens, the unit the CPU pays in, and a key's
work per minute is charged in the same unit (`rate_limit_tpm`) on top of its requests per minute.
"""

from __future__ import annotations

import math

from sovrag.embed import Embedder
from sovrag.serve.apierror import APIError
from sovrag.serve.context import ServerContext
from sovrag.serve.services.keys import Principal


def token_count(embedder: Embedder, text: str) -> int:
    """Tokens of `text` for the embedder."""
    return int(embedder.count_tokens(text))


def charge_work(ctx: ServerContext, me: Principal, tokens: int) -> None:
    """Spend `tokens` of the key's work allowance (rate_limit_tpm), or refuse the request with 429."""
    tpm = ctx.options.rate_limit_tpm
    wait = ctx.limiter.take(me.key_id, tpm, float(tokens), kind="work")
    if wait > 0:
        raise APIError(429, f"rate limit reached for key {me.key_id}: {tpm} tokens of work per minute "
                       f"(rate_limit_tpm); this request needs {tokens}; retry in {wait:.1f} s",
                       code="rate_limit_exceeded", headers={"Retry-After": str(math.ceil(wait))})


def check_query(ctx: ServerContext, me: Principal, embedder: Embedder, text: str, param: str) -> int:
    """Refuse a search query or question over `search_max_query_tokens` (413), else charge it; its tokens."""
    n = token_count(embedder, text)
    limit = ctx.options.search_max_query_tokens
    if n > limit:
        raise APIError(413, f"'{param}': {n} tokens, over the limit of {limit} for a query "
                       "(search_max_query_tokens); ask a shorter question", code="query_too_large", param=param)
    charge_work(ctx, me, n)
    return n
