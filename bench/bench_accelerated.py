"""Benchmark — relaxations guided by a machine-learned potential against the target level's own.

For the quick S1 model (2 × 2 × 5 on 2 blocks, 244 atoms, the shipped prepared geometry) and
configurations of it (``--configs``: pristine, the interface-first and bottom-first N = 1 exchanges,
model (d)'s chalcohalide layers), each relaxed at GFN1-xTB (tblite) from the same start:

* **direct**: the recipes' optimiser (FIRE) at the target level alone;
* **accelerated**: :mod:`hetflow.calculators.accelerated` with ``--accelerate`` (default CHGNet r²SCAN).

Both to ``--fmax`` (default the quick tables' 0.1 eV/Å), through ``run_calculation``.  Records per
configuration and mode: target force calls, SCF iterations, target and potential wall time,
total wall time, final energy, converged; between the modes: the energy difference and the RMSD of
the final geometries (same basin?), and the exchange energy of every exchanged configuration
against the pristine model of the same mode — their difference per exchanged halide (the PbX2
reference cancels) in kcal/mol.  The headline is the force-call ratio accelerated/direct.

    python bench/bench_accelerated.py [--configs pristine interface-N1 bottom-N1 d] [--fmax 0.1]
        [--accelerate chgnet-r2scan] [--modes direct accelerated] [--threads 2]

Results: ``bench/results/accelerated.json`` (entries merge over runs, one per configuration and
mode, so a long direct run can be done once).  Wall times depend on the load (printed).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import numpy as np

from _common import RESULTS, header, machine, save

CONFIGS = ("pristine", "interface-N1", "bottom-N1", "d")


def build(name: str):
    from hetflow.recipes.scan_model import ScanModel
    from hetflow.structures.exchange import layer_series, model_d

    hs = ScanModel(size=(2, 2, 5), partner_cells=2).build("s1", True)
    if name == "pristine":
        return hs
    if name == "d":
        return model_d(hs, target="I")
    side = name.split("-")[0]
    return layer_series(hs, side, 1, "I")[0]


def n_exchanged(atoms) -> int:
    return int((np.asarray(atoms.get_chemical_symbols()) == "I").sum())


def run_mode(atoms, mode: str, fmax: float, accelerate: str, threads: int, options: dict | None = None) -> dict:
    from hetflow.calculators.base import CalcSpec
    from hetflow.calculators.run import run_calculation

    spec = CalcSpec(backend="tblite", method="GFN1-xTB", task="relax", fmax=fmax, max_steps=2000,
                    optimizer="FIRE", settings={"threads": threads} | ({"accelerate_options": options}
                                                                        if options and mode == "accelerated" else {}),
                    accelerate=accelerate if mode == "accelerated" else None)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="hetflow-bench-accel-") as wd:
        r = run_calculation(atoms, spec, wd)
    wall = time.perf_counter() - t0
    acc = r.extra.get("accelerate") or {}
    return {"converged": bool(r.converged), "energy_eV": float(r.energy), "force_calls": int(r.force_calls or 0),
            "scf_steps": int(r.scf_steps or 0), "fmax": float(r.extra.get("fmax_reached", np.nan)),
            "wall_s": round(wall, 1), "target_s": round(acc.get("target_s", wall), 1),
            "mlip_s": round(acc.get("mlip_s", 0.0), 1), "mlip_calls": int(acc.get("mlip_calls", 0)),
            "refused": int(acc.get("refused", 0)), "finish_calls": int(acc.get("finish_calls", 0)),
            "history": acc.get("history", []), "options": options or {}, "positions": r.atoms.positions.tolist(),
            "n_exchanged": n_exchanged(atoms)}


def _rmsd(a, b) -> float:
    a, b = np.asarray(a), np.asarray(b)
    da, db = a - a.mean(0), b - b.mean(0)
    return float(np.sqrt(((da - db) ** 2).sum(1).mean()))


def compare(done: dict) -> dict:
    """Ratios and agreement between the modes, per configuration and in total."""
    from hetflow.analysis.units import kcal

    out: dict = {"configs": {}}
    tot = {"direct": 0, "accelerated": 0}
    for name, modes in done.items():
        if not {"direct", "accelerated"} <= set(modes):
            continue
        d, a = modes["direct"], modes["accelerated"]
        row = {"force_call_ratio": a["force_calls"] / d["force_calls"],
               "wall_ratio": a["wall_s"] / d["wall_s"], "target_time_ratio": a["target_s"] / d["target_s"],
               "energy_diff_eV": a["energy_eV"] - d["energy_eV"], "rmsd_A": _rmsd(a["positions"], d["positions"]),
               "both_converged": d["converged"] and a["converged"]}
        p = done.get("pristine", {})
        if name != "pristine" and {"direct", "accelerated"} <= set(p) and a["n_exchanged"]:
            ex = {m: modes[m]["energy_eV"] - p[m]["energy_eV"] for m in ("direct", "accelerated")}
            row["exchange_diff_kcal_per_halide"] = kcal((ex["accelerated"] - ex["direct"]) / a["n_exchanged"])
        out["configs"][name] = row
        for m in tot:
            tot[m] += modes[m]["force_calls"]
    if tot["direct"]:
        out["force_call_ratio_total"] = tot["accelerated"] / tot["direct"]
        out["force_calls_total"] = tot
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=CONFIGS)
    p.add_argument("--modes", nargs="+", default=["direct", "accelerated"], choices=["direct", "accelerated"])
    p.add_argument("--fmax", type=float, default=0.1)
    p.add_argument("--accelerate", default="chgnet-r2scan")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--options", type=json.loads, default=None,
                   help='accelerate_options as JSON, e.g. \'{"correction": 0}\' (the guided mode only)')
    p.add_argument("--label", default=None, help="store the guided run under this name (default 'accelerated'), "
                   "to keep variants side by side; the comparison uses 'accelerated'")
    p.add_argument("--summary", action="store_true")
    a = p.parse_args(argv)
    path = RESULTS / "accelerated.json"
    done = json.loads(path.read_text())["runs"] if path.exists() else {}
    if not a.summary:
        m = header("Guided (accelerated) against direct GFN1-xTB relaxations, quick S1 model")
        for name in a.configs:
            atoms = build(name)
            for mode in a.modes:
                r = run_mode(atoms, mode, a.fmax, a.accelerate, a.threads, a.options)
                mode = a.label if mode == "accelerated" and a.label else mode
                done.setdefault(name, {})[mode] = r
                print(f"   {name:13s} {mode:11s} converged {r['converged']}, E {r['energy_eV']:.4f} eV, "
                      f"{r['force_calls']} target calls, {r['scf_steps']} SCF, {r['wall_s']:.0f} s "
                      f"(target {r['target_s']:.0f} s, potential {r['mlip_s']:.0f} s)", flush=True)
                save("accelerated", {"start": m, "end": machine(), "fmax": a.fmax, "accelerate": a.accelerate,
                                     "runs": done, "comparison": compare(done)})
    print(json.dumps(compare(done), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
