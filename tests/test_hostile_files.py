"""Hostile and unlucky folders: every odd file is one report line, the rest of the batch is indexed.

Real files on disk (symlinks, FIFOs, device links, undecodable names, generated decompression bombs), the
real embedder and the embedded store.
"""

from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path

import docx
import pytest

from sovrag.collection import open_collection
from sovrag.config import Settings
from sovrag.errors import LoadError
from sovrag.ingest.loaders import load_document
from sovrag.ingest.sync import ingest
from tests.hostile_corpus import bomb_docx

GOOD = "# Leave\n\nNew employees get 25 vacation days per year.\n"


def _run(settings: Settings, paths: list[Path], **kw):
    with open_collection(settings, "kb", create=True) as col:
        return ingest(settings, col, paths, **kw)


def _sources(settings: Settings) -> set[str]:
    with open_collection(settings, "kb") as col:
        return set(col.store.documents())


def _reasons(report) -> dict[str, str]:
    return {Path(src).name: why for src, why in report.failed + report.skipped}


def test_devices_fifos_loops_and_odd_names_are_one_line_each(settings: Settings, tmp_path: Path) -> None:
    root = tmp_path / "docs"
    root.mkdir()
    (root / "good.md").write_text(GOOD)
    (root / "zero.txt").symlink_to("/dev/zero")
    (root / "random.txt").symlink_to("/dev/urandom")
    os.mkfifo(root / "pipe.txt")
    (root / "loop.txt").symlink_to(root / "loop.txt")
    (root / "broken.md").symlink_to(root / "missing.md")
    odd = os.fsencode(root) + b"/caf\xe9-notes.md"  # not valid UTF-8
    with open(odd, "wb") as f:
        f.write(b"# Cafe\n\nThe cafe opens at seven.\n")
    (root / "utf16.txt").write_bytes("The badge office is in room 12.".encode("utf-16"))
    (root / ".hidden.md").write_text(GOOD)
    (root / "sub").mkdir()
    (root / "linked").symlink_to(root / "sub", target_is_directory=True)

    t0 = time.monotonic()
    report = _run(settings, [root])
    assert time.monotonic() - t0 < 60  # a FIFO or /dev/zero would hang or fill memory
    why = _reasons(report)
    assert "character device" in why["zero.txt"] and "character device" in why["random.txt"]
    assert "FIFO" in why["pipe.txt"]
    assert why["loop.txt"] == "symlink loop"
    assert "broken symlink" in why["broken.md"]
    assert why[".hidden.md"] == "hidden file"
    assert "symlinked folder" in why["linked"]
    names = {Path(s).name for s in report.added}
    assert names == {"good.md", "caf\\xe9-notes.md", "utf16.txt"}, report
    assert len(report.failed) == 5 and len(report.skipped) == 2


def test_symlinks_outside_the_folder_are_refused_and_synced_by_their_own_path(settings: Settings,
                                                                             tmp_path: Path) -> None:
    outside = tmp_path / "secret.txt"
    outside.write_text("root:x:0:0:the secret outside the folder\n")
    root = tmp_path / "docs"
    root.mkdir()
    (root / "good.md").write_text(GOOD)
    (root / "passwd.txt").symlink_to(outside)
    (root / "inside-link.md").symlink_to(root / "good.md")

    report = _run(settings, [root])
    why = _reasons(report)
    assert "outside the ingested folder" in why["passwd.txt"] and str(outside) in why["passwd.txt"]
    assert why["inside-link.md"].startswith("same file as") and "good.md" in why["inside-link.md"]
    assert _sources(settings) == {str(root / "good.md")}

    allowed = replace(settings, follow_symlinks_outside=True)
    report = _run(allowed, [root])
    assert [Path(s).name for s in report.added] == ["passwd.txt"]
    assert str(root / "passwd.txt") in _sources(settings)  # keyed by its path inside the folder
    (root / "passwd.txt").unlink()
    report = _run(allowed, [root], sync=True)
    assert report.deleted == [str(root / "passwd.txt")]
    assert _sources(settings) == {str(root / "good.md")}


def test_a_docx_bomb_is_refused_from_its_zip_directory_without_inflating(settings: Settings,
                                                                         tmp_path: Path) -> None:
    bomb = bomb_docx(64)
    assert len(bomb) < 400_000  # 64 MB of paragraphs in a few hundred KB
    (tmp_path / "bomb.docx").write_bytes(bomb)
    (tmp_path / "good.md").write_text(GOOD)
    t0 = time.monotonic()
    report = _run(settings, [tmp_path])
    assert time.monotonic() - t0 < 30
    why = _reasons(report)["bomb.docx"]
    assert "word/document.xml inflates" in why and "decompression bomb" in why
    assert [Path(s).name for s in report.added] == ["good.md"]
    with pytest.raises(LoadError, match=r"unpacks to \d+\.\d MB, over the 10\.0 MB limit \(max_unpacked_mb\)"):
        load_document(tmp_path / "bomb.docx", 50 << 20, max_unpacked_bytes=10 << 20)


@pytest.mark.slow
def test_parsing_is_bounded_in_time_and_memory_per_file(settings: Settings, tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    big = docx.Document()
    for i in range(1500):
        big.add_paragraph(f"Paragraph {i} of a long and genuine report about the quarterly numbers.")
    big.save(plain / "big.docx")
    (plain / "good.md").write_text(GOOD)

    slow = replace(settings, parse_timeout_s=0.3)
    report = _run(slow, [plain])
    assert "parsing took longer than 0.3 s (parse_timeout_s)" in _reasons(report)["big.docx"]
    assert [Path(s).name for s in report.added] == ["good.md"]
    report = _run(settings, [plain])  # within the defaults it is an ordinary document
    assert [Path(s).name for s in report.added] == ["big.docx"]

    heavy = tmp_path / "heavy"
    heavy.mkdir()
    (heavy / "heavy.docx").write_bytes(bomb_docx(24, varied=True))  # ratio of real text: not a bomb
    (heavy / "good.md").write_text(GOOD)
    tight = replace(settings, parse_memory_mb=200)
    report = _run(tight, [heavy])
    why = _reasons(report)["heavy.docx"]
    assert "200 MB" in why and "parse_memory_mb" in why, why
    assert [Path(s).name for s in report.added] == ["good.md"]


def test_gitignore_style_globs(settings: Settings, tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "top.md").write_text(GOOD)
    (tmp_path / "a" / "b" / "deep.md").write_text(GOOD.replace("25", "26"))
    (tmp_path / "a" / "notes.txt").write_text("The office plants are watered on Fridays.")
    report = _run(settings, [tmp_path], include=["**/*.md"], exclude=["a/b/**"])
    assert [Path(s).name for s in report.added] == ["top.md"]


@pytest.mark.slow
@pytest.mark.model
def test_a_hostile_folder_of_a_thousand_bad_files_names_each_and_indexes_every_good_one(settings: Settings,
                                                                                        tmp_path: Path) -> None:
    import json
    import sys

    from tests import hostile_corpus

    corpus = hostile_corpus.build(tmp_path / "hostile", copies=60, good=40)
    assert len(corpus.bad) >= 1000
    env = {**os.environ, "SOVRAG_DATA_DIR": str(settings.data_dir),
           "SOVRAG_MAX_FILE_MB": str(hostile_corpus.MAX_FILE_MB)}
    code, out, err, peak, seconds = hostile_corpus.run_measured(
        [str(Path(sys.executable).parent / "sovrag"), "ingest", str(corpus.root), "-c", "kb", "--json"], env, 900)
    assert code == 3, err[-2000:]  # some files failed, the run completed
    report = json.loads(out)
    named = {r["source"] for r in report["failures"] + report["skipped_files"]}
    missing = [str(p) for p in corpus.bad if str(p) not in named]
    assert not missing, f"{len(missing)} bad files not named, e.g. {missing[:5]}"
    assert report["added"] == len(corpus.good)
    assert peak < 1 << 30, f"peak memory {peak / 2**20:.0f} MB"
    with open_collection(settings, "kb") as col:
        assert set(col.store.documents()) == {str(p) for p in corpus.good}
        from sovrag.retrieve import search

        for path, fact in list(corpus.good.items())[:5]:
            hits = search(col, fact, top_k=1)
            assert hits and hits[0].chunk.source == str(path)
        leaked = search(col, "vault combination 31-41-59", top_k=5, mode="bm25")
        assert all("31-41-59" not in h.chunk.text for h in leaked)  # the link's target never got in
