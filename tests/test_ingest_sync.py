"""Incremental ingestion end to end: real files, the real embedder, the embedded Qdrant engine."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from sovrag.collection import open_collection
from sovrag.config import Settings
from sovrag.errors import CollectionError
from sovrag.ingest.sync import ingest
from sovrag.retrieve import search

HANDBOOK = """# Handbook

## Vacation

New employees get 25 vacation days per year. After five years of service this rises to 30 days.

## Equipment

Every engineer receives a laptop and a second monitor. Lost equipment must be reported within two days.
"""

RUNBOOK = """On-call runbook

The on-call engineer hands over every Monday at 10:00. Pages that are not acknowledged within
15 minutes escalate to the secondary engineer.
"""


def _tree(root: Path) -> Path:
    (root / "guides").mkdir(parents=True)
    (root / "handbook.md").write_text(HANDBOOK)
    (root / "guides" / "runbook.txt").write_text(RUNBOOK)
    (root / "guides" / "notes.md").write_text("# Notes\n\nThe office plants are watered on Fridays.\n")
    return root


def _run(settings: Settings, paths: list[Path], **kw):
    with open_collection(settings, "kb", create=True) as col:
        return ingest(settings, col, paths, **kw)


def _check_consistent(settings: Settings) -> dict:
    """Every document is stored exactly once, in one version, with all of its chunks."""
    with open_collection(settings, "kb") as col:
        docs = col.store.documents()
        for state in docs.values():
            (version,) = state.versions
            assert state.complete(version), state
        assert col.store.count() == sum(sum(s.versions.values()) for s in docs.values())
        return docs


def test_ingest_then_reingest_unchanged_writes_nothing(settings, tmp_path):
    root = _tree(tmp_path / "docs")
    r1 = _run(settings, [root])
    assert len(r1.added) == 3 and not r1.failed and r1.chunks_written >= 3
    r2 = _run(settings, [root])
    assert len(r2.unchanged) == 3 and r2.chunks_written == 0 and not r2.added and not r2.updated
    docs = _check_consistent(settings)
    assert len(docs) == 3
    with open_collection(settings, "kb") as col:
        hits = search(col, "How many vacation days do new employees get?", top_k=1)
        top = hits[0].chunk
        assert "25 vacation days" in top.text
        assert top.source == str(root / "handbook.md") and top.title == "Handbook"
        assert top.headings[-1] == "Vacation" and top.format == "markdown"


def test_changed_file_replaces_exactly_its_chunks(settings, tmp_path):
    root = _tree(tmp_path / "docs")
    _run(settings, [root])
    before = _check_consistent(settings)
    (root / "handbook.md").write_text(HANDBOOK.replace("25 vacation days", "27 vacation days"))
    r = _run(settings, [root])
    assert [Path(p).name for p in r.updated] == ["handbook.md"] and len(r.unchanged) == 2
    after = _check_consistent(settings)
    hb = str((root / "handbook.md").resolve())
    assert after[hb].versions.keys() != before[hb].versions.keys()
    assert {k: v for k, v in after.items() if k != hb} == {k: v for k, v in before.items() if k != hb}
    with open_collection(settings, "kb") as col:
        texts = [h.chunk.text for h in search(col, "vacation days per year", top_k=10)]
        assert any("27 vacation days" in t for t in texts) and not any("25 vacation days" in t for t in texts)


def test_sync_deletes_vanished_files_only_under_the_given_root(settings, tmp_path):
    root = _tree(tmp_path / "docs")
    other = tmp_path / "other"
    other.mkdir()
    (other / "x.md").write_text("# Other\n\nAn unrelated folder in the same collection.\n")
    _run(settings, [root, other])
    (root / "guides" / "notes.md").unlink()
    r = _run(settings, [root])  # without --sync nothing is deleted
    assert not r.deleted and len(_check_consistent(settings)) == 4
    r = _run(settings, [root], sync=True)
    assert [Path(p).name for p in r.deleted] == ["notes.md"] and r.chunks_deleted >= 1
    docs = _check_consistent(settings)
    assert str((other / "x.md").resolve()) in docs and len(docs) == 3
    # A mistyped root must never wipe the collection.
    r = _run(settings, [tmp_path / "no-such-dir"], sync=True)
    assert r.failed[0][1] == "no such file or directory" and not r.deleted
    assert len(_check_consistent(settings)) == 3


def test_bad_files_are_reported_and_the_batch_goes_on(settings, tmp_path):
    root = _tree(tmp_path / "docs")
    (root / "binary.txt").write_bytes(b"\x00\x01\x02ELF" * 100)
    (root / "latin1.txt").write_bytes("Caf\xe9 cr\xe8me".encode("latin-1"))
    (root / "empty.md").write_text("")
    (root / "big.txt").write_text("word " * 300_000)  # 1.5 MB
    settings = settings.with_overrides(max_file_mb=1.0)
    r = _run(settings, [root, tmp_path / "missing.pdf"])
    reasons = {Path(src).name: why for src, why in r.failed}
    assert set(reasons) == {"binary.txt", "latin1.txt", "empty.md", "big.txt", "missing.pdf"}, reasons
    assert "binary" in reasons["binary.txt"] and "UTF-8" in reasons["latin1.txt"]
    assert "empty" in reasons["empty.md"] and "limit" in reasons["big.txt"]
    assert "no such file" in reasons["missing.pdf"]
    assert len(r.added) == 3


def test_a_file_that_turns_bad_keeps_its_indexed_version(settings, tmp_path):
    root = _tree(tmp_path / "docs")
    _run(settings, [root])
    before = _check_consistent(settings)
    (root / "handbook.md").write_bytes(b"\x00" * 64)
    r = _run(settings, [root], sync=True)
    assert [Path(p).name for p, _ in r.failed] == ["handbook.md"] and not r.deleted
    assert _check_consistent(settings) == before


def test_include_exclude_and_document_mode(settings, tmp_path):
    root = _tree(tmp_path / "docs")
    r = _run(settings, [root], include=["*.md"], exclude=["guides/*"])
    assert [Path(p).name for p in r.added] == ["handbook.md"]
    doc_mode = settings.with_overrides(chunk_mode="document")
    r = _run(doc_mode, [root], include=["*.md"], exclude=["guides/*"])
    assert len(r.updated) == 1  # other chunking settings make another version
    docs = _check_consistent(settings)
    (state,) = docs.values()
    assert sum(state.versions.values()) == 1


def test_collection_keeps_the_embedder_it_was_built_with(settings, tmp_path):
    _run(settings, [_tree(tmp_path / "docs")])
    other = settings.with_overrides(embedder="onnx:/nonexistent/model.onnx")
    with open_collection(other, "kb") as col:  # an existing collection keeps its own embedder
        assert col.embedder.name == "onnx:minilm-l6-v2"
    with pytest.raises(CollectionError, match="'nope': does not exist"):
        open_collection(settings, "nope")


KILL_SCRIPT = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from sovrag.config import Settings
    from sovrag.collection import open_collection
    from sovrag.ingest.sync import ingest
    s = Settings(data_dir=Path(sys.argv[1]))
    with open_collection(s, "kb", create=True) as col:
        ingest(s, col, [Path(sys.argv[2])], progress=lambda p, st: print(st, p, flush=True))
    print("finished", flush=True)
    """
)


def _kill_midway(settings: Settings, root: Path, after_files: int) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(settings.data_dir), str(root)],
                            stdout=subprocess.PIPE, text=True, env=env)
    done = 0
    assert proc.stdout is not None
    deadline = time.monotonic() + 120
    while done < after_files and time.monotonic() < deadline:
        line = proc.stdout.readline()
        assert line and not line.startswith("finished"), "ingest ended before it could be killed"
        done += line.startswith(("added", "updated"))
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL


@pytest.mark.slow
def test_sigkill_midway_leaves_a_usable_collection_completed_next_run(settings, tmp_path):
    root = tmp_path / "many"
    root.mkdir()
    for i in range(120):
        body = f"# Topic {i}\n\n" + "\n\n".join(
            f"Paragraph {j} of topic {i}: fact number {i * 100 + j} is recorded here for retrieval tests."
            for j in range(25))
        (root / f"doc{i:03d}.md").write_text(body)
    _kill_midway(settings, root, after_files=30)
    with open_collection(settings, "kb") as col:  # opens, answers searches
        partial = col.store.count()
        assert partial > 0
        assert search(col, "fact number 1203", top_k=3, mode="bm25")
    r = _run(settings, [root])
    assert len(r.added) + len(r.unchanged) == 120 and not r.failed
    docs = _check_consistent(settings)
    assert len(docs) == 120

    # Now kill a run that is replacing every document with a new version.
    for p in root.iterdir():
        p.write_text(p.read_text().replace("recorded here", "kept here"))
    _kill_midway(settings, root, after_files=30)
    r = _run(settings, [root])
    assert len(r.updated) + len(r.unchanged) == 120 and not r.failed
    docs = _check_consistent(settings)
    assert len(docs) == 120
    with open_collection(settings, "kb") as col:
        assert not search(col, "recorded", top_k=3, mode="bm25")
