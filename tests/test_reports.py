from pathlib import Path

from sovrag.reports import RunSummary, is_run_id, list_runs, new_run, write_summary


def _run(data_dir: Path, kind: str, collection: str, created: str) -> str:
    run_id, folder = new_run(data_dir, kind)  # type: ignore[arg-type]
    write_summary(folder, RunSummary(id=run_id, kind=kind, created=created, collection=collection,  # type: ignore[arg-type]
                                     title=f"{kind} on {collection}", metrics={"ndcg@10": 0.5, "f1": None}))
    return run_id


def test_runs_listed_newest_first_and_filtered_by_collection(tmp_path: Path) -> None:
    a = _run(tmp_path, "eval", "t1--docs", "2026-11-27T10:00:00+00:00")
    b = _run(tmp_path, "bench", "t1--docs", "2026-11-27T11:00:00+00:00")
    c = _run(tmp_path, "eval", "t2--docs", "2026-11-27T12:00:00+00:00")
    assert [r.id for r in list_runs(tmp_path)] == [c, b, a]
    assert [r.id for r in list_runs(tmp_path, {"t1--docs"})] == [b, a]
    assert list_runs(tmp_path, set()) == []
    assert list_runs(tmp_path)[0].metrics == {"ndcg@10": 0.5, "f1": None}


def test_unfinished_or_foreign_folders_are_not_runs(tmp_path: Path) -> None:
    run_id, _ = new_run(tmp_path, "eval")  # no summary yet: still running or crashed
    (tmp_path / "reports" / "notes").mkdir()
    bad_id, bad = new_run(tmp_path, "bench")
    (bad / "summary.json").write_text("{not json")
    assert list_runs(tmp_path) == []
    assert is_run_id(run_id) and is_run_id(bad_id)
    assert not is_run_id("../etc") and not is_run_id("eval-20261127T100000Z-abc12/../x")
