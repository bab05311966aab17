"""`sovrag tune`: a LoRA adapter for the local LLM, trained on questions about a collection."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from sovrag.cli.common import err, fail, out, settings
from sovrag.errors import SovragError

STAGES = {"data": "writing questions", "train": "training", "eval": "base vs tuned"}


def tune(
    ctx: typer.Context,
    collection: Annotated[str, typer.Option("--collection", "-c", help="Collection to train on")],
    out_name: Annotated[str, typer.Option("--out", help="Name of the adapter (use it as llamacpp:BASE+lora:NAME)")]
    = "tuned",
    base: Annotated[str | None, typer.Option(help="Base model: fast, quality, a bundled model name, a .gguf path "
                                             "(default: the configured LLM)")] = None,
    generator: Annotated[str | None, typer.Option(help="LLM that writes the training questions (default: the "
                                                  "base; a larger OpenAI-compatible model writes better ones)")] = None,
    steps: Annotated[int, typer.Option(help="Optimizer steps (0: three passes over the examples, 10 to 300)")] = 0,
    batch: Annotated[int, typer.Option(help="Examples per step")] = 4,
    rank: Annotated[int, typer.Option(help="LoRA rank")] = 8,
    alpha: Annotated[float, typer.Option(help="LoRA alpha (scale = alpha / rank)")] = 16.0,
    lr: Annotated[float, typer.Option(help="Learning rate")] = 2e-4,
    targets: Annotated[str, typer.Option(help="Comma-separated modules to adapt")] =
    "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj",
    max_chunks: Annotated[int, typer.Option(help="Chunks to write questions for (a seeded sample)")] = 200,
    heldout: Annotated[float, typer.Option(help="Share of chunks held out for the evaluation")] = 0.2,
    seed: Annotated[int, typer.Option(help="Seed of the sample, the split and training")] = 13,
    threads: Annotated[int, typer.Option(help="Training threads (0: all cores this process may use)")] = 0,
    evaluate: Annotated[bool, typer.Option("--eval/--no-eval", help="Measure base vs tuned on held-out "
                                           "questions and save a report")] = True,
) -> None:
    """Train a LoRA adapter for the local LLM on questions about a collection (needs the [train] extra). An
    interrupted run resumes when run again with the same options."""
    from sovrag.train.lora import LoraSettings
    from sovrag.train.tune import TuneRequest
    from sovrag.train.tune import tune as run_tune

    s = settings(ctx)
    lora = LoraSettings(rank=rank, alpha=alpha, lr=lr, steps=steps, batch=batch, seed=seed, threads=threads,
                        targets=tuple(t.strip() for t in targets.split(",") if t.strip()))
    req = TuneRequest(collection=collection, name=out_name, base=base or "", generator=generator or "", lora=lora,
                      max_chunks=max_chunks, heldout_share=heldout, evaluate=evaluate)
    try:
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TextColumn("ETA"),
                      TimeRemainingColumn(), console=err, transient=False) as bar:
            tasks: dict[str, int] = {}

            def stage(name: str, done: int, total: int, info: dict) -> None:
                if name not in tasks:
                    tasks[name] = bar.add_task(STAGES.get(name, name), total=total, info="",
                                               completed=info.get("resumed_from", 0))
                text = f"loss {info['loss']:.3f}" if "loss" in info else ""
                bar.update(tasks[name], completed=done, total=total, info=text)

            result = run_tune(s, req, stage)
    except SovragError as e:
        fail(e)
    d, t = result.data, result.training
    out.print(f"adapter [bold]{result.record.name}[/] for {result.record.base}: {result.adapter} "
              f"({result.record.size / 2**20:.1f} MiB, sha256 {result.record.sha256[:12]}…)", highlight=False)
    out.print(f"data: {d['questions_kept']} questions kept from {d['chunks_in_collection']} chunks "
              f"({d['train_examples']} training examples, {d['train_unanswerable']} unanswerable; "
              f"{d['heldout_questions']} held out); rejected: {d['rejected']}", highlight=False)
    out.print(f"training: {t['steps']} steps, {t['seconds_per_step']} s/step, final loss {t['final_loss']}, "
              f"peak memory {t['peak_rss_mb']:.0f} MB", highlight=False)
    if result.evaluation:
        table = Table(title="held-out questions (chunks never trained on)")
        table.add_column("metric")
        for label in result.evaluation:
            table.add_column(label, justify="right")
        for m in ("f1", "contains_answer", "abstain_answerable", "abstain_unanswerable", "groundedness",
                  "seconds_per_answer", "questions"):
            table.add_row(m, *("" if v.get(m) is None else f"{v[m]:.3f}" if isinstance(v[m], float) else str(v[m])
                               for v in result.evaluation.values()))
        out.print(table)
        out.print(f"report: {result.report / 'report.html'}")
        worse = verdict(result.evaluation)
        if worse:
            out.print(f"[bold yellow]The adapter measured worse than the base model on the held-out questions "
                      f"({worse}): keep using the base model, or tune again with more chunks, a stronger --generator "
                      "or fewer --steps.[/]", highlight=False)
    out.print(f"use it: sovrag ask \"...\" -c {collection} --llm {result.llm_spec}", highlight=False)


def verdict(evaluation: dict) -> str:
    """What got worse from base to tuned on the held-out questions ('' when nothing did by more than noise)."""
    b, t = evaluation.get("base") or {}, evaluation.get("tuned") or {}
    worse = []
    for metric, higher_is_better in (("contains_answer", True), ("f1", True), ("abstain_answerable", False)):
        if b.get(metric) is None or t.get(metric) is None:
            continue
        delta = t[metric] - b[metric]
        if (delta < -0.05) if higher_is_better else (delta > 0.05):
            worse.append(f"{metric} {b[metric]:.2f} -> {t[metric]:.2f}")
    return ", ".join(worse)
