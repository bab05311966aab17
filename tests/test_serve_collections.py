"""A collection deleted while requests use it: the delete waits for them, new requests get 404."""

import threading
import time
import uuid
from pathlib import Path

import pytest

from sovrag.config import Settings
from sovrag.retrieve import search
from sovrag.serve.apierror import APIError
from sovrag.serve.services.collections import TenantCollections
from sovrag.types import Chunk

from .conftest import MODELS_DIR


@pytest.fixture()
def cols(tmp_path: Path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "models").symlink_to(MODELS_DIR, target_is_directory=True)
    tc = TenantCollections(Settings(data_dir=data))
    yield tc
    tc.close()


def _fill(col, texts: list[str]) -> None:
    vecs = col.embedder.embed(texts)
    chunks = [Chunk(id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"a/{i}")), doc_id="/d/a.md", text=t, source="/d/a.md",
                    title="A", index=i, version="v1", chunk_count=len(texts))
              for i, t in enumerate(texts)]
    col.store.upsert(chunks, vecs)
    col.store.flush()


def test_drop_waits_for_a_running_search_and_refuses_new_ones(cols: TenantCollections) -> None:
    col = cols.create(1, "docs")
    _fill(col, ["The NW-7 runs for 9 hours.", "Vacation is 25 days."])
    inside, release, dropped = threading.Event(), threading.Event(), threading.Event()
    found: list[str] = []

    def slow_search() -> None:
        with cols.use(1, "docs") as c:
            inside.set()
            release.wait(10)
            found.extend(h.chunk.text for h in search(c, "battery hours", top_k=1))  # store still open

    def drop() -> None:
        cols.drop(1, "docs")
        dropped.set()

    t1 = threading.Thread(target=slow_search)
    t1.start()
    assert inside.wait(10)
    t2 = threading.Thread(target=drop)
    t2.start()
    time.sleep(0.3)
    assert not dropped.is_set()  # waits for the search
    with pytest.raises(APIError) as e:  # but nobody new gets in
        with cols.use(1, "docs"):
            pass
    assert e.value.status == 404
    release.set()
    t1.join(10)
    t2.join(10)
    assert dropped.is_set() and found == ["The NW-7 runs for 9 hours."]
    assert cols.names(1) == []
    with pytest.raises(APIError):
        cols.describe(1, "docs")


def test_drop_gives_up_with_409_when_the_collection_stays_busy(cols: TenantCollections) -> None:
    cols.create(2, "busy")
    with cols.use(2, "busy"):
        with pytest.raises(APIError) as e:
            cols.drop(2, "busy", wait_s=0.2)
        assert e.value.status == 409
    cols.drop(2, "busy")  # free now
    assert cols.names(2) == []
