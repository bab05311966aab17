"""What `sovrag bench` and `sovrag cost` show and save: table rows, PNG plots, self-contained HTML pages.

A bench run is saved like an eval run (sovrag.reports): `<data dir>/reports/bench-.../` with results.json,
bench.png, report.html and summary.json, so the web UI lists it. A cost calculation is not a run of a
collection; it is written to the folder the user names.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sovrag import htmlreport as H
from sovrag.bench.cost import CostReport, PriceTable
from sovrag.reports import RunSummary, new_run, write_json, write_summary


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only, never a display
    import matplotlib.pyplot as plt

    return plt


def _n(x: Any, unit: str = "", digits: int = 3) -> str:
    return "n/a" if x is None else f"{H.fmt(x, digits)}{unit}"


# ---------------------------------------------------------------- bench
def bench_rows(r: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(measure, value, how it was measured) rows: the terminal table and the report's main table."""
    ing, se, an, co = r["ingest"], r["search"], r["answer"], r["concurrency"]
    lat, emb = se["latency_ms"], se["embed_question_ms"]
    return [
        ("ingestion", _n(ing["chunks_per_s"], " chunks/s", 1),
         f"{ing['chunks']} chunks in {ing['seconds']} s: {ing['what']}"),
        ("search latency p50 / p95", f"{_n(lat['p50'], ' ms', 1)} / {_n(lat['p95'], ' ms', 1)}",
         f"{lat['n']} hybrid searches, top_k {se['top_k']}, question embedding included "
         f"(embedding alone p50 {_n(emb['p50'], ' ms', 1)})"),
        ("time to first token p50 / p95", f"{_n(an['ttft_s']['p50'], ' s', 2)} / {_n(an['ttft_s']['p95'], ' s', 2)}",
         f"{an['n']} answers one at a time, {an['retrieved_mean']} chunks retrieved on average"),
        ("answer total p50 / p95", f"{_n(an['total_s']['p50'], ' s', 2)} / {_n(an['total_s']['p95'], ' s', 2)}",
         f"retrieval to verified citations; {an['prompt_tokens_mean']} prompt + "
         f"{an['completion_tokens_mean']} completion tokens on average"),
        ("decode tokens/s", _n(an["decode_tokens_per_s"], "", 1), "completion tokens per second of decoding"),
        ("prompt tokens/s", _n(an["prefill_tokens_per_s"], "", 1),
         "prompt tokens processed per second (cache hits excluded)"),
        ("LLM tokens/s (prompt + completion)", _n(an["tokens_per_s"], "", 1),
         "over whole generations; what `cost` uses without the split"),
        (f"requests/s at concurrency {co['concurrency']}", _n(co["requests_per_s"], "", 4),
         f"{co['completed']} answers in {co['wall_s']} s, {co['errors']} errors; total p50 "
         f"{_n(co['total_s']['p50'], ' s', 2)}, p95 {_n(co['total_s']['p95'], ' s', 2)}"),
    ]


def bench_figure(r: dict[str, Any]) -> Any:
    plt = _plt()
    fig, (a1, a2, a3) = plt.subplots(1, 3, figsize=(14, 4.2))
    samples = r["search"]["samples_ms"]
    a1.hist(samples, bins=min(30, max(5, len(samples) // 3)), color="#4c72b0")
    for key, style in (("p50", "-"), ("p95", "--")):
        v = r["search"]["latency_ms"][key]
        a1.axvline(v, color="#c44e52", linestyle=style, label=f"{key} {v:.1f} ms")
    a1.set(title="Search latency (embed + hybrid search)", xlabel="ms", ylabel="searches")
    a1.legend()

    seq, conc = r["answer"]["per_request"], r["concurrency"]["per_request"]
    labels = [f"1x #{i + 1}" for i in range(len(seq))] + [f"{r['concurrency']['concurrency']}x #{i + 1}"
                                                           for i in range(len(conc))]
    rows = seq + conc
    y = range(len(rows))
    a2.barh(y, [x["total_s"] for x in rows], color=["#8fb3de"] * len(seq) + ["#f0b27a"] * len(conc),
            label="total")
    a2.barh(y, [x["ttft_s"] or 0 for x in rows], color="#2f4b7c", height=0.45, label="time to first token")
    a2.set_yticks(list(y), labels, fontsize=7)
    a2.invert_yaxis()
    a2.set(title="Answer latency per request (blue: one at a time, orange: concurrent)", xlabel="s")
    a2.title.set_fontsize(9)
    a2.legend(fontsize=8)

    gen = [x for x in seq if x["generated"]]
    n = max(len(gen), 1)
    parts = {"retrieve + compress": sum(x["prepare_s"] for x in gen) / n,
             "first token (prompt)": sum(x["llm_first_token_s"] or 0 for x in gen) / n,
             "decode": sum(x["generate_s"] - (x["llm_first_token_s"] or 0) for x in gen) / n,
             "verify citations": sum(x["verify_s"] for x in gen) / n}
    left = 0.0
    for (name, v), color in zip(parts.items(), ("#55a868", "#2f4b7c", "#8fb3de", "#dd8452"), strict=True):
        a3.barh([0], [v], left=left, color=color, label=f"{name} {v:.2f} s")
        left += v
    a3.set(title="Where a mean answer's time goes", xlabel="s", yticks=[])
    a3.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=2)
    fig.suptitle(f"sovrag bench: {r['collection']} ({r['chunks']} chunks), {r['models']['llm']}, "
                 f"{r['machine']['cores']} cores", fontsize=11)
    fig.tight_layout()
    return fig


def bench_html(r: dict[str, Any], png_b64: str) -> str:
    m = r["machine"]
    machine = {"date (UTC)": r["date"], "CPU": m["cpu"], "cores": m["cores"], "RAM (GiB)": m["ram_gib"],
               "OS": m["os"], "Python": m["python"], "sovrag": m["sovrag"],
               "load average (1 min) start / end": f"{m['loadavg_1m']} / {m['loadavg_1m_end']}",
               "cores' worth used by other processes, per phase": ", ".join(
                   f"{k} {v}" for k, v in (m.get("other_cores_busy") or {}).items()),
               "embedder": r["models"]["embedder"], "LLM": r["models"]["llm"],
               "LLM context / threads": f"{r['models']['llm_context']} / {r['models']['llm_threads']}",
               "store": r["models"]["store"]}
    per = [[i + 1, x["question"][:90], x["retrieved"], x["ttft_s"], x["total_s"], x["prompt_tokens"],
            x["completion_tokens"], "yes" if x["abstained"] else ""] for i, x in enumerate(r["answer"]["per_request"])]
    body = "\n".join([
        H.section("Results", H.table(["measure", "value", "how"], bench_rows(r))),
        H.image(png_b64, "search latency histogram, answer latency per request, and time breakdown"),
        H.section("Notes", *[H.paragraph(n) for n in r["notes"]]),
        H.section("Machine and models", H.key_values(machine)),
        H.section("Answers one at a time", H.table(["#", "question", "chunks", "first token s", "total s",
                                                    "prompt tokens", "completion tokens", "abstained"], per)),
        H.section("Settings", H.key_values(r["settings"])),
    ])
    subtitle = f"{r['date']} · {r['chunks']} chunks · {r['models']['llm']} · {m['cpu']}, {m['cores']} cores"
    return H.page(f"sovrag bench: {r['collection']}", body, subtitle=subtitle)


def save_bench(data_dir: Path, r: dict[str, Any], out_dir: Path | None = None) -> tuple[str, Path]:
    """The saved run folder (and copies in out_dir); the summary is written last, so a listing never shows a
    run whose files are missing."""
    plt = _plt()
    run_id, folder = new_run(data_dir, "bench")
    fig = bench_figure(r)
    try:
        fig.savefig(folder / "bench.png", dpi=110, bbox_inches="tight")
        png = H.png_base64(fig)
    finally:
        plt.close(fig)
    write_json(folder / "results.json", {**r, "run_id": run_id})
    (folder / "report.html").write_text(bench_html(r, png), encoding="utf-8")
    an, se = r["answer"], r["search"]["latency_ms"]
    write_summary(folder, RunSummary(
        id=run_id, kind="bench", created=datetime.now(UTC).isoformat(timespec="seconds"), collection=r["collection"],
        title=f"bench on {r['collection']} ({r['models']['llm']}, concurrency {r['concurrency']['concurrency']})",
        metrics={"ingest_chunks_per_s": r["ingest"]["chunks_per_s"], "search_p50_ms": se["p50"],
                 "search_p95_ms": se["p95"], "ttft_p50_s": an["ttft_s"]["p50"], "answer_p50_s": an["total_s"]["p50"],
                 "answer_p95_s": an["total_s"]["p95"], "decode_tokens_per_s": an["decode_tokens_per_s"],
                 "requests_per_s": r["concurrency"]["requests_per_s"]},
    ))
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        for name in ("results.json", "bench.png", "report.html"):
            shutil.copyfile(folder / name, out_dir / name)
    return run_id, folder


# ---------------------------------------------------------------- cost
def money(x: float | None, currency: str) -> str:
    if x is None:
        return "n/a"
    sign = "$" if currency == "USD" else f"{currency} "
    if abs(x) >= 100:
        return f"{sign}{x:,.0f}"
    if abs(x) >= 1:
        return f"{sign}{x:,.2f}"
    if x == 0:
        return f"{sign}0"
    return f"{sign}{x:.3g}" if abs(x) >= 1e-4 else f"{sign}{x:.7f}".rstrip("0")


def cost_rows(rep: CostReport, prices: PriceTable) -> list[tuple[str, str, str, str, str]]:
    """(option, monthly, per request, break-even volume, months to recover the purchase)."""
    cur, sh, n = rep.currency, rep.self_hosted, rep.workload.requests_per_month
    hw = prices.hardware[sh.hardware]
    rows = [
        (f"{hw.key} rented 24/7 ({sh.instances} instance{'s' * (sh.instances > 1)})",
         money(sh.rented_always_on, cur), money(sh.rented_always_on / n, cur), "", ""),
        (f"{hw.key} rented per busy hour", money(sh.rented_per_hour, cur), money(sh.rented_per_hour / n, cur), "", ""),
        (f"{hw.key} owned: power only", money(sh.owned_running, cur), money(sh.owned_running / n, cur),
         "", f"purchase {money(sh.purchase_total, cur)}"),
        (f"{hw.key} owned: power + purchase / {prices.amortisation_months:g} months",
         money(sh.owned_amortised, cur), money(sh.owned_amortised / n, cur), "", ""),
    ]
    for a in rep.apis:
        api = prices.apis[a.api]
        be = "never" if a.break_even_requests is None else f"{a.break_even_requests:,.0f} req/month"
        months = "never" if a.months_to_recover_purchase is None else f"{a.months_to_recover_purchase:,.1f}"
        if sh.purchase_total is None:
            months = "n/a (no purchase price)"
        rows.append((f"API {api.label}", money(a.monthly, cur), money(a.per_request, cur), be, months))
    return rows


COST_HEADERS = ("option", "monthly", "per request", "break-even vs rented always-on", "months to recover purchase")


def cost_figure(curve: dict[str, list[float]], rep: CostReport, prices: PriceTable) -> Any:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(10, 5.5))
    x = curve["requests_per_month"]
    styles = {"rented always-on": ("black", "-", 2.2), "rented per hour": ("black", ":", 2.0),
              "owned (amortised)": ("#7f7f7f", "--", 2.0)}
    palette = iter(["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#17becf", "#bcbd22", "#e377c2"] * 4)
    for name, ys in curve.items():
        if name == "requests_per_month":
            continue
        color, style, width = styles.get(name) or (next(palette), "-", 1.2)
        label = f"self-hosted {rep.self_hosted.hardware}: {name}" if name in styles else name
        if name == "rented always-on":
            ax.step(x, ys, where="post", color=color, linestyle=style, linewidth=width, label=label)
        else:
            ax.plot(x, ys, color=color, linestyle=style, linewidth=width, label=label)
    ax.axvline(rep.workload.requests_per_month, color="grey", linewidth=0.8)
    ax.annotate(f"{rep.workload.requests_per_month:,.0f} req/month", (rep.workload.requests_per_month, 0.02),
                xycoords=("data", "axes fraction"), fontsize=8, color="grey", rotation=90, ha="right")
    ax.set_xscale("log")
    ax.set_yscale("log")
    wl = rep.workload
    ax.set(xlabel="requests per month", ylabel=f"monthly cost ({rep.currency})",
           title=f"Monthly cost vs volume: {wl.prompt_tokens:,.0f} prompt + {wl.completion_tokens:,.0f} completion "
                 f"tokens per request, {rep.self_hosted.seconds_per_request:.2f} s per request self-hosted")
    ax.title.set_fontsize(10)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    fig.text(0.01, -0.02, f"Prices: {prices.origin} table, editable assumptions (not live quotes).", fontsize=8)
    fig.tight_layout()
    return fig


def save_cost(out_dir: Path, rep: CostReport, prices: PriceTable, curve: dict[str, list[float]]) -> Path:
    plt = _plt()
    out_dir.mkdir(parents=True, exist_ok=True)
    fig = cost_figure(curve, rep, prices)
    try:
        fig.savefig(out_dir / "cost.png", dpi=110, bbox_inches="tight")
        png = H.png_base64(fig)
    finally:
        plt.close(fig)
    entries = [[h.key, h.label, h.hourly, h.purchase, h.power_watts, h.source, h.as_of]
               for h in prices.hardware.values()]
    apis = [[a.key, a.label, a.input_per_mtok, a.output_per_mtok, a.source, a.as_of] for a in prices.apis.values()]
    write_json(out_dir / "cost.json", {**rep.to_dict(), "curve": curve, "prices": {
        "origin": prices.origin, "hardware": entries, "apis": apis}})
    body = "\n".join([
        H.section("Cost at this volume", H.table(COST_HEADERS, cost_rows(rep, prices))),
        H.image(png, "monthly cost against requests per month, log scales"),
        H.section("How it was computed", *[H.paragraph(n) for n in rep.notes]),
        H.section("Price table (editable assumptions, not live quotes)",
                  H.table(["hardware", "label", "per hour", "purchase", "watts", "source", "as of"], entries),
                  H.table(["API", "label", "input / 1M tokens", "output / 1M tokens", "source", "as of"], apis)),
    ])
    (out_dir / "cost.html").write_text(H.page("sovrag cost", body, subtitle=datetime.now(UTC).strftime(
        "%Y-%m-%d %H:%M UTC")), encoding="utf-8")
    return out_dir
