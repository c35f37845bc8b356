"""Benchmark 1 — engine overhead: hetflow wall time / Σ calculator wall times.

Many short tblite single points run through Workflow + Engine + LocalExecutor (fresh store, so
nothing is cached).  The calculators' own wall times come from the stored results
(``wall_time`` key, measured inside ``run_calculation`` around the SCF); the ratio therefore
contains everything hetflow adds: graph, content keys, input/result files, process pool, the
OpenBLAS worker round trip, ingestion into SQLite.  Target ≤ 1.02.

Two sets in one run: (a) tiny molecules (ASE G2, ≤ 10 atoms, ~10 ms each) where a fixed
per-task cost dominates; (b) ~1–3 s tasks (rattled 64-atom CsPbCl3 clusters, GFN2) where it
amortises.  The per-task overhead (wall − Σ calc) / n is printed for both.

    python bench/bench_overhead.py [--tiny 30] [--medium 6]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from _common import header, rattled, save


def run_set(name: str, structures: dict, spec, workers: int) -> dict:
    from hetflow.workflows.executors import LocalExecutor
    from hetflow.workflows.graph import Workflow
    from hetflow.workflows.store import ResultStore

    with tempfile.TemporaryDirectory(prefix=f"hetflow-bench-{name}-") as d:
        wf = Workflow(name)
        for n, a in structures.items():
            wf.add_calc(n, a, spec)
        store = ResultStore(Path(d) / "r.db")
        t0 = time.perf_counter()
        summary = wf.run(store, LocalExecutor(workers=workers, threads=1), workdir=Path(d) / "w")
        wall = time.perf_counter() - t0
        assert summary.ok and summary.run == len(structures), str(summary)
        calc = [float(row.wall_time) for row in store.db.select("calc_key")]
        assert len(calc) == len(structures)
    total = sum(calc)
    n = len(structures)
    out = {"tasks": n, "workers": workers, "wall_s": wall, "sum_calc_s": total,
           "ratio": wall / (total / workers), "per_task_overhead_s": (wall - total / workers) / n * workers,
           "mean_calc_s": total / n}
    print(f"   {name:<28s} {n:3d} tasks  wall {wall:7.2f} s  Σcalc {total:7.2f} s  "
          f"mean calc {total / n:6.3f} s  ratio {out['ratio']:.3f}  overhead/task {out['per_task_overhead_s'] * 1e3:6.1f} ms",
          flush=True)
    return out


def main(argv=None) -> int:
    from ase.build import molecule
    from ase.collections import g2

    from hetflow.calculators import CalcSpec
    from hetflow.structures.nanocrystal import cut_nanocrystal

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tiny", type=int, default=30)
    p.add_argument("--medium", type=int, default=10)
    a = p.parse_args(argv)
    m = header("Benchmark 1: engine overhead (1 worker, 1 thread)")

    names = [n for n in g2.names if 3 <= len(molecule(n)) <= 10][: a.tiny]
    tiny = {n: molecule(n) for n in names}
    spec1 = CalcSpec(method="GFN1-xTB")
    # odd-electron molecules need a doublet: skip them rather than guess
    from hetflow.calculators.electrons import check_charge_multiplicity
    ok = {}
    for n, at in tiny.items():
        try:
            check_charge_multiplicity(at.numbers, 0, 1)
            ok[n] = at
        except Exception:  # noqa: BLE001
            pass
    nc = cut_nanocrystal("CsPbCl3", (2, 2, 2))
    medium = {f"nc64_{i}": rattled(nc, i) for i in range(a.medium)}

    first = next(iter(ok))
    res = {"startup": run_set("1 task (fixed start-up)", {first: ok[first]}, spec1, 1),
           "tiny": run_set("tiny G2 molecules, GFN1", ok, spec1, 1),
           "medium": run_set(f"{len(nc)}-atom clusters, GFN2", medium, CalcSpec(method="GFN2-xTB"), 1)}
    fixed = res["startup"]["wall_s"] - res["startup"]["sum_calc_s"]
    for k in ("tiny", "medium"):
        r = res[k]
        r["fixed_startup_s"] = fixed
        r["steady_per_task_overhead_s"] = (r["wall_s"] - fixed - r["sum_calc_s"]) / r["tasks"]
        r["steady_ratio"] = (r["wall_s"] - fixed) / r["sum_calc_s"]
        print(f"   {k}: without the fixed start-up ({fixed:.2f} s: pool + OpenBLAS worker spawn, imports) "
              f"ratio {r['steady_ratio']:.3f}, overhead/task {r['steady_per_task_overhead_s'] * 1e3:.1f} ms")
    print(f"   RESULT overhead ratio: tiny {res['tiny']['ratio']:.3f}, ~{res['medium']['mean_calc_s']:.1f} s tasks "
          f"{res['medium']['ratio']:.3f} incl. start-up, {res['medium']['steady_ratio']:.3f} without (target ≤ 1.02)")
    save("overhead", res)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
