"""The one rule for where a tenant's collections live in the store: `t<tenant id>--<name>`.

Every lookup of a tenant's collection goes through its own prefix, so another tenant's collection is simply
not found and retrieval can never reach it; the API and the CLI's `--tenant` show only the user's name.
"""

from __future__ import annotations

import re

#: Store names are at most this long (the embedded engine's folder names stay portable).
MAX_STORE_NAME = 64

_TENANT_NAME = re.compile(r"^t(\d+)--(.+)$")


def prefix(tenant_id: int) -> str:
    return f"t{tenant_id}--"


def store_name(tenant_id: int, name: str) -> str:
    """The store's name for a tenant's collection `name`."""
    return prefix(tenant_id) + name


def split_store_name(store_name: str) -> tuple[int, str] | None:
    """(tenant id, collection name) for a tenant's store name; None for a plain (CLI) collection."""
    m = _TENANT_NAME.match(store_name)
    return (int(m.group(1)), m.group(2)) if m else None
