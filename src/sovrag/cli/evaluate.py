"""`sovrag eval` and `sovrag check`: answer quality on a dataset, and the hallucination check."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from sovrag.cli.common import err, fail, out, settings
from sovrag.errors import SovragError

PARTIAL = 3  # exit status: the run finished, but some lines or metrics could not be evaluated


def eval_(
    ctx: typer.Context,
    dataset: Annotated[Path, typer.Argument(help="JSONL: question, reference, relevant (documents) or "
                                            "reference_contexts, one object per line")],
    collection: Annotated[str, typer.Option("--collection", "-c")],
    llm: Annotated[str | None, typer.Option(help="LLM that answers [env SOVRAG_LLM]")] = None,
    judge: Annotated[str | None, typer.Option(help="Judge LLM for the RAGAS metrics (default: the answering "
                                              "LLM; 'none' skips them)")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N valid questions")] = None,
    k: Annotated[int, typer.Option("--k", min=1, max=100, help="Cut-off of the retrieval metrics")] = 10,
    top_k: Annotated[int, typer.Option("--top-k", min=1, max=50, help="Passages the answer may use")] = 6,
    metrics: Annotated[str | None, typer.Option(help="Comma-separated subset of: faithfulness, answer_relevancy, "
                                                "context_precision, context_recall, exact_match, token_f1, "
                                                "ndcg, recall, mrr, hit_rate")] = None,
    strictness: Annotated[int, typer.Option(min=1, max=10, help="Questions regenerated per answer for answer "
                                            "relevancy (ragas: 3)")] = 3,
    max_tokens: Annotated[int, typer.Option(min=1, max=4096, help="Longest answer in tokens")] = 256,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Also write results.json and report.html here")]
    = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON")] = False,
    tenant: Annotated[int | None, typer.Option(min=1, help="The collection is this server tenant's (the run "
                                               "then shows in that tenant's web UI)")] = None,
) -> None:
    """Answer a dataset's questions from a collection and score them: RAGAS-compatible metrics with a local
    judge, retrieval nDCG/recall/MRR/hit rate, exact match and token F1. Writes an HTML report."""
    from sovrag.cli.remote import owner
    from sovrag.collection import open_collection
    from sovrag.evaluate import session
    from sovrag.generate import create_llm

    s = settings(ctx)
    if tenant is not None:
        from sovrag.tenancy import store_name

        collection = store_name(tenant, collection)
    try:
        chosen = session.parse_metrics(metrics)
        ds = session.load(dataset, limit)
        for line, problem in ds.errors:
            err.print(f"[yellow]{dataset}:{line}: skipped: {problem}[/]", highlight=False)
        opts = {"metrics": chosen, "k": k, "top_k": top_k, "strictness": strictness, "max_tokens": max_tokens}
        server = owner(s)
        if server is not None:  # the running server owns the data directory: it evaluates for us
            if llm or judge not in (None, "", "none"):
                raise SovragError(f"--llm/--judge: the server (process {server.pid}) that owns this data directory "
                                  "answers and judges with its own model; stop it to use another one here")
            with err.status(f"evaluating {len(ds.samples)} questions through the server (process {server.pid})…",
                            spinner="dots"):
                result = server.evaluate({"store": collection, "dataset": str(dataset.absolute()), "limit": limit,
                                          "judge": judge != "none", "out_dir": str(out_dir.absolute()) if out_dir
                                          else None, **opts, "metrics": list(chosen)})
        else:
            with open_collection(s, collection) as col:
                with err.status("loading the model…", spinner="dots"):
                    model = create_llm(s, llm)
                    judge_llm = ((model if judge in (None, "", llm) else create_llm(s, judge))
                                 if session.wants_judge(judge, chosen) else None)
                done = 0

                def progress(r: object) -> None:
                    nonlocal done
                    done += 1
                    status.update(f"evaluated {done}/{len(ds.samples)} questions…")

                with err.status(f"evaluating {len(ds.samples)} questions…", spinner="dots") as status:
                    result = session.run(s, col, model, judge_llm, ds, dataset, out_dir=out_dir, progress=progress,
                                         **opts)
    except SovragError as e:
        fail(e)
        return
    _print_eval(result, collection, as_json)
    if ds.errors or any(m["failed"] for m in result["summary"].values()):
        raise typer.Exit(PARTIAL)


def _print_eval(result: dict[str, Any], collection: str, as_json: bool) -> None:
    from rich.table import Table

    from sovrag.htmlreport import fmt

    if as_json:
        out.print_json(json.dumps({k: result[k] for k in ("run", "report", "summary", "abstention_rate",
                                                           "judge_seconds_per_sample", "dataset_errors")}))
        return
    t = Table(title=f"sovrag eval: {collection} ({result['questions']} questions)")
    for h in ("metric", "mean", "median", "scored", "skipped", "failed"):
        t.add_column(h, justify="left" if h == "metric" else "right")
    for name, m in result["summary"].items():
        t.add_row(name, fmt(m["mean"]), fmt(m["median"]), str(m["scored"]), str(m["skipped"]),
                  f"[red]{m['failed']}[/]" if m["failed"] else "0")
    out.print(t)
    judge_s = (f", judge {result['judge_seconds_per_sample']:.1f} s per sample"
               if result["judge_seconds_per_sample"] is not None else "")
    out.print(f"abstained on {result['abstention_rate']:.0%}; answer {result['answer_seconds_per_sample']:.1f} s "
              f"per sample{judge_s}")
    out.print(f"report: {result['report']}")


def check(
    ctx: typer.Context,
    answer: Annotated[str, typer.Option(help="The answer to check")],
    passage: Annotated[str, typer.Option(help="The passage: a file, '-' (standard input) or the text itself")],
    question: Annotated[str, typer.Option(help="The question the answer replies to (reads a short answer)")] = "",
    method: Annotated[str, typer.Option(help="model (the trained verifier), lexical (no model), judge or "
                                              "combined")] = "model",
    judge: Annotated[str | None, typer.Option(help="Judge LLM for --method judge/combined [env SOVRAG_LLM]")]
    = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Is an answer supported by a passage? Exit status 0 when supported, 1 when not, 2 on bad input."""
    from sovrag.evaluate.faithcheck import METHODS, check_support
    from sovrag.evaluate.judge import Judge
    from sovrag.generate import create_llm

    s = settings(ctx)
    try:
        if method not in METHODS:
            raise SovragError(f"--method {method!r}: expected one of {', '.join(METHODS)}")
        text = _passage_text(passage)
        j = Judge(create_llm(s, judge)) if method in ("judge", "combined") else None
        result = check_support(text, answer, method, j, question)  # type: ignore[arg-type]
    except SovragError as e:  # exit 2: 1 means "not supported"
        err.print(f"[bold red]error:[/] {e}", highlight=False)
        raise typer.Exit(2) from e
    if as_json:
        out.print_json(json.dumps({k: v for k, v in result.__dict__.items() if k != "checked_terms"}))
    else:
        verdict = "[green]supported[/]" if result.supported else "[red]NOT supported[/]"
        if result.label == "not checked":
            verdict = "[yellow]not checked[/]"
        out.print(f"{verdict} ({result.method}): {result.reason}", highlight=False)
    if not result.supported:
        raise typer.Exit(1)


def _passage_text(passage: str) -> str:
    """--passage: '-' reads standard input; an existing file is read; text with spaces is the passage itself."""
    name = "standard input" if passage == "-" else passage
    try:
        if passage == "-":
            text = sys.stdin.read()
        elif Path(passage).is_file():
            text = Path(passage).read_text(encoding="utf-8")
        elif any(c.isspace() for c in passage.strip()):
            text, name = passage, "--passage"
        else:
            raise SovragError(f"passage {passage}: no such file (give a file, '-' for standard input, or the text)")
    except (OSError, UnicodeDecodeError) as e:
        raise SovragError(f"passage {passage}: cannot be read as UTF-8 text ({e})") from e
    if not text.strip():
        raise SovragError(f"passage {name}: is empty")
    return text
