"""Benchmark — optimisers and the CHGNet pre-relaxer: force calls to a converged relaxation and
the energy it ends at.

For one model file (extxyz, labels kept) and one target method, runs every optimiser in
``--optimizers`` (default FIRE, LBFGS, PreconLBFGS, Sella in Cartesian coordinates) twice —
cold (the target method alone, from the file's geometry) and after a pre-relaxation with
``--prerelax`` (default CHGNet, same optimiser) — each to ``--fmax`` (default 0.05 eV/Å) with a
large step budget, through ``run_calculation`` in a fresh workdir.  Prints a table and writes
``bench/results/<name>.json``:

- target force calls (the target method's own energy+force evaluations, exact — not steps),
  optimiser steps, pre-relaxation force calls and wall time, total wall time;
- the final energy, its difference to the lowest final energy of the run and the RMSD of the
  final geometry to that lowest one (Å): a faster optimiser that stops higher, in another
  basin, is not better;
- the spread (max − min) of the final energies of the converged runs.

PreconLBFGS runs with ``--precon`` (default ``Exp``; ASE's own ``auto`` silently disables the
preconditioner below 100 atoms, which makes it LBFGS with a line search).  Only converged runs
count as results; an unconverged run says so.  Ratios are within one run
(same load for every row); wall times depend on the machine's load, force calls do not.

    python bench/bench_optimizers.py MODEL.extxyz --method GFN1-xTB [--backend tblite]
        [--fmax 0.05] [--max-steps 2000] [--optimizers FIRE LBFGS PreconLBFGS Sella]
        [--prerelax chgnet | --no-prerelax] [--precon Exp|auto] [--threads 2] [--name optimizers]
        [--save-geometries DIR]
    python bench/bench_optimizers.py --quick       # 2×2×2 CsPbCl3 NC (64 atoms), GFN1-xTB, ≈ 5 min
    python bench/bench_optimizers.py --faithful    # the quick S1 pristine heterostructure (≈ 1 h for FIRE + LBFGS)
    python bench/bench_optimizers.py --reference-nc  # its standalone 148-atom NC, the control (≈ 4 min)

Run it under ``flock /tmp/hetflow-heavy.lock`` on a shared machine.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import header, save

OPTIMIZERS = ("FIRE", "LBFGS", "PreconLBFGS", "Sella")


def _rmsd(a: np.ndarray, b: np.ndarray) -> float:
    """RMSD of two geometries of the same cluster after removing the centroid shift, Å."""
    da = a - a.mean(axis=0)
    db = b - b.mean(axis=0)
    return float(np.sqrt(((da - db) ** 2).sum(axis=1).mean()))


def run_one(atoms, spec, label: str) -> dict:
    from hetflow.calculators import run_calculation

    with tempfile.TemporaryDirectory(prefix="hetflow-bench-opt-") as wd:
        t0 = time.perf_counter()
        r = run_calculation(atoms, spec, wd)
        wall = time.perf_counter() - t0
    pre = r.extra.get("prerelax") or {}
    row = {
        "label": label, "optimizer": spec.optimizer, "prerelax": spec.prerelax,
        "converged": bool(r.converged), "fmax_reached": float(r.extra["fmax_reached"]),
        "force_calls": int(r.force_calls), "opt_steps": int(r.opt_steps),
        "prerelax_force_calls": pre.get("force_calls"), "prerelax_opt_steps": pre.get("opt_steps"),
        "prerelax_converged": pre.get("converged"), "prerelax_fmax": pre.get("fmax_reached"),
        "prerelax_wall_s": pre.get("wall_time"), "wall_s": wall,
        "target_wall_s": wall - float(pre.get("wall_time") or 0.0),
        "energy_eV": float(r.energy), "positions": r.atoms.positions.tolist(), "final": r.atoms,
    }
    pc = f"{row['prerelax_force_calls']:>5d}" if pre else "    –"
    print(f"   {label:<22} calls {row['force_calls']:>5d}  steps {row['opt_steps']:>5d}  prerelax calls {pc}  "
          f"wall {wall:7.1f} s  E {r.energy:.4f} eV  fmax {row['fmax_reached']:.4f}"
          + ("" if r.converged else "  NOT CONVERGED"), flush=True)
    return row


def main(argv=None) -> int:
    from hetflow.calculators import CalcSpec

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", nargs="?", help="model file (extxyz, xyz, cif …)")
    p.add_argument("--quick", action="store_true", help="2×2×2 CsPbCl3 NC (64 atoms) at GFN1-xTB")
    p.add_argument("--faithful", action="store_true",
                   help="the quick S1 pristine heterostructure (2×2×5 CsPbCl3 on two b/2 blocks of Pb4S3Cl2, "
                        "junction by GFN1 energy, relaxed; chalcohalide faces relaxed) — the model the tables relax")
    p.add_argument("--reference-nc", action="store_true",
                   help="its standalone perovskite NC (2×2×5 CsPbCl3, 148 atoms, the same termination): the control")
    p.add_argument("--scale", type=float, default=1.0,
                   help="scale the model's positions uniformly (e.g. 5.40/5.605: CsPbCl3 at GFN1's lattice)")
    p.add_argument("--backend", default="tblite")
    p.add_argument("--method", default=None, help="target method (default: the backend's default)")
    p.add_argument("--fmax", type=float, default=0.05, help="eV/Å")
    p.add_argument("--max-steps", type=int, default=2000)
    p.add_argument("--optimizers", nargs="+", default=list(OPTIMIZERS))
    p.add_argument("--prerelax", default="chgnet")
    p.add_argument("--no-prerelax", action="store_true", help="cold runs only")
    p.add_argument("--precon", default="Exp",
                   help="PreconLBFGS preconditioner (ASE's 'auto' switches it off below 100 atoms)")
    p.add_argument("--threads", type=int, default=int(os.environ.get("HETFLOW_THREADS") or 2))
    p.add_argument("--name", default=None, help="results file name (default optimizers[_quick])")
    p.add_argument("--save-geometries", metavar="DIR", default=None,
                   help="also write each run's final geometry to DIR/<name>-<run>.extxyz (labels kept)")
    a = p.parse_args(argv)
    os.environ["HETFLOW_THREADS"] = str(a.threads)  # tblite worker and torch; not in the content key

    if a.quick:
        from hetflow.structures.nanocrystal import cut_nanocrystal

        atoms = cut_nanocrystal("CsPbCl3", size=(2, 2, 2), charge=0)
        source = "cut_nanocrystal('CsPbCl3', size=(2, 2, 2), charge=0)"
    elif a.faithful:
        from hetflow.recipes.exchange_scan import ScanModel

        atoms = ScanModel().build("s1", True)
        source = "ScanModel().build('s1', quick=True): " + atoms.get_chemical_formula(mode="hill")
    elif a.reference_nc:
        from hetflow.structures.nanocrystal import cut_nanocrystal

        atoms = cut_nanocrystal("CsPbCl3", size=(2, 2, 5), max_face_fraction=0.25)
        source = "cut_nanocrystal('CsPbCl3', (2, 2, 5), max_face_fraction=0.25): the quick model's reference NC"
    elif a.model:
        from hetflow.structures.io import read_structure

        atoms = read_structure(a.model)
        source = str(Path(a.model).resolve())
    else:
        p.error("give a model file or --quick")
    if a.scale != 1.0:
        if not (0.5 < a.scale < 1.5):
            p.error(f"--scale must be between 0.5 and 1.5, got {a.scale}")
        atoms.positions *= a.scale
        atoms.cell *= a.scale
        source += f", positions scaled by {a.scale:.4f}"
    name = a.name or ("optimizers_quick" if a.quick else "optimizers_faithful" if a.faithful
                      else "optimizers_reference_nc" if a.reference_nc else "optimizers")
    base = CalcSpec(backend=a.backend, method=a.method, task="relax", fmax=a.fmax, max_steps=a.max_steps,
                    periodic=bool(atoms.pbc.any()))
    m = header("Optimiser benchmark: force calls to a converged relaxation, final energies")
    print(f"   {atoms.get_chemical_formula()} ({len(atoms)} atoms) from {source}; target {base.backend} "
          f"{base.method}; fmax {a.fmax} eV/Å; prerelax {None if a.no_prerelax else a.prerelax}; "
          f"{a.threads} threads", flush=True)

    # warm-up (untimed): start the tblite worker, import Sella there, load the pre-relaxer's model,
    # so that no row's wall time carries a one-off start-up
    from hetflow.calculators import run_calculation

    import logging

    quiet = logging.getLogger("hetflow.calculators.relax")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # the 1-step warm-up relaxations are unconverged on purpose
    t0 = time.perf_counter()
    for opt in a.optimizers:
        kw = {"optimizer_kwargs": {"precon": a.precon}} if opt == "PreconLBFGS" and a.precon != "auto" else {}
        run_calculation(atoms, base.replace(optimizer=opt, max_steps=1, settings=kw))
        if not a.no_prerelax:
            run_calculation(atoms, CalcSpec(backend=a.prerelax, task="relax", optimizer=opt, max_steps=1,
                                            periodic=base.periodic, settings=kw))
    quiet.setLevel(level)
    print(f"   warm-up (start-up of workers, imports, model loading; not in the table): "
          f"{time.perf_counter() - t0:.1f} s", flush=True)

    rows = []
    for opt in a.optimizers:
        spec = base.replace(optimizer=opt)
        if opt == "PreconLBFGS" and a.precon != "auto":
            spec = spec.with_settings(optimizer_kwargs={"precon": a.precon})
        rows.append(run_one(atoms, spec, f"{opt} cold"))
        if not a.no_prerelax:
            rows.append(run_one(atoms, spec.replace(prerelax=a.prerelax), f"{opt} + {a.prerelax}"))

    ok = [r for r in rows if r["converged"]]
    if ok:
        best = min(ok, key=lambda r: r["energy_eV"])
        for r in rows:
            r["dE_to_lowest_eV"] = r["energy_eV"] - best["energy_eV"]
            r["rmsd_to_lowest_A"] = _rmsd(np.asarray(r["positions"]), np.asarray(best["positions"]))
        spread = max(r["energy_eV"] for r in ok) - best["energy_eV"]
    else:
        spread = None
    print("\n   | run | converged | target force calls | steps | prerelax calls | wall (s) | E (eV) | "
          "ΔE to lowest (eV) | RMSD to lowest (Å) |\n   |---|---|---|---|---|---|---|---|---|")
    for r in rows:
        pc = "–" if r["prerelax_force_calls"] is None else str(r["prerelax_force_calls"])
        de = "–" if "dE_to_lowest_eV" not in r else f"{r['dE_to_lowest_eV']:+.3f}"
        rm = "–" if "rmsd_to_lowest_A" not in r else f"{r['rmsd_to_lowest_A']:.3f}"
        print(f"   | {r['label']} | {'yes' if r['converged'] else 'NO'} | {r['force_calls']} | {r['opt_steps']} | {pc} | "
              f"{r['wall_s']:.1f} | {r['energy_eV']:.4f} | {de} | {rm} |")
    if spread is not None:
        print(f"\n   RESULT optimisers: spread of converged final energies {spread:.4f} eV over {len(ok)} runs; "
              f"fewest target force calls: {min(ok, key=lambda r: r['force_calls'])['label']} "
              f"({min(r['force_calls'] for r in ok)}); lowest energy: {best['label']}", flush=True)
    for r in rows:
        r.pop("positions")
        final = r.pop("final")
        if a.save_geometries:
            from hetflow.structures.io import write_structure

            out = Path(a.save_geometries) / f"{name}-{r['label'].replace(' ', '_').replace('+', 'plus')}.extxyz"
            out.parent.mkdir(parents=True, exist_ok=True)
            final.info.update(optimizer=r["optimizer"], energy_eV=r["energy_eV"], fmax_reached=r["fmax_reached"])
            print(f"   wrote {write_structure(final, out)}")
    path = save(name, {
        "model": source, "natoms": len(atoms), "formula": atoms.get_chemical_formula(),
        "backend": base.backend, "method": base.method, "fmax": a.fmax, "max_steps": a.max_steps,
        "threads": a.threads, "precon": a.precon, "prerelax": None if a.no_prerelax else a.prerelax,
        "rows": rows, "energy_spread_eV": spread, "machine_at_start": m,
    })
    print(f"   wrote {path}")
    return 0 if len(ok) == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
