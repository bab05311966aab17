"""Ingestion on a real local Ray cluster of two nodes (a head and a second node, separate raylets) equals a local
run chunk for chunk, with the same report and incremental sync semantics."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sovrag.collection import open_collection
from sovrag.config import Settings
from sovrag.ingest.distributed import RayPreparer, Task
from sovrag.ingest.sync import ingest
from sovrag.store import SearchQuery

pytestmark = [pytest.mark.slow, pytest.mark.model]

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = ["How many vacation days do new employees get?", "What is the hotel limit per night?",
             "When is the on-call handover?"]


@pytest.fixture(scope="module")
def cluster():
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    from ray.cluster_utils import Cluster

    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    c.add_node(num_cpus=1)
    c.wait_for_nodes()
    yield c
    c.shutdown()


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    d = tmp_path / "corpus"
    shutil.copytree(ROOT / "examples" / "docs", d)
    shutil.copy(ROOT / "tests" / "data" / "image-only.pdf", d / "scan.pdf")  # fails: no text to index
    return d


def _snapshot(settings: Settings, name: str) -> tuple[dict, list]:
    with open_collection(settings, name) as col:
        chunks = {c.id: c for c in col.store.chunks(limit=10_000)}
        hits = []
        for q in QUESTIONS:
            v = col.embedder.embed([q])[0]
            hits.append([(h.chunk.id, h.score) for h in col.store.search(SearchQuery(q, v), top_k=5)])
    return chunks, hits


def test_a_ray_run_equals_a_local_run_chunk_for_chunk(cluster, corpus: Path, settings: Settings) -> None:
    with open_collection(settings, "local", create=True) as col:
        local = ingest(settings, col, [corpus])
    with open_collection(settings, "ray", create=True) as col:
        remote = ingest(settings, col, [corpus], ray=cluster.address)
    assert sorted(remote.added) == sorted(local.added) and len(local.added) == 6
    assert remote.failed == local.failed and "scan.pdf" in remote.failed[0][0]
    assert remote.chunks_written == local.chunks_written > 0
    a, hits_a = _snapshot(settings, "local")
    b, hits_b = _snapshot(settings, "ray")
    assert a == b  # same ids, texts, pages, headings, versions, metadata
    for x, y in zip(hits_a, hits_b, strict=True):  # same vectors: the same hits with the same scores
        assert [i for i, _ in x] == [i for i, _ in y]
        assert np.allclose([s for _, s in x], [s for _, s in y], atol=1e-4)

    # incremental: a second Ray run writes nothing; --sync removes a vanished file, through the CLI
    (corpus / "handbook.md").unlink()
    env = {**os.environ, "SOVRAG_DATA_DIR": str(settings.data_dir), "SOVRAG_STORE": settings.store}
    run = subprocess.run([str(Path(sys.executable).parent / "sovrag"), "ingest", str(corpus), "-c", "ray", "--sync",
                          "--ray", cluster.address, "--json"], env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 3, run.stderr  # 3: some files failed (the scan, again)
    report = json.loads(run.stdout)
    assert (report["added"], report["unchanged"], report["deleted"], report["chunks"]) == (0, 5, 1, 0), report


def test_the_work_is_spread_over_both_nodes(cluster, corpus: Path, settings: Settings) -> None:
    from sovrag.embed import create_embedder

    emb = create_embedder(settings)
    pre = RayPreparer(settings, cluster.address, settings.embedder, emb.name)
    try:
        assert pre.nodes == 2 and len(pre.actors) == 2
        done = []
        for i, path in enumerate(sorted(corpus.iterdir()) * 10):  # 70 files: three batches of at most 32
            done += pre.submit(Task(str(path), str(path), path.read_bytes(), str(path), f"v{i}", None))
        done += pre.results()
        assert len(done) == 70 and len({d.node for d in done}) == 2
        ok = [d for d in done if not d.error]
        assert len(ok) == 60 and all(len(d.vectors) == len(d.chunks) > 0 for d in ok)
        failed = [d for d in done if d.error]  # the scan, alone, ten times
        assert {Path(d.task.path).name for d in failed} == {"scan.pdf"} and len(failed) == 10
        assert all("no extractable text" in d.error for d in failed)
    finally:
        pre.close()
