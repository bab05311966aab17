"""The HTML page of a `sovrag tune` run: base vs tuned on held-out questions, the loss curve, the answers."""

from __future__ import annotations

from typing import Any

from sovrag import htmlreport as H

SHOWN = ("f1", "contains_answer", "abstain_answerable", "abstain_unanswerable", "groundedness")
#: Lower is better for these.
LOWER = {"abstain_answerable", "seconds_per_answer"}


def _plots(data: dict[str, Any]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ev = data.get("evaluation") or {}
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.6))
    labels = list(ev)
    width = 0.8 / max(1, len(labels))
    for i, label in enumerate(labels):
        vals = [ev[label].get(m) or 0.0 for m in SHOWN]
        ax1.bar([x + i * width for x in range(len(SHOWN))], vals, width, label=label)
    ax1.set_xticks([x + width * (len(labels) - 1) / 2 for x in range(len(SHOWN))])
    ax1.set_xticklabels([m.replace("_", "\n") for m in SHOWN], fontsize=8)
    ax1.set_ylim(0, 1)
    ax1.set_title("held-out questions")
    ax1.legend()
    curve = data["training"].get("loss_curve") or []
    start = data["training"].get("resumed_from", 0)
    ax2.plot(range(start + 1, start + len(curve) + 1), curve)
    ax2.set_xlabel("step")
    ax2.set_ylabel("training loss (moving average)")
    ax2.set_title("training")
    try:
        return H.figure(fig, "base vs tuned, and the training loss")
    finally:
        plt.close(fig)


def render(data: dict[str, Any]) -> str:
    rec, ev, tr = data["adapter"], data.get("evaluation") or {}, data["training"]
    metrics = [*SHOWN, "seconds_per_answer", "questions", "unanswerable_cases"]
    table = H.table(["metric", *ev], [[m + (" (lower is better)" if m in LOWER else ""), *(ev[k].get(m) for k in ev)]
                                      for m in metrics])
    run = {"adapter": rec["name"], "base model": rec["base"], "base sha256": rec["base_sha256"],
           "adapter sha256": rec["sha256"], "adapter size": f"{rec['size'] / 2**20:.1f} MiB",
           "rank / alpha": f"{rec['rank']} / {rec['alpha']}", "steps": tr.get("steps"),
           "resumed from step": tr.get("resumed_from"), "examples used": tr.get("examples"),
           "examples too long": tr.get("skipped_long"), "seconds per step": tr.get("seconds_per_step"),
           "training seconds": tr.get("train_s"), "data seconds": tr.get("data_seconds"),
           "peak memory (MB)": tr.get("peak_rss_mb"), "total seconds": data.get("seconds")}
    rows = [[r["model"], r["question"], r["reference"], r["answer"], r["f1"],
             "" if r["abstained_unanswerable"] is None else ("abstained" if r["abstained_unanswerable"]
                                                              else r["unanswerable_answer"])]
            for r in data.get("rows", [])]
    body = [
        H.section("Base vs tuned (held-out questions, chunks never trained on)", table, _plots(data)),
        H.section("Data", H.key_values({k: str(v) for k, v in data["data"].items()})),
        H.section("Run", H.key_values(run), H.key_values(data.get("machine", {}))),
        H.section("Answers", H.table(["model", "question", "reference", "answer", "F1",
                                      "with its chunk withheld"], rows)),
    ]
    return H.page(f"sovrag tune: {rec['name']}", "\n".join(body),
                  subtitle=f"LoRA adapter for {rec['base']}, trained on collection {rec['recipe'].get('collection')}")
