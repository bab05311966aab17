"""The server's own records: tenants, API keys, jobs, uploaded files, feedback, rate-limit buckets.

Chunks and vectors live in the store; this database holds only what the store cannot: who may call, what
was uploaded, and how ingestion jobs went. Two engines behind one small interface (`one`, `all`, `run`,
`transaction`; `?` placeholders):

- SQLite (`data_dir/server.db`, WAL), the embedded default for one server process: one connection shared
  under a lock is plenty for these small, short statements.
- PostgreSQL (`[serve] database = "postgresql://..."`), for several `sovrag serve` workers behaving as one
  service: a key made through one works on all, rate limits are drawn from shared buckets, and ingestion jobs
  are a queue any worker takes (services/jobs.py).

The schema is Alembic's (serve/migrations), migrated at startup on both engines; on PostgreSQL under an
advisory lock, so workers starting together migrate once.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from sovrag.config import redact_url
from sovrag.errors import ConfigError

MIGRATIONS = Path(__file__).parent / "migrations"
_MIGRATION_LOCK = 0x50F7A7
#: The database's clock, one for every worker (PostgreSQL).
PG_CLOCK = "SELECT extract(epoch FROM clock_timestamp())::float8 AS t"


class Conflict(Exception):
    """A write broke a uniqueness rule (a tenant name taken, a duplicate key)."""


class Tx(Protocol):
    """Statements inside one transaction."""

    def one(self, sql: str, args: tuple[Any, ...] = ()) -> dict[str, Any] | None: ...

    def all(self, sql: str, args: tuple[Any, ...] = ()) -> list[dict[str, Any]]: ...

    def run(self, sql: str, args: tuple[Any, ...] = ()) -> int: ...


class Database(Protocol):
    #: True when other server processes may share this database (PostgreSQL).
    shared: bool
    #: Where it is, for messages (no password).
    where: str

    def one(self, sql: str, args: tuple[Any, ...] = ()) -> dict[str, Any] | None:
        """The first row (an INSERT ... RETURNING too), or None."""
        ...

    def all(self, sql: str, args: tuple[Any, ...] = ()) -> list[dict[str, Any]]: ...

    def run(self, sql: str, args: tuple[Any, ...] = ()) -> int:
        """Execute one statement; the number of rows it changed."""
        ...

    def transaction(self) -> Any:
        """A context manager yielding a Tx: everything inside commits together or not at all."""
        ...

    def clock(self) -> float:
        """Seconds since the epoch by the database's clock (one clock for every worker)."""
        ...

    def close(self) -> None: ...


def migrate(sa_url: str) -> None:
    """Bring the schema to the newest revision (Alembic), under a lock on PostgreSQL."""
    import sqlalchemy as sa
    from alembic import command
    from alembic.config import Config
    from sqlalchemy.pool import NullPool

    engine = sa.create_engine(sa_url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK})
            cfg = Config()
            cfg.set_main_option("script_location", str(MIGRATIONS))
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
    finally:
        engine.dispose()


class _SqliteTx:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def one(self, sql: str, args: tuple[Any, ...] = ()) -> dict[str, Any] | None:
        rows = self.all(sql, args)
        return rows[0] if rows else None

    def all(self, sql: str, args: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        try:
            return [dict(r) for r in self._conn.execute(sql, args).fetchall()]
        except sqlite3.IntegrityError as e:
            raise Conflict(str(e)) from e

    def run(self, sql: str, args: tuple[Any, ...] = ()) -> int:
        try:
            return self._conn.execute(sql, args).rowcount
        except sqlite3.IntegrityError as e:
            raise Conflict(str(e)) from e


class SqliteDatabase:
    shared = False

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.where = str(path)
        migrate(f"sqlite:///{path}")
        self._conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=30)
        self._conn.row_factory = sqlite3.Row
        self._lock = threading.RLock()
        with self._lock:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute("PRAGMA foreign_keys=ON")
        self._tx = _SqliteTx(self._conn)

    def one(self, sql: str, args: tuple[Any, ...] = ()) -> dict[str, Any] | None:
        with self._lock:
            return self._tx.one(sql, args)

    def all(self, sql: str, args: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        with self._lock:
            return self._tx.all(sql, args)

    def run(self, sql: str, args: tuple[Any, ...] = ()) -> int:
        with self._lock:
            return self._tx.run(sql, args)

    @contextmanager
    def transaction(self) -> Iterator[_SqliteTx]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._tx
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def clock(self) -> float:
        return time.time()

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class _PgTx:
    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def one(self, sql: str, args: tuple[Any, ...] = ()) -> dict[str, Any] | None:
        rows = self.all(sql, args)
        return rows[0] if rows else None

    def all(self, sql: str, args: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        import psycopg

        try:
            cur = self._conn.execute(sql.replace("?", "%s"), args)
            return list(cur.fetchall()) if cur.description else []
        except psycopg.errors.IntegrityError as e:
            raise Conflict(str(e)) from e

    def run(self, sql: str, args: tuple[Any, ...] = ()) -> int:
        import psycopg

        try:
            return self._conn.execute(sql.replace("?", "%s"), args).rowcount
        except psycopg.errors.IntegrityError as e:
            raise Conflict(str(e)) from e


class PostgresDatabase:
    """The server database on PostgreSQL through a psycopg connection pool (statements autocommit; a
    `transaction()` is one connection's transaction)."""

    shared = True

    def __init__(self, url: str) -> None:
        try:
            from psycopg.rows import dict_row
            from psycopg_pool import ConnectionPool, PoolTimeout
        except ImportError as e:
            raise ConfigError(f"[serve] database: PostgreSQL needs its extra: pip install 'sovrag[postgres]' "
                              f"({e})") from e
        self.where = redact_url(url)
        try:
            migrate("postgresql+psycopg://" + url.split("://", 1)[1])
        except Exception as e:  # sqlalchemy wraps the driver's OperationalError
            reason = str(getattr(e, "orig", e)).strip().splitlines()
            raise ConfigError(f"[serve] database {self.where}: cannot migrate the schema "
                              f"({reason[-1] if reason else type(e).__name__})") from e
        self.pool = ConnectionPool(url, min_size=1, max_size=16, open=False, name="sovrag-serve-db",
                                   kwargs={"autocommit": True, "row_factory": dict_row, "connect_timeout": 10})
        try:
            self.pool.open(wait=True, timeout=15)
        except PoolTimeout as e:
            self.pool.close()
            raise ConfigError(f"[serve] database {self.where}: no connection within 15 s") from e

    def one(self, sql: str, args: tuple[Any, ...] = ()) -> dict[str, Any] | None:
        with self.pool.connection() as conn:
            return _PgTx(conn).one(sql, args)

    def all(self, sql: str, args: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        with self.pool.connection() as conn:
            return _PgTx(conn).all(sql, args)

    def run(self, sql: str, args: tuple[Any, ...] = ()) -> int:
        with self.pool.connection() as conn:
            return _PgTx(conn).run(sql, args)

    @contextmanager
    def transaction(self) -> Iterator[_PgTx]:
        with self.pool.connection() as conn, conn.transaction():
            yield _PgTx(conn)

    def clock(self) -> float:
        row = self.one(PG_CLOCK)
        assert row is not None
        return float(row["t"])

    def close(self) -> None:
        self.pool.close()


def is_postgres(database: str) -> bool:
    """Whether the [serve] database setting names PostgreSQL (a postgresql:// URL) rather than SQLite in the data
    directory (empty); anything else is refused."""
    if not database:
        return False
    if database.partition("://")[0] in ("postgresql", "postgres"):
        return True
    raise ConfigError(f"[serve] database {database.split('@')[-1]!r}: expected empty (SQLite in the data directory) "
                      "or postgresql://user@host/db")


def open_database(database: str, data_dir: Path) -> Database:
    """`database` is the [serve] setting: empty for SQLite in the data directory, or a postgresql:// URL."""
    return PostgresDatabase(database) if is_postgres(database) else SqliteDatabase(data_dir / "server.db")


def now() -> float:
    return time.time()
