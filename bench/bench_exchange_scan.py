"""Benchmark 3 — exchange-scan cost: warm starts vs cold relaxations.

The S1 scan (Cl→I, N = 1…5 layers from the interface and from the bottom: 10
configurations) is built with the lead's recipe (``exchange_scan.s1_workflow``, full mode:
configuration N relaxes from the relaxed N−1 geometry, N = 1 from the relaxed pristine).  The
same 10 configurations are then relaxed *cold*, each from its unrelaxed geometry (the
pristine positions with the halides swapped), with the identical CalcSpec.  Force calls of a
FIRE relaxation = optimiser steps + 1 (``opt_steps`` in each task's result.json).  Target:
warm ≤ 0.5 × cold force calls.  The pristine relaxation (needed by both) is reported apart.

Small model so it finishes in minutes: ``size=(2, 2, 3)``, one Pb4S3Cl2 block (≈ 140 atoms,
7 perovskite layers), GFN1-xTB, fmax 0.1 eV/Å (loose), both runs with 2 workers × 1 thread.

    python bench/bench_exchange_scan.py [--size 2 2 3] [--fmax 0.1]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from _common import header, save


def _calls(workdir: Path, names: list[str]) -> dict[str, int]:
    from hetflow.workflows._taskdir import TaskDir

    out = {}
    for n in names:
        d = json.loads(TaskDir.for_task(workdir, n).result.read_text())
        out[n] = int(d["opt_steps"]) + 1
    return out


def main(argv=None) -> int:
    from hetflow.workflows._engine import Engine
    from hetflow.workflows.executors import LocalExecutor
    from hetflow.workflows.graph import CalcTask, Workflow
    from hetflow.recipes.common import RecipeOptions
    from hetflow.recipes.exchange_scan import ScanModel, s1_workflow
    from hetflow.workflows.store import ResultStore

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", nargs=3, type=int, default=(2, 2, 3))
    p.add_argument("--partner-cells", type=int, default=1)
    p.add_argument("--fmax", type=float, default=0.1)
    p.add_argument("--max-steps", type=int, default=400)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--optimizer", default="FIRE", help="ASE optimiser for both warm and cold relaxations")
    a = p.parse_args(argv)
    header("Benchmark 3: S1 exchange scan, warm starts vs cold relaxations")
    with tempfile.TemporaryDirectory(prefix="hetflow-bench-scan-") as d:
        d = Path(d)
        opts = RecipeOptions(method="GFN1-xTB", quick=False, fmax=a.fmax, max_steps=a.max_steps, optimizer=a.optimizer, outdir=d,
                             progress=False)
        model = ScanModel(size=tuple(a.size), partner_cells=a.partner_cells)
        wf, hs, series = s1_workflow(model, opts, "s1")
        configs = series["interface"] + series["bottom"]
        # warm: pristine + the two chains (drop references / MO single point: not part of the comparison)
        warm = Workflow("warm")
        for n in ["pristine", *configs]:
            t = wf.task(n)
            warm.add_calc(n, t.atoms, t.spec, start_from=t.start_from)
        print(f"   model {hs.get_chemical_formula()} ({len(hs)} atoms), {len(configs)} configurations, "
              f"{opts.method}, fmax {a.fmax} eV/Å, FIRE, {a.workers} workers × 1 thread", flush=True)
        t0 = time.perf_counter()
        s = Engine(warm, ResultStore(d / "warm.db"), LocalExecutor(workers=a.workers, threads=1), d / "warm").run()
        t_warm_total = time.perf_counter() - t0
        assert s.ok, str(s)
        calls_warm = _calls(d / "warm", configs)
        pristine_calls = _calls(d / "warm", ["pristine"])["pristine"]
        wall_pristine = json.loads((d / "warm" / "tasks" / "pristine" / "result.json").read_text())["wall_time"]

        cold = Workflow("cold")
        for n in configs:
            t: CalcTask = wf.task(n)
            cold.add_calc(n, t.atoms, t.spec)  # the unrelaxed configuration, no warm start
        t0 = time.perf_counter()
        s = Engine(cold, ResultStore(d / "cold.db"), LocalExecutor(workers=a.workers, threads=1), d / "cold").run()
        t_cold = time.perf_counter() - t0
        assert s.ok, str(s)
        calls_cold = _calls(d / "cold", configs)
        conv = {}
        for tag, db in (("warm", d / "warm.db"), ("cold", d / "cold.db")):
            conv[tag] = sum(bool(r.converged) for r in ResultStore(db).rows() if r.name in configs)

    for n in configs:
        print(f"   {n:<22s} force calls warm {calls_warm[n]:4d}   cold {calls_cold[n]:4d}")
    fw, fc = sum(calls_warm.values()), sum(calls_cold.values())
    # wall of the warm configurations only: total minus the pristine relaxation that precedes them
    t_warm = t_warm_total - wall_pristine
    res = {"natoms": len(hs), "fmax": a.fmax, "workers": a.workers, "force_calls_warm": fw, "force_calls_cold": fc,
           "ratio_force_calls": fw / fc, "pristine_force_calls": pristine_calls, "wall_warm_s": t_warm,
           "wall_warm_incl_pristine_s": t_warm_total, "wall_cold_s": t_cold, "ratio_wall": t_warm / t_cold,
           "converged": conv, "per_config": {n: [calls_warm[n], calls_cold[n]] for n in configs}}
    print(f"   pristine relaxation: {pristine_calls} force calls, {wall_pristine:.1f} s (needed by both)")
    print(f"   RESULT force calls warm/cold = {fw}/{fc} = {fw / fc:.2f} (target ≤ 0.5); wall {t_warm:.1f} s / "
          f"{t_cold:.1f} s = {t_warm / t_cold:.2f}; converged warm {conv['warm']}/10, cold {conv['cold']}/10")
    save("exchange_scan", res)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
