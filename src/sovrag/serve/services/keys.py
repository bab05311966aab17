"""Tenants and API keys (stored as sha256 hashes, shown once, revocable), and the per-key token buckets.

A tenant key (`sk-sovrag-...`) authorises the /v1 routes for its tenant only; the admin key from
SOVRAG_ADMIN_KEY authorises /admin. Keys are looked up by hash, so the database never holds a usable key.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

from sovrag.serve.apierror import APIError
from sovrag.serve.db import PG_CLOCK, Conflict, Database, now

KEY_PREFIX = "sk-sovrag-"


@dataclass(frozen=True)
class Principal:
    tenant_id: int
    key_id: str


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class KeyStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create_tenant(self, name: str) -> dict[str, Any]:
        try:  # the UNIQUE constraint decides: two concurrent creates of one name get 201 and 409, never a 500
            row = self.db.one("INSERT INTO tenants(name, created) VALUES (?, ?) RETURNING id", (name, now()))
        except Conflict as e:
            raise APIError(409, f"tenant {name!r}: already exists", code="tenant_exists", param="name") from e
        assert row is not None
        return self.tenant(int(row["id"]))

    def tenant(self, tenant_id: int) -> dict[str, Any]:
        row = self.db.one("SELECT id, name, created FROM tenants WHERE id = ?", (tenant_id,))
        if row is None:
            raise APIError(404, f"tenant {tenant_id}: not found", code="tenant_not_found")
        return row

    def tenants(self) -> list[dict[str, Any]]:
        return self.db.all(
            "SELECT t.id, t.name, t.created, COUNT(k.id) AS active_keys FROM tenants t LEFT JOIN api_keys k "
            "ON k.tenant_id = t.id AND k.revoked IS NULL GROUP BY t.id ORDER BY t.id")

    def create_key(self, tenant_id: int, name: str = "", rate_limit_rpm: int | None = None,
                   expires: float | None = None) -> dict[str, Any]:
        """A new key (valid until `expires`, unix seconds, if given); the plaintext is in the result and nowhere
        else, ever."""
        self.tenant(tenant_id)
        if expires is not None and expires <= now():
            raise APIError(400, "expires_at: the key would be expired already; give a time in the future",
                           code="invalid_request", param="expires_at")
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        key_id = "key_" + secrets.token_hex(8)
        created = now()
        self.db.run(
            "INSERT INTO api_keys(id, tenant_id, key_hash, prefix, name, rate_limit_rpm, created, expires) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (key_id, tenant_id, hash_key(key), key[: len(KEY_PREFIX) + 4], name, rate_limit_rpm, created, expires))
        return {"id": key_id, "tenant_id": tenant_id, "name": name, "key": key, "rate_limit_rpm": rate_limit_rpm,
                "created": created, "expires": expires}

    def keys(self, tenant_id: int) -> list[dict[str, Any]]:
        """A tenant's keys, newest first, as an admin may see them: never the key, only its first characters."""
        self.tenant(tenant_id)
        rows = self.db.all("SELECT id, tenant_id, name, prefix, rate_limit_rpm, created, expires, revoked "
                           "FROM api_keys WHERE tenant_id = ? ORDER BY created DESC, id", (tenant_id,))
        t = now()
        for r in rows:
            r["state"] = ("revoked" if r["revoked"] is not None else
                          "expired" if r["expires"] is not None and r["expires"] <= t else "active")
        return rows

    def revoke_all(self, tenant_id: int) -> None:
        self.db.run("UPDATE api_keys SET revoked = ? WHERE tenant_id = ? AND revoked IS NULL", (now(), tenant_id))

    def delete_tenant(self, tenant_id: int) -> None:
        """The tenant's keys and record (its collections, files and jobs are the caller's to remove first)."""
        self.tenant(tenant_id)
        self.db.run("DELETE FROM api_keys WHERE tenant_id = ?", (tenant_id,))
        self.db.run("DELETE FROM tenants WHERE id = ?", (tenant_id,))

    def revoke(self, key_id: str) -> None:
        if not self.db.run("UPDATE api_keys SET revoked = ? WHERE id = ? AND revoked IS NULL", (now(), key_id)):
            raise APIError(404, f"api key {key_id!r}: not found or already revoked", code="key_not_found")

    def lookup(self, key: str) -> dict[str, Any] | None:
        return self.db.one(
            "SELECT id, tenant_id, rate_limit_rpm, revoked, expires FROM api_keys WHERE key_hash = ?",
            (hash_key(key),))


def _refill(tokens: float, last: float, per_minute: int, t: float) -> float:
    return min(float(per_minute), tokens + (t - last) * per_minute / 60.0)


def _spend(tokens: float, rpm: int, amount: float) -> tuple[float, float]:
    """(tokens left, seconds to wait): the wait is 0 when `amount` may be spent now (it is then spent).

    An amount larger than the whole bucket passes when the bucket is full and leaves it in debt, so a request
    bigger than a minute's allowance is slow, not impossible."""
    need = min(amount, float(rpm))
    if tokens >= need:
        return tokens - amount, 0.0
    return tokens, (need - tokens) * 60.0 / rpm


#: A bucket untouched this long and not in debt has refilled to its maximum (a bucket holds one minute's worth and
#: refills it in a minute), which is what a missing bucket stands for: it can be forgotten without changing any
#: answer. Without forgetting, every client address that ever asked (the failed-sign-in buckets) stays forever.
IDLE_S = 60.0


class RateLimiter:
    """Token buckets per key: requests a minute, work (embedder tokens) a minute, failed sign-ins per client.

    Each bucket refills continuously at its per-minute rate and holds at most one minute's worth, so bursts
    up to the limit pass and a sustained rate above it waits. This one keeps its buckets in memory: the
    limiter of a single server process."""

    def __init__(self, clock: Any = time.monotonic) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()
        self._clock = clock
        self._next_prune = clock() + IDLE_S

    def _prune(self, t: float) -> None:
        """Forget the full buckets, at most once a minute (under the lock)."""
        if t < self._next_prune:
            return
        self._next_prune = t + IDLE_S
        for bucket in [b for b, (tokens, last) in self._buckets.items() if tokens >= 0 and t - last >= IDLE_S]:
            del self._buckets[bucket]

    def _level(self, bucket: str, per_minute: int, t: float) -> float:
        tokens, last = self._buckets.get(bucket, (float(per_minute), t))
        return _refill(tokens, last, per_minute, t)

    def take(self, key_id: str, rpm: int, amount: float = 1.0, kind: str = "requests") -> float:
        """0 when `amount` may be spent now (it is then spent), else the seconds until it may."""
        t = self._clock()
        bucket = f"{kind}:{key_id}"
        with self._lock:
            self._prune(t)
            left, wait = _spend(self._level(bucket, rpm, t), rpm, amount)
            self._buckets[bucket] = (left, t)
            return wait

    def blocked(self, key_id: str, per_minute: int, kind: str) -> float:
        """Seconds until the bucket holds one token again (0 = not blocked), without spending any."""
        t = self._clock()
        bucket = f"{kind}:{key_id}"
        with self._lock:
            tokens = self._level(bucket, per_minute, t)
            return 0.0 if tokens >= 1.0 else (1.0 - tokens) * 60.0 / per_minute


class SharedRateLimiter:
    """The same buckets in the shared PostgreSQL database, so a limit holds across every worker: each take is one
    transaction that locks its bucket's row and reads the database's clock (one clock for all workers)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._next_prune = time.monotonic() + IDLE_S

    def prune(self) -> int:
        """Delete the full buckets (by the database's clock); the number deleted. A bucket another worker is
        drawing from meanwhile is re-read under its row lock and kept."""
        return self.db.run("DELETE FROM rate_buckets WHERE tokens >= 0 "
                           "AND updated < extract(epoch FROM clock_timestamp()) - ?", (IDLE_S,))

    def _level(self, tx: Any, bucket: str, per_minute: int) -> tuple[float, float]:
        tx.run("INSERT INTO rate_buckets(bucket, tokens, updated) VALUES (?, ?, extract(epoch FROM clock_timestamp())) "
               "ON CONFLICT (bucket) DO NOTHING", (bucket, float(per_minute)))
        row = tx.one("SELECT tokens, updated FROM rate_buckets WHERE bucket = ? FOR UPDATE", (bucket,))
        t = float(tx.one(PG_CLOCK)["t"])
        return _refill(float(row["tokens"]), float(row["updated"]), per_minute, t), t

    def take(self, key_id: str, rpm: int, amount: float = 1.0, kind: str = "requests") -> float:
        bucket = f"{kind}:{key_id}"
        if time.monotonic() >= self._next_prune:  # each worker at most once a minute, outside the bucket's lock
            self._next_prune = time.monotonic() + IDLE_S
            self.prune()
        with self.db.transaction() as tx:
            tokens, t = self._level(tx, bucket, rpm)
            left, wait = _spend(tokens, rpm, amount)
            tx.run("UPDATE rate_buckets SET tokens = ?, updated = ? WHERE bucket = ?", (left, t, bucket))
            return wait

    def blocked(self, key_id: str, per_minute: int, kind: str) -> float:
        with self.db.transaction() as tx:
            tokens, _ = self._level(tx, f"{kind}:{key_id}", per_minute)
        return 0.0 if tokens >= 1.0 else (1.0 - tokens) * 60.0 / per_minute
