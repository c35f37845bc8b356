"""Benchmark 4 — scaling: single-point time vs atom count (GFN1/GFN2), local-executor speed-up
with 1 vs 2 workers on independent tasks, and peak memory (VmHWM) per worker process.

Clusters are ``cut_nanocrystal("CsPbCl3", size)``: 36, 64, 132, 189, 246 atoms by default
(``--sizes`` adds e.g. 4 4 4 = 416 atoms; GFN2 at 416 atoms takes several minutes on 2 cores).
Single points run through ``run_calculation`` (OpenBLAS worker, 2 threads); the fitted
exponent b of t ∝ N^b is printed.  The executor part runs the same 8 rattled 64-atom GFN1
tasks with workers=1 and workers=2 (threads=1 each).  Memory: every descendant process is
sampled from /proc/<pid>/status (VmHWM = peak resident set).

    python bench/bench_scaling.py [--max-atoms 250] [--tasks 8]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from _common import header, rattled, save

SIZES = [(2, 2, 1), (2, 2, 2), (3, 3, 2), (3, 3, 3), (4, 3, 3), (4, 4, 3), (4, 4, 4)]


class PeakMemory:
    """Samples VmHWM (kB) of every descendant of this process every 0.2 s."""

    def __init__(self):
        self.peak: dict[int, tuple[str, int]] = {}
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _descendants(self) -> list[int]:
        parent = {}
        for d in Path("/proc").iterdir():
            if d.name.isdigit():
                try:
                    parent[int(d.name)] = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
                except (OSError, ValueError, IndexError):
                    pass
        out, front = [], [os.getpid()]
        while front:
            kids = [p for p, pp in parent.items() if pp in front]
            out += kids
            front = kids
        return out

    def _run(self):
        while not self._stop.is_set():
            for pid in self._descendants():
                try:
                    st = Path(f"/proc/{pid}/status").read_text()
                    cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:80]
                except OSError:
                    continue
                kb = int(next(x for x in st.splitlines() if x.startswith("VmHWM")).split()[1])
                if kb > self.peak.get(pid, ("", 0))[1]:
                    self.peak[pid] = (cmd, kb)
            time.sleep(0.2)

    def __enter__(self):
        for pid in self._descendants():  # reset VmHWM of the persistent xTB worker (Linux ≥ 4.0)
            try:
                Path(f"/proc/{pid}/clear_refs").write_text("5")
            except OSError:
                pass
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()


def executor_speedup(n_tasks: int) -> dict:
    from hetflow.calculators import CalcSpec
    from hetflow.structures.nanocrystal import cut_nanocrystal
    from hetflow.workflows.executors import LocalExecutor
    from hetflow.workflows.graph import Workflow
    from hetflow.workflows.store import ResultStore

    nc = cut_nanocrystal("CsPbCl3", (2, 2, 2))
    spec = CalcSpec(method="GFN1-xTB")
    out = {}
    for workers in (1, 2):
        with tempfile.TemporaryDirectory(prefix="hetflow-bench-exec-") as d, PeakMemory() as mem:
            wf = Workflow(f"w{workers}")
            for i in range(n_tasks):
                wf.add_calc(f"t{i}", rattled(nc, 100 + i), spec)
            t0 = time.perf_counter()
            s = wf.run(ResultStore(Path(d) / "r.db"), LocalExecutor(workers=workers, threads=1), workdir=Path(d) / "w")
            wall = time.perf_counter() - t0
            assert s.ok and s.run == n_tasks, str(s)
        pool = [kb for cmd, kb in mem.peak.values() if "spawn_main" in cmd or "multiprocessing" in cmd]
        xtb = [kb for cmd, kb in mem.peak.values() if "hetflow.calculators._worker" in cmd]
        out[workers] = {"wall_s": wall, "pool_worker_peak_MB": max(pool, default=0) / 1024,
                        "xtb_worker_peak_MB": max(xtb, default=0) / 1024}
        print(f"   executor: {n_tasks} × {len(nc)}-atom GFN1 tasks, workers={workers}: {wall:6.2f} s   "
              f"peak RSS pool worker {out[workers]['pool_worker_peak_MB']:.0f} MB, "
              f"xTB worker {out[workers]['xtb_worker_peak_MB']:.0f} MB", flush=True)
    out["speedup"] = out[1]["wall_s"] / out[2]["wall_s"]
    print(f"   speed-up 1 → 2 workers: {out['speedup']:.2f}× (ideal 2 on 2 idle cores)")
    return out


def main(argv=None) -> int:
    from hetflow.calculators import CalcSpec, run_calculation
    from hetflow.structures.nanocrystal import cut_nanocrystal

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--max-atoms", type=int, default=250)
    p.add_argument("--tasks", type=int, default=8)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args(argv)
    header(f"Benchmark 4: scaling (single points: OpenBLAS worker, {a.threads} threads)")
    os.environ["HETFLOW_THREADS"] = str(a.threads)
    rows = []
    for method in ("GFN1-xTB", "GFN2-xTB"):
        spec = CalcSpec(method=method)
        run_calculation(cut_nanocrystal("CsPbCl3", (2, 2, 1)), spec)  # start the worker before timing
        for size in SIZES:
            atoms = cut_nanocrystal("CsPbCl3", size)
            if len(atoms) > a.max_atoms:
                break
            with PeakMemory() as mem:
                t0 = time.perf_counter()
                r = run_calculation(atoms, spec)
                dt = time.perf_counter() - t0
            xtb = max((kb for cmd, kb in mem.peak.values() if "hetflow.calculators._worker" in cmd), default=0)
            rows.append({"method": method, "natoms": len(atoms), "size": size, "t_s": dt, "scf": r.scf_steps,
                         "xtb_worker_peak_MB": xtb / 1024})
            print(f"   {method} {len(atoms):4d} atoms: {dt:7.2f} s  ({r.scf_steps} SCF)  worker peak RSS {xtb / 1024:.0f} MB",
                  flush=True)
    fits = {}
    for method in ("GFN1-xTB", "GFN2-xTB"):
        pts = [(r["natoms"], r["t_s"]) for r in rows if r["method"] == method and r["natoms"] >= 60]
        if len(pts) >= 2:
            b = np.polyfit(np.log([x for x, _ in pts]), np.log([t for _, t in pts]), 1)[0]
            fits[method] = float(b)
            print(f"   {method}: t ∝ N^{b:.2f} (N ≥ 60)")
    ex = executor_speedup(a.tasks)
    print(f"   RESULT largest: {rows[-1]['natoms']} atoms {rows[-1]['method']} {rows[-1]['t_s']:.1f} s; "
          f"exponents {', '.join(f'{k} {v:.2f}' for k, v in fits.items())}; 1→2 workers {ex['speedup']:.2f}×")
    save("scaling", {"single_points": rows, "exponents": fits, "executor": ex})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
