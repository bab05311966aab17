"""Measuring sovrag on the user's own collection and hardware (`sovrag bench`), and what running it would
cost against hosted APIs (`sovrag cost`)."""

from sovrag.bench.cost import Throughput, Workload, compare, load_prices, throughput_from_bench
from sovrag.bench.run import BenchOptions, run_bench

__all__ = ["BenchOptions", "Throughput", "Workload", "compare", "load_prices", "run_bench",
           "throughput_from_bench"]
