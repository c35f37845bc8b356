"""Benchmark — time to a converged Table S1: warm-started chains against cold relaxations.

Runs ``hetflow reproduce s1`` (``--quick`` by default) end to end on a fresh output folder and
store, every relaxation converged (the recipes' gate), and reports its wall time against the
budget (quick ≤ 20 min, full ≤ 3 h on 2 idle cores).  Then relaxes the same ten exchanged
configurations the earlier way — each from the relaxed pristine model instead of its parent
(``RecipeOptions(warm_start=False)``), the same model, spec and store (so the pristine,
reference-NC and PbX2 relaxations are reused, not recomputed) — and reports the ratio of force
calls and of wall time of the ten configurations, measured in one run.

    python bench/bench_table_budget.py [--full] [--workers 2 --threads 1] [--optimizer FIRE]
        [--no-cold] [--outdir DIR] [--level xtb|mlip [--mlip chgnet|sevennet]]

``--level mlip`` runs the same comparison with the machine-learned potential (seconds instead of
hours on 2 cores: the GFN1 run of the 244-atom quick model is a many-hour job here).

Force calls are load-independent; wall times depend on what else the machine runs (the load is
printed at start and end).  Results: ``bench/results/table_budget[_full].json``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from _common import header, machine, save


def _calls(results: dict, names: list[str]) -> tuple[int, list[dict]]:
    from hetflow.recipes.exchange_scan import relaxation_record

    rows = [{"task": n, **relaxation_record(results[n])} for n in names]
    return sum(int(r["force_calls"] or 0) for r in rows), rows


def main(argv=None) -> int:
    from hetflow.recipes.common import RecipeOptions
    from hetflow.recipes.exchange_scan import ScanModel, run_s1

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--full", action="store_true", help="the full model (3×3×5, fmax 0.05) instead of --quick")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--optimizer", default="FIRE")
    p.add_argument("--no-cold", action="store_true", help="only the end-to-end run")
    p.add_argument("--outdir", default=None)
    p.add_argument("--level", choices=["xtb", "mlip"], default="xtb")
    p.add_argument("--mlip", choices=["chgnet", "sevennet"], default="chgnet")
    a = p.parse_args(argv)
    name = ("table_budget_full" if a.full else "table_budget") + ("" if a.level == "xtb" else f"_{a.mlip}")
    m = header(f"Time to a converged Table S1 ({'full' if a.full else 'quick'})")
    out = Path(a.outdir or tempfile.mkdtemp(prefix="hetflow-bench-budget-"))
    ex = {"workers": a.workers, "threads": a.threads}
    common = dict(quick=not a.full, outdir=out / "warm", store=str(out / "results.db"), progress=False,
                  executor_options=ex, optimizer=a.optimizer, level=a.level, mlip=a.mlip)
    t0 = time.perf_counter()
    warm = run_s1(ScanModel(), RecipeOptions(**common))
    t_warm = time.perf_counter() - t0
    series = warm.extra.get("row_converged")
    configs = [f"s1-{s}-N{n}" for s in ("interface", "bottom") for n in range(1, 6)]
    calls_warm, rows_warm = _calls(warm.results, configs)
    calls_base, rows_base = _calls(warm.results, ["pristine", "nc-reference"])
    wall_cfg_warm = sum(float(warm.results[n].provenance.get("end", 0)) - float(warm.results[n].provenance.get("start", 0))
                        for n in configs)
    print(f"   end to end: {t_warm / 60:.1f} min wall, every relaxation converged: {not warm.extra['unconverged']}; "
          f"force calls: pristine + NC {calls_base}, ten configurations {calls_warm} (warm starts)", flush=True)
    result = {"mode": "full" if a.full else "quick", "wall_s_end_to_end": t_warm,
              "budget_s": 3 * 3600 if a.full else 20 * 60, "all_converged": not warm.extra["unconverged"],
              "force_calls_base": calls_base, "force_calls_configs_warm": calls_warm,
              "config_wall_s_warm": wall_cfg_warm, "rows_warm": rows_warm + rows_base,
              "row_converged": series, "model": warm.extra.get("model"), "workers": a.workers, "threads": a.threads,
              "optimizer": a.optimizer, "level": a.level if a.level == "xtb" else f"mlip:{a.mlip}"}
    if not a.no_cold:
        t1 = time.perf_counter()
        cold = run_s1(ScanModel(), RecipeOptions(**{**common, "outdir": out / "cold", "warm_start": False}), name="s1-cold")
        t_cold = time.perf_counter() - t1
        calls_cold, rows_cold = _calls(cold.results, configs)
        wall_cfg_cold = sum(float(cold.results[n].provenance.get("end", 0)) - float(cold.results[n].provenance.get("start", 0))
                            for n in configs)
        print(f"   cold (each configuration from the relaxed pristine model): {calls_cold} force calls, "
              f"{t_cold / 60:.1f} min wall (pristine, NC and references reused)", flush=True)
        print(f"   RESULT warm/cold force calls of the ten configurations: {calls_warm / calls_cold:.2f}; "
              f"summed task wall time {wall_cfg_warm / max(wall_cfg_cold, 1e-9):.2f}", flush=True)
        result.update(force_calls_configs_cold=calls_cold, ratio_force_calls=calls_warm / calls_cold,
                      config_wall_s_cold=wall_cfg_cold, ratio_config_wall=wall_cfg_warm / max(wall_cfg_cold, 1e-9),
                      wall_s_cold_configs=t_cold, rows_cold=rows_cold, all_converged_cold=not cold.extra["unconverged"])
    result["machine_at_end"] = machine()
    path = save(name, result | {"machine_at_start": m})
    print(f"   wrote {path}; outputs in {out}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("HETFLOW_PROGRESS", "off")
    sys.exit(main())
