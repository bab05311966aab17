"""The outputs of `sovrag eval`: a terminal table, `results.json` and a self-contained `report.html`.

The HTML page opens offline (plots inlined as PNG): the summary, one histogram per metric, the dataset
lines that were skipped, and the worst samples with their question, reference, answer, contexts and the
judge's verdicts, so a low score can be traced to its cause.
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Any

from sovrag import htmlreport as H
from sovrag.evaluate.run import JUDGED, EvalResult, SampleResult
from sovrag.machine import machine_info
from sovrag.reports import RunSummary, new_run, write_json, write_summary

WORST = 10


def summary_rows(result: EvalResult) -> list[list[Any]]:
    return [[name, m.mean, m.median, m.scored, m.skipped, m.failed] for name, m in result.summary.items()]


def _plots(result: EvalResult) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n, m in result.summary.items() if m.scored]
    if not names:
        return H.paragraph("No metric was scored on any sample.", "note")
    cols = 3
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(10, 2.6 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names, strict=False):
        values = [s.scores[name] for s in result.samples if s.scores.get(name) is not None]
        ax.hist(values, bins=[i / 10 for i in range(11)], color="#3b6fd4", edgecolor="white")
        mean = result.summary[name].mean
        ax.axvline(mean, color="#d4553b", linewidth=1.5)
        ax.set_title(f"{name}  (mean {mean:.3f}, n={len(values)})", fontsize=9)
        ax.set_xlim(0, 1)
        ax.tick_params(labelsize=8)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    fig.tight_layout()
    html = H.figure(fig, "Distribution of each metric over the samples")
    plt.close(fig)
    return html


def _badness(s: SampleResult) -> float:
    """Lower is worse: the mean of the sample's judged and answer scores, failures counting as 0."""
    values = [v for k, v in s.scores.items() if "@" not in k and v is not None] + [0.0] * len(s.failed)
    return sum(values) / len(values) if values else 1.0


def _sample_block(s: SampleResult) -> str:
    scores = H.table(["metric", "score"], sorted(s.scores.items()))
    notes = [f"{k}: skipped: {v}" for k, v in s.skipped.items()] + [f"{k}: FAILED: {v}" for k, v in s.failed.items()]
    contexts = "".join(f"<li><b>{H.esc(src)}</b>: {H.esc(text)}</li>"
                       for src, text in zip(s.context_sources, s.contexts, strict=False))
    verdicts = []
    for name in JUDGED + ("statements",):
        if name in s.verdicts:
            v = s.verdicts[name]
            rows = [[x] if isinstance(x, str) else [x.get("statement") or x.get("question", ""),
                                                    x.get("verdict", x.get("attributed", x.get("noncommittal"))),
                                                    x.get("reason", "")] for x in v]
            head = ["statement"] if name == "statements" else (
                ["generated question", "noncommittal", ""] if name == "answer_relevancy" else
                ["statement / context", "verdict", "reason"])
            verdicts.append(f"<p><b>{H.esc(name)}</b></p>" + H.table(head, rows))
    return (
        f"<h3>line {s.line} ({H.esc(s.id)}): {H.esc(s.question)}</h3>"
        + H.key_values({"reference": s.reference or "(none)", "answer": s.answer,
                        "abstained": f"yes: {s.abstain_reason}" if s.abstained else "no",
                        "seconds": f"answer {s.answer_seconds:.1f}, judge {s.judge_seconds:.1f}"})
        + scores + "".join(H.paragraph(n, "note") for n in notes)
        + f"<details><summary>contexts ({len(s.contexts)})</summary><ol>{contexts}</ol></details>"
        + (f"<details><summary>judge verdicts</summary>{''.join(verdicts)}</details>" if verdicts else "")
    )


def render_html(result: EvalResult, machine: dict[str, Any]) -> str:
    reasons = Counter(f"{k}: {v}" for s in result.samples for k, v in {**s.skipped, **s.failed}.items())
    settings = {"collection": result.collection, "dataset": result.dataset, "answer LLM": result.llm,
                "judge LLM": result.judge or "none", **{k: str(v) for k, v in result.options.items()},
                "samples": len(result.samples), "abstention rate": f"{result.abstention_rate:.1%}",
                "answer seconds / sample": f"{result.answer_seconds_per_sample:.2f}",
                "judge seconds / sample": f"{result.judge_seconds_per_sample:.2f}"
                if result.judge_seconds_per_sample is not None else "no judge",
                "total seconds": f"{result.seconds:.1f}"}
    worst = sorted(result.samples, key=_badness)[:WORST]
    body = [
        H.section("Summary", H.table(["metric", "mean", "median", "scored", "skipped", "failed"],
                                     summary_rows(result))),
        H.section("Distributions", _plots(result)),
        H.section("Run", H.key_values(settings), H.key_values(machine)),
    ]
    if reasons:
        body.append(H.section("Skipped and failed metrics", H.table(["reason", "samples"], reasons.most_common())))
    if result.dataset_errors:
        body.append(H.section("Dataset lines not evaluated", H.table(["line", "problem"], result.dataset_errors)))
    body.append(H.section(f"Worst {len(worst)} samples", *(_sample_block(s) for s in worst)))
    return H.page(f"sovrag eval: {result.collection}", "\n".join(body),
                  subtitle=f"{len(result.samples)} questions from {result.dataset}")


def save_run(result: EvalResult, data_dir: Path, out: Path | None = None) -> Path:
    """Write results.json + report.html into a saved run (listed by the server and UI); also to `out`."""
    machine = machine_info()
    data = {**result.to_dict(), "machine": machine}
    html = render_html(result, machine)
    run_id, folder = new_run(data_dir, "eval")
    write_json(folder / "results.json", data)
    (folder / "report.html").write_text(html, encoding="utf-8")
    metrics = {name: m.mean for name, m in result.summary.items()}
    write_summary(folder, RunSummary(id=run_id, kind="eval", created=run_id_time(run_id), collection=result.collection,
                                     title=f"eval of {Path(result.dataset).name}: {len(result.samples)} questions",
                                     metrics=metrics))
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / "results.json", data)
        (out / "report.html").write_text(html, encoding="utf-8")
    return folder


def run_id_time(run_id: str) -> str:
    """The creation time encoded in a run id, ISO 8601."""
    stamp = run_id.split("-")[1]
    return f"{stamp[0:4]}-{stamp[4:6]}-{stamp[6:8]}T{stamp[9:11]}:{stamp[11:13]}:{stamp[13:15]}+00:00"
