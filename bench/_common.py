"""Shared helpers of the benchmarks: machine line, load, JSON results next to the scripts."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

#: where results go; run_all.py --quick points this at results/quick so smoke tests do not
#: overwrite the figures BENCHMARKS.md quotes
RESULTS = Path(os.environ.get("HETFLOW_BENCH_RESULTS") or Path(__file__).resolve().parent / "results")


def machine() -> dict:
    """nproc, CPU model (/proc/cpuinfo), load average, Python — printed with every benchmark."""
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu": model, "loadavg": list(os.getloadavg()),
            "python": platform.python_version(), "date": time.strftime("%Y-%m-%d %H:%M:%S %Z")}


def header(title: str) -> dict:
    m = machine()
    print(f"== {title}\n   {m['date']} | {m['nproc']} cores, {m['cpu']} | load {m['loadavg'][0]:.2f} "
          f"{m['loadavg'][1]:.2f} {m['loadavg'][2]:.2f}", flush=True)
    return m


def save(name: str, data: dict) -> Path:
    """Write bench/results/<name>.json (machine info + figures)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    data = {"machine": machine()} | data
    path.write_text(json.dumps(data, indent=1, default=float))
    return path


def rattled(atoms, seed: int, stdev: float = 0.02):
    """A copy with positions displaced by N(0, stdev) Å (distinct content keys, same physics)."""
    a = atoms.copy()
    a.rattle(stdev=stdev, seed=seed)
    return a
