"""Run every hetflow benchmark in sequence (one process each) and print their RESULT lines.

    python bench/run_all.py            # ≈ 15–20 min on the shared 2-core machine
    python bench/run_all.py --quick    # smaller models (≈ 3 min), for a smoke test

Each benchmark prints its own ratios measured in the same run and writes
bench/results/<name>.json (with date, nproc, CPU model and load average).  bench_blas.py (the
calculator layer's BLAS comparison) is run too unless --no-blas.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--no-blas", action="store_true")
    a = p.parse_args(argv)
    full = [
        ["bench_overhead.py"],
        ["bench_xtb_baseline.py", "--size", "3", "3", "2", "--steps", "3"],
        ["bench_symmetry.py"],
        ["bench_scaling.py", "--max-atoms", "250"],
        ["bench_exchange_scan.py"],
        ["bench_mo_sizes.py"],
    ]
    quick = [
        ["bench_overhead.py", "--tiny", "10", "--medium", "3"],
        ["bench_xtb_baseline.py", "--size", "2", "2", "1", "--steps", "2"],
        ["bench_symmetry.py"],
        ["bench_scaling.py", "--max-atoms", "70", "--tasks", "4"],
        ["bench_exchange_scan.py", "--fmax", "0.3"],
        ["bench_mo_sizes.py", "--configs", "1"],
    ]
    runs = quick if a.quick else full
    if not a.no_blas:
        runs.append(["bench_blas.py", "--size", "2", "2", "1", "--method", "GFN1-xTB", "--threads", "1"]
                    if a.quick else ["bench_blas.py", "--size", "3", "3", "2", "--method", "GFN1-xTB"])
    results, rc = [], 0
    t0 = time.perf_counter()
    for cmd in runs:
        print(f"\n$ python bench/{' '.join(cmd)}", flush=True)
        env = dict(os.environ)
        if a.quick:  # smoke-test figures must not replace the ones BENCHMARKS.md quotes
            env["HETFLOW_BENCH_RESULTS"] = str(HERE / "results" / "quick")
        proc = subprocess.run([sys.executable, str(HERE / cmd[0]), *cmd[1:]], cwd=HERE, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
        print(proc.stdout, end="", flush=True)
        rc = rc or proc.returncode
        results += [line.strip() for line in proc.stdout.splitlines()
                    if "RESULT" in line or "speed-up bundled/OpenBLAS" in line]
    print(f"\n== summary ({time.perf_counter() - t0:.0f} s)")
    for line in results:
        print("  ", line)
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
