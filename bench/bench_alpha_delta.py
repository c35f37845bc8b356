"""Benchmark — E(α) − E(δ) of bulk CsPbI3 per formula unit at every level, beside Li et al.'s 18 kJ/mol.

The ZIF study's first number (SCIENCE.md): the black α phase lies 18 kJ/mol per CsPbI3 above the
yellow δ phase (PBE, Li et al.).  For each level — the offline potentials of ``--mlip`` and, with
``--xtb``, GFN1-xTB (tblite) — this relaxes both phases (ions + cell, α from a seeded
symmetry-lowering start) and converges the energy per formula unit over Γ-point supercells, as
``hetflow reproduce zif`` does (:func:`hetflow.recipes.bulk.run_bulk`, quick settings with
``--quick``), and records the difference (kJ/mol), whether it converged, and the wall time.

    python bench/bench_alpha_delta.py [--mlip chgnet-r2scan 7net-0 …] [--xtb] [--quick]

Results: ``bench/results/alpha_delta.json`` (one entry per level, written after each).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from _common import RESULTS, header, machine, save

from bench_potentials import ALL_MLIPS

PUBLISHED_KJ = 18.0


def run_level(level: str, mlip: str | None, quick: bool, out: Path) -> dict:
    from hetflow.analysis.units import from_ev
    from hetflow.recipes.bulk import BulkSettings, run_bulk
    from hetflow.recipes.common import RecipeOptions

    opts = RecipeOptions(level=level, mlip=mlip or "chgnet-r2scan", outdir=out, progress=False,
                         executor_options={"workers": 2, "threads": 1})
    t0 = time.perf_counter()
    res, _summary, complete = run_bulk(("alpha", "delta"), opts, BulkSettings.quick() if quick else None)
    wall = time.perf_counter() - t0
    a, d = res.get("alpha"), res.get("delta")
    diff = None if a is None or d is None else float(from_ev(a.energy_per_fu - d.energy_per_fu, "kJ/mol"))
    return {"level": level, "mlip": mlip, "complete": complete, "wall_s": round(wall, 1),
            "alpha_minus_delta_kj": diff, "published_kj": PUBLISHED_KJ,
            "converged": bool(a is not None and d is not None and a.converged and d.converged),
            "alpha_stays_cubic": None if a is None else a.stays_cubic()}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mlip", nargs="*", default=list(ALL_MLIPS))
    p.add_argument("--xtb", action="store_true", help="also GFN1-xTB (tblite): tens of minutes on 2 cores")
    p.add_argument("--quick", action="store_true", help="the quick bulk settings (smaller supercells)")
    p.add_argument("--summary", action="store_true", help="print the Markdown table of the results and stop")
    a = p.parse_args(argv)
    path = RESULTS / "alpha_delta.json"
    done = json.loads(path.read_text())["levels"] if path.exists() else {}
    if a.summary:
        print("| level | E(α) − E(δ) (kJ/mol per CsPbI3) | published | converged | α stays cubic | wall (s) |\n|---|---|---|---|---|---|")
        for k, e in done.items():
            v = e["alpha_minus_delta_kj"]
            print(f"| {k} | {'—' if v is None else f'{v:.2f}'} | {e['published_kj']:.0f} | {e['converged']} | "
                  f"{e['alpha_stays_cubic']} | {e['wall_s']:.0f} |")
        return 0
    m = header("E(α) − E(δ) of bulk CsPbI3 per level")
    base = Path(tempfile.mkdtemp(prefix="hetflow-bench-alpha-delta-"))
    levels = [("mlip", x) for x in a.mlip] + ([("xtb", None)] if a.xtb else [])
    for level, mlip in levels:
        key = mlip or "GFN1-xTB"
        done[key] = run_level(level, mlip, a.quick, base / key)
        e = done[key]
        print(f"   {key:14s} α − δ = {e['alpha_minus_delta_kj']} kJ/mol (published {PUBLISHED_KJ}), "
              f"converged {e['converged']}, {e['wall_s']:.0f} s", flush=True)
        save("alpha_delta", {"start": m, "end": machine(), "quick": a.quick, "levels": done})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
