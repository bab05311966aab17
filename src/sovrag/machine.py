"""This machine: the cores a process may use (the embedder's and llama.cpp's thread counts), and what a
benchmark or an evaluation report records about it, including whether other processes competed for the CPUs."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path
from typing import Any

from sovrag import __version__


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity, which containers and taskset narrow)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - non-Linux
        return os.cpu_count() or 1


def machine_info() -> dict[str, Any]:
    """CPU model, usable cores, RAM, OS, Python and sovrag versions, load: what a reader needs to compare."""
    cpu = platform.processor()
    ram = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                ram = round(int(line.split()[1]) / 2**20, 1)
    except (OSError, ValueError, IndexError):
        pass
    return {"cpu": cpu or "unknown", "cores": available_cores(), "ram_gib": ram, "os": platform.platform(),
            "python": platform.python_version(), "sovrag": __version__,
            "loadavg_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None}


class CpuMeter:
    """How many cores' worth of CPU other processes used while a phase ran (from /proc/stat minus this
    process's own CPU time): on a shared machine this says whether a number was measured under contention."""

    def __init__(self) -> None:
        self.start = self._snapshot()

    @staticmethod
    def _snapshot() -> tuple[float, float, float] | None:
        try:
            with open("/proc/stat", encoding="ascii") as f:
                vals = [int(v) for v in f.readline().split()[1:9]]
        except (OSError, ValueError):
            return None
        busy = (sum(vals) - vals[3] - vals[4]) / os.sysconf("SC_CLK_TCK")  # all but idle and iowait
        own = sum(os.times()[:2])
        return busy, own, time.monotonic()

    def other_cores_busy(self) -> float | None:
        end = self._snapshot()
        if self.start is None or end is None or end[2] <= self.start[2]:
            return None
        other = (end[0] - self.start[0]) - (end[1] - self.start[1])
        return round(max(other, 0.0) / (end[2] - self.start[2]), 2)
