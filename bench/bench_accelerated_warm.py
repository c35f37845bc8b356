"""Benchmark — exchanged configurations, warm-started as the tables relax them: guided against direct.

The quick S1 table relaxes each exchanged configuration from its parent's relaxed geometry (the
warm-started chains pristine → N = 1 → … → 5).  This benchmark takes a finished guided run of the
table (``hetflow reproduce s1 --quick --level xtb --accelerate …``, its ``results.db``) and, for
each configuration named in ``--configs``, relaxes the *same start* — the configuration's atoms on
its parent's guided end geometry — with the target level alone (FIRE, GFN1-xTB, the table's fmax),
then compares with the table's guided result of that configuration:

* energy difference (eV) and RMSD (Å) of the end geometries (same basin?);
* the difference of the table's exchange energy per exchanged halide (kcal/mol) when that one
  relaxation is done directly instead (the exchanged heterostructures ``s1-*``; the strain
  references ``nc-s1-*-N5``, warm-started from ``nc-reference``, enter the force-call count only) — the parent's energy and the PbX2 references are shared,
  so it is (E_guided − E_direct) / (number of I in the configuration);
* target-level force calls, SCF iterations and wall time of both (the guided ones from the
  table's stored ``extra["accelerate"]``).

    python bench/bench_accelerated_warm.py --db OUT/results.db [--configs s1-interface-N1 s1-bottom-N1 s1-interface-N2]

Results: ``bench/results/accelerated_warm.json`` (entries merge over runs).  Wall times depend on
the load (printed).
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from ase.db import connect

from _common import RESULTS, header, machine, save
from bench_accelerated import _rmsd, n_exchanged, run_mode

#: each configuration's parent in the S1 table's warm-started chains
PARENTS = {f"s1-{side}-N{n}": ("pristine" if n == 1 else f"s1-{side}-N{n - 1}")
           for side in ("interface", "bottom") for n in range(1, 6)} | {
    f"nc-s1-{side}-N5": "nc-reference" for side in ("interface", "bottom")}  # the strain references


def stored(db_path: str) -> dict:
    """The table's relaxations by task name: atoms (final), energy, converged, and the guided figures."""
    out = {}
    for row in connect(db_path).select(calc_task="relax"):
        data = row.data or {}
        name = (data.get("names") or {}).get("task") or row.get("task")
        acc = (data.get("extra") or {}).get("accelerate") or {}
        out[name] = {"atoms": row.toatoms(), "energy_eV": float(row.energy), "converged": bool(row.converged),
                     "force_calls": int((data.get("provenance") or {}).get("force_calls") or 0),
                     "scf_steps": int(acc.get("scf_steps", 0) or 0), "wall_s": float(row.get("wall_time", 0.0)),
                     "target_s": float(acc.get("target_s", 0.0)), "mlip_s": float(acc.get("mlip_s", 0.0)),
                     "finish_calls": int(acc.get("finish_calls", 0)),
                     "guided_phase_ended": acc.get("guided_phase_ended")}
    return out


def warm_start(table: dict, name: str):
    """The configuration's own atoms on its parent's end geometry, as the workflow builds it
    (:meth:`hetflow.workflows._tasks.CalcTask.start_atoms`; the spec plays no part there)."""
    from hetflow.workflows._tasks import CalcTask

    if name not in table or PARENTS[name] not in table:
        raise SystemExit(f"{name!r} or its parent {PARENTS[name]!r} is not in the table's results")
    own = table[name]["atoms"].copy()
    own.calc = None
    return CalcTask(name, own, None, start_from=PARENTS[name]).start_atoms(table[PARENTS[name]]["atoms"])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--db", required=True, help="results.db of a finished guided quick S1 run")
    p.add_argument("--configs", nargs="+", default=["s1-interface-N1", "s1-bottom-N1", "s1-interface-N2"],
                   choices=sorted(PARENTS))
    p.add_argument("--fmax", type=float, default=0.1)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args(argv)
    from hetflow.analysis.units import kcal

    path = RESULTS / "accelerated_warm.json"
    done = json.loads(path.read_text())["configs"] if path.exists() else {}
    table = stored(a.db)
    m = header("Warm-started exchanged configurations of the guided quick S1: the same start relaxed directly")
    for name in a.configs:
        start = warm_start(table, name)
        guided = table[name]
        d = run_mode(start, "direct", a.fmax, "", a.threads)
        n_i = n_exchanged(start)
        row = {"parent": PARENTS[name], "n_exchanged": n_i,
               "guided": {k: v for k, v in guided.items() if k != "atoms"},
               "direct": {k: v for k, v in d.items() if k not in ("positions", "history")},
               "energy_diff_eV": guided["energy_eV"] - d["energy_eV"],
               "rmsd_A": _rmsd(guided["atoms"].positions, d["positions"]),
               "exchange_diff_kcal_per_halide": kcal((guided["energy_eV"] - d["energy_eV"]) / n_i),
               "force_call_ratio": guided["force_calls"] / max(d["force_calls"], 1)}
        done[name] = row
        print(f"   {name:16s} direct: converged {d['converged']}, E {d['energy_eV']:.4f} eV, {d['force_calls']} calls, "
              f"{d['wall_s']:.0f} s | guided: E {guided['energy_eV']:.4f} eV, {guided['force_calls']} calls | "
              f"ΔE {row['energy_diff_eV']:+.3f} eV, RMSD {row['rmsd_A']:.3f} Å, "
              f"Δ(exchange) {row['exchange_diff_kcal_per_halide']:+.2f} kcal/mol per halide ({n_i} I)", flush=True)
        save("accelerated_warm", {"start": m, "end": machine(), "fmax": a.fmax, "db": a.db, "configs": done})
    diffs = [abs(r["exchange_diff_kcal_per_halide"]) for k, r in done.items() if k.startswith("s1-")] or [0.0]
    calls = {k: sum(r[k]["force_calls"] for r in done.values()) for k in ("guided", "direct")}
    print(f"   max |Δ(exchange)| {max(diffs):.2f} kcal/mol per halide over {len(diffs)} configurations; "
          f"force calls guided {calls['guided']} / direct {calls['direct']} = "
          f"{calls['guided'] / max(calls['direct'], 1):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
