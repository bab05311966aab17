"""`sovrag bench` and `sovrag cost`: measure a collection on this machine, and what it costs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from sovrag.cli.common import err, fail, out, settings
from sovrag.errors import SovragError


# ---------------------------------------------------------------- bench
def bench(
    ctx: typer.Context,
    collection: Annotated[str, typer.Option("--collection", "-c", help="The collection to measure (only read)")],
    questions: Annotated[Path | None, typer.Option(help="JSONL file, one {\"question\": ...} per line "
                                                   "(default: drawn from the collection's chunks)")] = None,
    sample: Annotated[int, typer.Option(help="Questions to draw from the collection")] = 20,
    requests: Annotated[int, typer.Option(help="Full answers timed one at a time, and again concurrently")] = 8,
    concurrency: Annotated[int, typer.Option(help="Clients asking at the same time in the throughput test")] = 4,
    searches: Annotated[int, typer.Option(help="Timed searches for the latency percentiles")] = 100,
    top_k: Annotated[int, typer.Option("--top-k", "-k", help="Chunks retrieved per answer")] = 20,
    max_tokens: Annotated[int, typer.Option(help="Longest answer in tokens")] = 128,
    ingest_dir: Annotated[Path | None, typer.Option(help="Folder to ingest for chunks/s (default: a sample of "
                                                    "the collection's chunks, re-chunked and re-embedded)")] = None,
    ingest_chunks: Annotated[int, typer.Option(help="Stored chunks re-ingested when no --ingest-dir")] = 64,
    llm: Annotated[str | None, typer.Option(help="LLM spec [env SOVRAG_LLM]")] = None,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Also copy results.json, bench.png and "
                                                 "report.html here")] = None,
    seed: Annotated[int, typer.Option(help="Seed for drawing questions and chunks")] = 0,
) -> None:
    """Measure ingestion, search and answer speed on a collection; saves a run with JSON, PNG and HTML."""
    from sovrag.bench import BenchOptions, run_bench
    from sovrag.bench.report import bench_rows, save_bench
    from sovrag.bench.run import check_collection
    from sovrag.bench.sample import read_questions
    from sovrag.cli.remote import owner
    from sovrag.collection import open_collection
    from sovrag.generate import create_llm

    s = settings(ctx)
    try:
        server = owner(s)
        if server is not None:  # a bench inside a live server would measure its traffic, not this machine
            raise SovragError(f"sovrag bench: the server (process {server.pid}) owns data directory {s.data_dir}; a "
                              "bench measures this machine with its own models and would be skewed by the server's "
                              "load: stop the server first")
        opt = BenchOptions(questions=tuple(read_questions(questions)) if questions else (), sample=sample,
                           requests=requests, concurrency=concurrency, searches=searches, top_k=top_k,
                           max_tokens=max_tokens, ingest_dir=ingest_dir, ingest_chunks=ingest_chunks, seed=seed)
        opt.check()
        with open_collection(s, collection) as col:
            check_collection(col)
            with err.status("loading the model…", spinner="dots") as status:
                model = create_llm(s, llm)
                results = run_bench(s.with_overrides(llm=llm), col, model, opt,
                                    progress=lambda step: status.update(f"bench: {step}…"))
        run_id, folder = save_bench(s.data_dir, results, out_dir)
    except SovragError as e:
        fail(e)
        return
    table = Table("measure", "value", "how", title=f"sovrag bench: {collection} ({results['chunks']} chunks)")
    for row in bench_rows(results):
        table.add_row(*row)
    out.print(table)
    m = results["machine"]
    out.print(f"[dim]{m['cpu']}, {m['cores']} cores, {m['ram_gib']} GiB · {results['models']['llm']} · "
              f"load {m['loadavg_1m']} → {m['loadavg_1m_end']}[/]", highlight=False)
    for note in results["notes"]:
        out.print(f"[dim]note: {note}[/]", highlight=False)
    out.print(f"saved run {run_id}: {folder}" + (f" (copies in {out_dir})" if out_dir else ""), highlight=False)


# ---------------------------------------------------------------- cost
def cost(
    bench_results: Annotated[Path | None, typer.Option("--bench", help="results.json of a `sovrag bench` run: "
                                                       "its measured throughput and tokens per request")] = None,
    tokens_per_s: Annotated[float | None, typer.Option(help="Or give the throughput: prompt + completion tokens "
                                                       "per second of one instance")] = None,
    overhead_s: Annotated[float, typer.Option(help="With --tokens-per-s: seconds per request besides the "
                                              "LLM (retrieval, verification)")] = 0.0,
    requests_per_month: Annotated[float, typer.Option(help="Requests per month")] = 100_000,
    prompt_tokens: Annotated[float | None, typer.Option(help="Prompt tokens per request (default: the bench "
                                                        "mean, else 1000)")] = None,
    completion_tokens: Annotated[float | None, typer.Option(help="Completion tokens per request (default: the "
                                                            "bench mean, else 200)")] = None,
    hardware: Annotated[str | None, typer.Option(help="Price-table entry the throughput was measured on "
                                                 "(default: the table's default_hardware)")] = None,
    prices: Annotated[Path | None, typer.Option(help="Your price table (TOML; see --write-prices)")] = None,
    write_prices: Annotated[Path | None, typer.Option(help="Write the default price table here to edit, "
                                                      "then stop")] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for cost.json, cost.png and cost.html")]
    = Path("sovrag-cost"),
) -> None:
    """TCO / ROI: self-hosting at a measured throughput against per-token API prices (editable price table)."""
    from sovrag.bench.cost import compare, default_prices_text, load_prices, log_volumes, resolve_inputs, volume_curve
    from sovrag.bench.report import COST_HEADERS, cost_rows, save_cost
    from sovrag.errors import CostError

    try:
        if write_prices is not None:
            if write_prices.exists():
                raise CostError(f"write-prices {write_prices}: already exists; choose another path or delete it")
            write_prices.parent.mkdir(parents=True, exist_ok=True)
            write_prices.write_text(default_prices_text(), encoding="utf-8")
            out.print(f"wrote the default price table to {write_prices}; edit it, then pass --prices "
                      f"{write_prices}", highlight=False)
            return
        table = load_prices(prices)
        tp, wl = resolve_inputs(bench_results, tokens_per_s, overhead_s, requests_per_month, prompt_tokens,
                                completion_tokens)
        rep = compare(table, tp, wl, hardware)
        save_cost(out_dir, rep, table, volume_curve(table, tp, wl, hardware, log_volumes(wl.requests_per_month)))
    except SovragError as e:
        fail(e)
        return
    t = Table(*COST_HEADERS, title=f"{requests_per_month:,.0f} requests/month, {wl.prompt_tokens:,.0f} prompt + "
              f"{wl.completion_tokens:,.0f} completion tokens each")
    for row in cost_rows(rep, table):
        t.add_row(*row)
    out.print(t)
    for note in rep.notes:
        out.print(f"[dim]{note}[/]", highlight=False)
    out.print(f"wrote {out_dir / 'cost.json'}, cost.png and cost.html", highlight=False)
