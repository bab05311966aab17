"""`sovrag cost`: the TCO / ROI formulas on hand-computed numbers, the price table's checks, and the CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sovrag.bench.cost import (
    Throughput,
    Workload,
    compare,
    default_prices_text,
    load_prices,
    parse_prices,
    throughput_from_bench,
    volume_curve,
)
from sovrag.cli import app
from sovrag.errors import CostError

TABLE = {
    "assumptions": {"currency": "USD", "hours_per_month": 730, "utilisation_cap": 0.5, "electricity_per_kwh": 0.2,
                    "amortisation_months": 10, "default_hardware": "box"},
    "hardware": {
        "box": {"label": "a box", "hourly": 1.0, "purchase": 1000, "power_watts": 100, "source": "test",
                "as_of": "2026-01"},
        "cheap": {"label": "a cheap box", "hourly": 0.1, "purchase": 1000, "power_watts": 100, "source": "test",
                  "as_of": "2026-01"},
    },
    "api": {"a": {"label": "API A", "input_per_mtok": 1.0, "output_per_mtok": 2.0, "source": "test",
                  "as_of": "2026-01"}},
}


def table(**changes):
    data = json.loads(json.dumps(TABLE))
    for dotted, value in changes.items():
        *path, last = dotted.split("__")
        node = data
        for key in path:
            node = node[key]
        if value is None:
            node.pop(last)
        else:
            node[last] = value
    return data


def test_costs_by_hand():
    prices = parse_prices(table())
    tp = Throughput(tokens_per_s=100, overhead_s=0.5)
    rep = compare(prices, tp, Workload(100_000, 1000, 500))
    sh = rep.self_hosted
    # 0.5 s + 1500 tokens / 100 tokens/s = 15.5 s per request
    assert sh.seconds_per_request == pytest.approx(15.5)
    # one instance at 50% of 730 h: 0.5 * 2,628,000 s / 15.5 s = 84,774.19 requests/month -> 2 instances
    assert sh.capacity_per_month == pytest.approx(84_774.1935, rel=1e-6)
    assert sh.instances == 2
    assert sh.rented_always_on == pytest.approx(2 * 1.0 * 730)  # 1,460
    # busy: 100,000 * 15.5 / 3600 = 430.56 h; / 0.5 = 861.1 -> 862 billed hours
    assert sh.rented_per_hour == pytest.approx(862.0)
    # power: 2 * 0.1 kW * 730 h * 0.2 = 29.2; purchase 2 * 1000 over 10 months = 200 more
    assert sh.owned_running == pytest.approx(29.2)
    assert sh.purchase_total == 2000
    assert sh.owned_amortised == pytest.approx(229.2)
    (api,) = rep.apis
    # (1000 * 1 + 500 * 2) / 1e6 = 0.002 per request, 200 per month
    assert api.per_request == pytest.approx(0.002) and api.monthly == pytest.approx(200.0)
    # one box costs 730 a month = 365,000 API requests, more than one box can serve (84,774): never
    assert api.break_even_requests is None
    # 2000 / (200 - 29.2) = 11.71 months
    assert api.months_to_recover_purchase == pytest.approx(2000 / 170.8)


def test_prefill_decode_split_and_break_even():
    prices = parse_prices(table())
    tp = Throughput(tokens_per_s=999, prefill_tokens_per_s=1000, decode_tokens_per_s=50)
    rep = compare(prices, tp, Workload(10_000, 1000, 500), hardware="cheap")
    # 1000 / 1000 + 500 / 50 = 11 s (the split wins over the blended 999 tokens/s)
    assert rep.self_hosted.seconds_per_request == pytest.approx(11.0)
    assert rep.self_hosted.instances == 1
    # 0.1 * 730 / 0.002 = 36,500 requests/month, within one box's 119,454
    assert rep.apis[0].break_even_requests == pytest.approx(36_500)


def test_never_recovers_when_the_api_is_cheaper_than_power():
    prices = parse_prices(table(hardware__box__power_watts=5000))  # 5 kW: 730 a month in power
    rep = compare(prices, Throughput(tokens_per_s=100), Workload(1000, 1000, 500))
    assert rep.apis[0].monthly == pytest.approx(2.0)
    assert rep.apis[0].months_to_recover_purchase is None


def test_no_purchase_price_means_no_payback():
    prices = parse_prices(table(hardware__box__purchase=None))
    rep = compare(prices, Throughput(tokens_per_s=100), Workload(1000, 1000, 500))
    assert rep.self_hosted.purchase_total is None and rep.apis[0].months_to_recover_purchase is None
    assert rep.self_hosted.owned_amortised == rep.self_hosted.owned_running


def test_curve_is_the_same_formulas_at_each_volume():
    prices = parse_prices(table())
    tp, wl = Throughput(tokens_per_s=100), Workload(1000, 1000, 500)
    curve = volume_curve(prices, tp, wl, None, [10.0, 1e6])
    assert curve["API API A"] == pytest.approx([0.02, 2000.0])
    assert curve["rented always-on"][0] == pytest.approx(730.0)
    assert all(math.isfinite(v) for k, vs in curve.items() for v in vs)


@pytest.mark.parametrize(("change", "message"), [
    ({"hardware__box__hourly": -1.0}, "hardware.box.hourly=-1.0: must be greater than zero"),
    ({"hardware__box__hourly": 0}, "hardware.box.hourly=0: must be greater than zero"),
    ({"hardware__box__hourly": float("nan")}, "hardware.box.hourly=nan: expected a finite number"),
    ({"hardware__box__hourly": "cheap"}, "hardware.box.hourly='cheap': expected a number"),
    ({"hardware__box__hourly": None}, "hardware.box.hourly=None: expected a number"),
    ({"api__a__output_per_mtok": -2}, "api.a.output_per_mtok=-2: must be greater than zero"),
    ({"api__a__source": None}, "api.a.source=None: expected a non-empty text"),
    ({"hardware__box__power_watts": -5}, "hardware.box.power_watts=-5: must be zero or more"),
    ({"assumptions__utilisation_cap": 1.5}, "assumptions.utilisation_cap=1.5"),
    ({"assumptions__hours_per_month": 1000}, "a month has at most 744 hours"),
    ({"assumptions__default_hardware": "gpu"}, "hardware 'gpu': not in the price table"),
    ({"api": {}}, "[api] has no entries"),
    ({"hardware": None}, "section [hardware] is missing"),
])
def test_bad_price_tables_name_the_field(change, message):
    with pytest.raises(CostError) as e:
        parse_prices(table(**change))
    assert message in str(e.value)


@pytest.mark.parametrize(("make", "message"), [
    (lambda: Throughput(tokens_per_s=0), "tokens_per_s=0: must be greater than zero"),
    (lambda: Throughput(tokens_per_s=-3.0), "tokens_per_s=-3.0: must be greater than zero"),
    (lambda: Throughput(tokens_per_s=float("inf")), "tokens_per_s=inf: expected a finite number"),
    (lambda: Throughput(tokens_per_s=10, decode_tokens_per_s=0), "decode_tokens_per_s=0"),
    (lambda: Workload(0, 100, 100), "requests_per_month=0: must be greater than zero"),
    (lambda: Workload(10, 100, 0), "completion_tokens=0: must be greater than zero"),
    (lambda: Workload(10, float("nan"), 10), "prompt_tokens=nan: expected a finite number"),
    (lambda: throughput_from_bench({"answer": {}}), "no 'cost_inputs' block"),
    (lambda: throughput_from_bench({"cost_inputs": {"tokens_per_s": None}}), "cost_inputs.tokens_per_s=None"),
])
def test_bad_throughput_and_workload(make, message):
    with pytest.raises(CostError) as e:
        make()
    assert message in str(e.value)


def test_default_table_loads_and_is_dated_with_sources():
    prices = load_prices()
    assert prices.origin == "default" and prices.hardware and prices.apis
    assert all(h.source and h.as_of for h in prices.hardware.values())
    assert all(a.source and a.as_of for a in prices.apis.values())
    assert "EDITABLE ASSUMPTIONS, NOT LIVE QUOTES" in default_prices_text()


# ---------------------------------------------------------------- CLI
@pytest.fixture
def run(tmp_path: Path):
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, ["--data-dir", str(tmp_path / "data"), "cost", *args], catch_exceptions=False)

    return invoke


def test_cli_cost_writes_table_plot_and_json(run, tmp_path: Path):
    out = tmp_path / "cost"
    r = run("--tokens-per-s", "100", "--requests-per-month", "50000", "--prompt-tokens", "1000",
            "--completion-tokens", "500", "--out", str(out))
    assert r.exit_code == 0, r.output
    assert "50,000 requests/month" in r.output and "GPT-4o mini" in r.output
    data = json.loads((out / "cost.json").read_text())
    assert data["workload"] == {"requests_per_month": 50000, "prompt_tokens": 1000, "completion_tokens": 500}
    assert data["self_hosted"]["seconds_per_request"] == pytest.approx(15.0)
    assert (out / "cost.png").read_bytes().startswith(b"\x89PNG")
    html = (out / "cost.html").read_text()
    assert "data:image/png;base64," in html and "not live quotes" in html


def test_cli_cost_with_an_edited_price_table(run, tmp_path: Path):
    path = tmp_path / "prices.toml"
    r = run("--write-prices", str(path))
    assert r.exit_code == 0 and path.is_file()
    assert run("--write-prices", str(path)).exit_code == 1  # never overwrites
    path.write_text(path.read_text().replace("hourly = 0.1008", "hourly = -0.1008"))
    r = run("--tokens-per-s", "100", "--prices", str(path), "--out", str(tmp_path / "o"))
    assert r.exit_code == 1 and "hardware.cpu-2vcpu.hourly=-0.1008: must be greater than zero" in r.output
    assert "Traceback" not in r.output


@pytest.mark.parametrize(("args", "message"), [
    (["--tokens-per-s", "0"], "tokens_per_s=0.0: must be greater than zero"),
    (["--tokens-per-s", "nan"], "tokens_per_s=nan: expected a finite number"),
    (["--tokens-per-s", "50", "--requests-per-month", "-5"], "requests_per_month=-5.0: must be greater than zero"),
    (["--tokens-per-s", "50", "--hardware", "tpu"], "hardware 'tpu': not in the price table"),
    ([], "no throughput"),
])
def test_cli_cost_bad_input_is_one_clear_error(run, tmp_path: Path, args, message):
    r = run(*args, "--out", str(tmp_path / "o"))
    assert r.exit_code == 1 and "error:" in r.output
    assert message in " ".join(r.output.split())
    assert "Traceback" not in r.output and not (tmp_path / "o" / "cost.json").exists()


def test_cli_cost_bench_file_problems(run, tmp_path: Path):
    bad = tmp_path / "r.json"
    bad.write_text("{nope")
    r = run("--bench", str(bad))
    assert r.exit_code == 1 and "not JSON" in r.output
    r = run("--bench", str(tmp_path / "missing.json"))
    assert r.exit_code == 1 and "cannot read it" in r.output
    bad.write_text(json.dumps({"cost_inputs": {"tokens_per_s": 100}}))
    r = run("--bench", str(bad), "--tokens-per-s", "5")
    assert r.exit_code == 1 and "not both" in r.output
