"""TCO / ROI: self-hosting at a measured throughput against per-token API prices.

The model is deliberately simple and every step is printed, because the inputs (prices, load shape) are
assumptions the user must be able to check:

- one request = P prompt + C completion tokens; one self-hosted instance serves requests one after the
  other (a single local llama.cpp model does), taking `overhead_s + P / prefill + C / decode` seconds each
  (or `(P + C) / tokens_per_s` when only one throughput is known);
- load is spread evenly over the month; instances are planned to be at most `utilisation_cap` busy:
  `instances = max(1, ceil(busy seconds / (utilisation_cap * seconds per month)))`;
- rented always-on: `instances * hourly * hours_per_month`; rented per hour (started only when needed):
  `ceil(busy hours / utilisation_cap) * hourly`; owned: power for the instances always on, and the purchase
  spread over `amortisation_months` when compared with the other options;
- API: `requests * (P * input price + C * output price) / 1e6`;
- break-even volume (rented always-on vs an API): the first monthly volume at which the API costs as much
  as one instance, `hourly * hours_per_month / API cost per request`, if one instance can serve that
  volume; else "never" (the API is cheaper per request than a fully loaded instance);
- months to recover a purchase: `purchase / (API monthly - owned running costs)`; "never" when the API
  is not dearer than running the owned machines.
"""

from __future__ import annotations

import json
import math
import tomllib
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from sovrag.errors import CostError

DEFAULT_PRICES = "prices.toml"


# ---------------------------------------------------------------- validation
def positive(name: str, value: Any, allow_zero: bool = False) -> float:
    """`value` as a finite number > 0 (>= 0 with allow_zero), else a CostError naming it."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CostError(f"{name}={value!r}: expected a number")
    v = float(value)
    if math.isnan(v) or math.isinf(v):
        raise CostError(f"{name}={value!r}: expected a finite number")
    if v < 0 or (v == 0 and not allow_zero):
        raise CostError(f"{name}={value!r}: must be {'zero or more' if allow_zero else 'greater than zero'}")
    return v


def _text(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise CostError(f"{name}={value!r}: expected a non-empty text")
    return value


# ---------------------------------------------------------------- price table
@dataclass(frozen=True)
class Hardware:
    key: str
    label: str
    hourly: float
    source: str
    as_of: str
    purchase: float | None = None
    power_watts: float = 0.0


@dataclass(frozen=True)
class ApiModel:
    key: str
    label: str
    input_per_mtok: float
    output_per_mtok: float
    source: str
    as_of: str

    def per_request(self, prompt_tokens: float, completion_tokens: float) -> float:
        return (prompt_tokens * self.input_per_mtok + completion_tokens * self.output_per_mtok) / 1e6


@dataclass(frozen=True)
class PriceTable:
    currency: str
    hours_per_month: float
    utilisation_cap: float
    electricity_per_kwh: float
    amortisation_months: float
    default_hardware: str
    hardware: dict[str, Hardware]
    apis: dict[str, ApiModel]
    origin: str  # the file it came from ("default" for the packaged one)

    def pick(self, key: str | None) -> Hardware:
        key = key or self.default_hardware
        if key not in self.hardware:
            raise CostError(f"hardware {key!r}: not in the price table ({', '.join(self.hardware)})")
        return self.hardware[key]


def default_prices_text() -> str:
    return resources.files("sovrag.bench").joinpath(DEFAULT_PRICES).read_text(encoding="utf-8")


def load_prices(path: Path | None = None) -> PriceTable:
    """The packaged defaults, or the user's TOML file; every field is checked and named when wrong."""
    where = str(path) if path else "default"
    try:
        text = path.read_text(encoding="utf-8") if path else default_prices_text()
    except OSError as e:
        raise CostError(f"price table {path}: cannot read it ({e.strerror or e})") from e
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise CostError(f"price table {where}: not valid TOML ({e})") from e
    return parse_prices(data, where)


def parse_prices(data: dict[str, Any], origin: str = "default") -> PriceTable:
    a = _section(data, "assumptions")
    hardware: dict[str, Hardware] = {}
    for key, h in _section(data, "hardware").items():
        p = f"hardware.{key}"
        if not isinstance(h, dict):
            raise CostError(f"{p}: expected a table of fields")
        purchase = h.get("purchase")
        hardware[key] = Hardware(
            key=key, label=_text(f"{p}.label", h.get("label")),
            hourly=positive(f"{p}.hourly", h.get("hourly")),
            source=_text(f"{p}.source", h.get("source")), as_of=_text(f"{p}.as_of", h.get("as_of")),
            purchase=None if purchase is None else positive(f"{p}.purchase", purchase),
            power_watts=positive(f"{p}.power_watts", h.get("power_watts", 0), allow_zero=True),
        )
    apis: dict[str, ApiModel] = {}
    for key, m in _section(data, "api").items():
        p = f"api.{key}"
        if not isinstance(m, dict):
            raise CostError(f"{p}: expected a table of fields")
        apis[key] = ApiModel(
            key=key, label=_text(f"{p}.label", m.get("label")),
            input_per_mtok=positive(f"{p}.input_per_mtok", m.get("input_per_mtok")),
            output_per_mtok=positive(f"{p}.output_per_mtok", m.get("output_per_mtok")),
            source=_text(f"{p}.source", m.get("source")), as_of=_text(f"{p}.as_of", m.get("as_of")),
        )
    if not hardware:
        raise CostError(f"price table {origin}: [hardware] has no entries; add at least one")
    if not apis:
        raise CostError(f"price table {origin}: [api] has no entries; add at least one")
    hours = positive("assumptions.hours_per_month", a.get("hours_per_month"))
    if hours > 744:
        raise CostError(f"assumptions.hours_per_month={hours:g}: a month has at most 744 hours")
    cap = positive("assumptions.utilisation_cap", a.get("utilisation_cap"))
    if cap > 1:
        raise CostError(f"assumptions.utilisation_cap={cap:g}: a share between 0 (excluded) and 1")
    table = PriceTable(
        currency=_text("assumptions.currency", a.get("currency")), hours_per_month=hours, utilisation_cap=cap,
        electricity_per_kwh=positive("assumptions.electricity_per_kwh", a.get("electricity_per_kwh"),
                                     allow_zero=True),
        amortisation_months=positive("assumptions.amortisation_months", a.get("amortisation_months")),
        default_hardware=_text("assumptions.default_hardware", a.get("default_hardware")),
        hardware=hardware, apis=apis, origin=origin,
    )
    table.pick(None)  # the default must exist
    return table


def _section(data: dict[str, Any], name: str) -> dict[str, Any]:
    sec = data.get(name)
    if not isinstance(sec, dict):
        raise CostError(f"price table: section [{name}] is missing")
    return sec


# ---------------------------------------------------------------- throughput and workload
@dataclass(frozen=True)
class Throughput:
    """How fast one self-hosted instance works through a request."""

    tokens_per_s: float  # prompt + completion tokens per second of generation, taken together
    prefill_tokens_per_s: float | None = None  # with decode: a per-phase split, used when both are known
    decode_tokens_per_s: float | None = None
    overhead_s: float = 0.0  # per request besides the LLM: retrieval, compression, citation checks
    source: str = "given"

    def __post_init__(self) -> None:
        positive("tokens_per_s", self.tokens_per_s)
        if self.prefill_tokens_per_s is not None:
            positive("prefill_tokens_per_s", self.prefill_tokens_per_s)
        if self.decode_tokens_per_s is not None:
            positive("decode_tokens_per_s", self.decode_tokens_per_s)
        positive("overhead_s", self.overhead_s, allow_zero=True)

    def seconds_per_request(self, prompt_tokens: float, completion_tokens: float) -> float:
        if self.prefill_tokens_per_s and self.decode_tokens_per_s:
            llm = prompt_tokens / self.prefill_tokens_per_s + completion_tokens / self.decode_tokens_per_s
        else:
            llm = (prompt_tokens + completion_tokens) / self.tokens_per_s
        return self.overhead_s + llm


@dataclass(frozen=True)
class Workload:
    requests_per_month: float
    prompt_tokens: float
    completion_tokens: float

    def __post_init__(self) -> None:
        positive("requests_per_month", self.requests_per_month)
        positive("prompt_tokens", self.prompt_tokens, allow_zero=True)
        positive("completion_tokens", self.completion_tokens)


def throughput_from_bench(results: dict[str, Any], origin: str = "bench results") -> Throughput:
    """The `cost_inputs` block `sovrag bench` writes into results.json."""
    ci = results.get("cost_inputs") if isinstance(results, dict) else None
    if not isinstance(ci, dict):
        raise CostError(f"{origin}: no 'cost_inputs' block; is this a results.json written by `sovrag bench`?")

    def opt(key: str) -> float | None:
        return None if ci.get(key) is None else positive(f"{origin}: cost_inputs.{key}", ci[key])

    return Throughput(
        tokens_per_s=positive(f"{origin}: cost_inputs.tokens_per_s", ci.get("tokens_per_s")),
        prefill_tokens_per_s=opt("prefill_tokens_per_s"), decode_tokens_per_s=opt("decode_tokens_per_s"),
        overhead_s=positive(f"{origin}: cost_inputs.overhead_s", ci.get("overhead_s", 0.0), allow_zero=True),
        source=origin,
    )


def resolve_inputs(bench_path: Path | None, tokens_per_s: float | None, overhead_s: float, requests_per_month: float,
                   prompt_tokens: float | None, completion_tokens: float | None) -> tuple[Throughput, Workload]:
    """The throughput (a bench run's results.json, or given) and the workload; tokens per request default
    to the bench's means, else 1000 prompt + 200 completion."""
    if bench_path is not None and tokens_per_s is not None:
        raise CostError("give either --bench RESULTS.json or --tokens-per-s, not both")
    data: dict[str, Any] = {}
    if bench_path is not None:
        try:
            data = json.loads(bench_path.read_text(encoding="utf-8"))
        except OSError as e:
            raise CostError(f"bench results {bench_path}: cannot read it ({e.strerror or e})") from e
        except ValueError as e:
            raise CostError(f"bench results {bench_path}: not JSON ({e})") from e
        tp = throughput_from_bench(data, f"bench results {bench_path}")
    elif tokens_per_s is not None:
        tp = Throughput(tokens_per_s=tokens_per_s, overhead_s=overhead_s, source="--tokens-per-s")
    else:
        raise CostError("no throughput: give --bench RESULTS.json (from `sovrag bench`) or --tokens-per-s X")
    ci = data.get("cost_inputs") if isinstance(data, dict) else None
    ci = ci or {}
    prompt = prompt_tokens if prompt_tokens is not None else ci.get("prompt_tokens_mean") or 1000.0
    completion = completion_tokens if completion_tokens is not None else ci.get("completion_tokens_mean") or 200.0
    return tp, Workload(requests_per_month, prompt, completion)


# ---------------------------------------------------------------- the calculation
@dataclass(frozen=True)
class SelfHosted:
    hardware: str
    seconds_per_request: float
    capacity_per_month: float  # requests one instance serves in a month at the utilisation cap
    instances: int
    rented_always_on: float
    rented_per_hour: float
    owned_running: float  # power for the instances, always on
    owned_amortised: float  # running + purchase / amortisation_months
    purchase_total: float | None


@dataclass(frozen=True)
class ApiComparison:
    api: str
    monthly: float
    per_request: float
    break_even_requests: float | None  # rented always-on vs this API; None = never
    months_to_recover_purchase: float | None  # owned hardware; None = never (or no purchase price)


@dataclass
class CostReport:
    workload: Workload
    throughput: Throughput
    self_hosted: SelfHosted
    apis: list[ApiComparison]
    currency: str
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"currency": self.currency, "workload": asdict(self.workload), "throughput": asdict(self.throughput),
                "self_hosted": asdict(self.self_hosted), "apis": [asdict(a) for a in self.apis],
                "notes": list(self.notes)}


def self_hosted_cost(prices: PriceTable, hw: Hardware, tp: Throughput, wl: Workload) -> SelfHosted:
    s = tp.seconds_per_request(wl.prompt_tokens, wl.completion_tokens)
    month_s = prices.hours_per_month * 3600
    capacity = prices.utilisation_cap * month_s / s
    busy_hours = wl.requests_per_month * s / 3600
    instances = max(1, math.ceil(wl.requests_per_month / capacity - 1e-9))
    power = instances * hw.power_watts / 1000 * prices.hours_per_month * prices.electricity_per_kwh
    purchase = instances * hw.purchase if hw.purchase is not None else None
    return SelfHosted(
        hardware=hw.key, seconds_per_request=s, capacity_per_month=capacity, instances=instances,
        rented_always_on=instances * hw.hourly * prices.hours_per_month,
        rented_per_hour=math.ceil(busy_hours / prices.utilisation_cap - 1e-9) * hw.hourly,
        owned_running=power,
        owned_amortised=power + (purchase / prices.amortisation_months if purchase is not None else 0.0),
        purchase_total=purchase,
    )


def break_even_requests(prices: PriceTable, hw: Hardware, sh: SelfHosted, api_per_request: float) -> float | None:
    """Monthly volume at which the API costs as much as one always-on rented instance, if one can serve it."""
    n = hw.hourly * prices.hours_per_month / api_per_request
    return n if n <= sh.capacity_per_month else None


def compare(prices: PriceTable, tp: Throughput, wl: Workload, hardware: str | None = None) -> CostReport:
    hw = prices.pick(hardware)
    sh = self_hosted_cost(prices, hw, tp, wl)
    rows = []
    for api in prices.apis.values():
        per_req = api.per_request(wl.prompt_tokens, wl.completion_tokens)
        monthly = per_req * wl.requests_per_month
        saving = monthly - sh.owned_running
        months = sh.purchase_total / saving if sh.purchase_total is not None and saving > 0 else None
        rows.append(ApiComparison(api.key, monthly, per_req, break_even_requests(prices, hw, sh, per_req), months))
    notes = [
        f"prices: {prices.origin} table (editable assumptions, not live quotes; see each entry's source and date)",
        f"throughput from {tp.source} applies to hardware {hw.key!r} ({hw.label})",
        f"one instance: {sh.seconds_per_request:.2f} s per request, {sh.capacity_per_month:,.0f} requests/month "
        f"at {prices.utilisation_cap:.0%} utilisation",
        "cost only: answer quality differs between a small local model and a large hosted one; measure it too",
    ]
    return CostReport(wl, tp, sh, rows, prices.currency, notes)


def volume_curve(prices: PriceTable, tp: Throughput, wl: Workload, hardware: str | None,
                 volumes: list[float]) -> dict[str, list[float]]:
    """Monthly cost of every option at each volume (same tokens per request): the data of the plot."""
    hw = prices.pick(hardware)
    out: dict[str, list[float]] = {"requests_per_month": list(volumes), "rented always-on": [],
                                   "rented per hour": [], "owned (amortised)": []}
    for api in prices.apis.values():
        out[f"API {api.label}"] = []
    for n in volumes:
        w = Workload(n, wl.prompt_tokens, wl.completion_tokens)
        sh = self_hosted_cost(prices, hw, tp, w)
        out["rented always-on"].append(sh.rented_always_on)
        out["rented per hour"].append(sh.rented_per_hour)
        out["owned (amortised)"].append(sh.owned_amortised)
        for api in prices.apis.values():
            out[f"API {api.label}"].append(api.per_request(w.prompt_tokens, w.completion_tokens) * n)
    return out


def log_volumes(center: float, decades: int = 3, per_decade: int = 12) -> list[float]:
    """Volumes from center / 10^decades to center * 10^decades, evenly spaced on a log scale."""
    lo = math.log10(center) - decades
    n = 2 * decades * per_decade
    return [10 ** (lo + i / per_decade) for i in range(n + 1)]
