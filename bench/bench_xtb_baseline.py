"""Benchmark 2 — hetflow xTB vs the plain script a user writes after ``pip install tblite``.

Baseline (run in a fresh subprocess, environment WITHOUT ``LD_PRELOAD``, i.e. the wheel's
bundled BLAS as a user gets it)::

    atoms = read("nc.extxyz"); atoms.calc = TBLite(method="GFN1-xTB", verbosity=0)
    e = atoms.get_potential_energy(); f = atoms.get_forces()
    FIRE(atoms).run(fmax=1e-4, steps=K)            # the short relaxation

hetflow: ``run_calculation`` with the same method (its default worker preloads OpenBLAS) and
``task="relax", optimizer="FIRE", fmax=1e-4, max_steps=K`` — the same K steps both ways (the
tiny fmax makes both run all K).  Same structure, same thread count (OMP_NUM_THREADS) for
both; energies must agree to 1e-6 eV (single point) and the relaxed energies to 1e-5 eV.

    python bench/bench_xtb_baseline.py [--size 3 3 2] [--method GFN1-xTB] [--steps 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import header, save

BASELINE = r'''
import json, sys, time
t_import = time.perf_counter()
from ase.io import read
from ase.optimize import FIRE
from tblite.ase import TBLite
path, method, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
atoms = read(path)
atoms.calc = TBLite(method=method, verbosity=0)
t0 = time.perf_counter()
e = atoms.get_potential_energy()
f = atoms.get_forces()
t_sp = time.perf_counter() - t0
relax = read(path)
relax.calc = TBLite(method=method, verbosity=0)
t0 = time.perf_counter()
opt = FIRE(relax, logfile=None)
opt.run(fmax=1e-4, steps=steps)
t_relax = time.perf_counter() - t0
print(json.dumps({"energy": float(e), "t_sp": t_sp, "t_relax": t_relax, "relax_energy": float(relax.get_potential_energy()),
                  "relax_steps": int(opt.nsteps)}))
'''


def main(argv=None) -> int:
    from hetflow.calculators import CalcSpec, run_calculation
    from hetflow.structures.io import write_structure
    from hetflow.structures.nanocrystal import cut_nanocrystal

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", nargs=3, type=int, default=(3, 3, 2))
    p.add_argument("--method", default="GFN1-xTB")
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args(argv)
    m = header("Benchmark 2: hetflow vs plain ase + tblite.ase.TBLite script")
    atoms = cut_nanocrystal("CsPbCl3", tuple(a.size))
    print(f"   {atoms.get_chemical_formula()} ({len(atoms)} atoms), {a.method}, {a.steps} FIRE steps, "
          f"OMP_NUM_THREADS={a.threads}", flush=True)
    with tempfile.TemporaryDirectory(prefix="hetflow-bench-base-") as d:
        path = write_structure(atoms, Path(d) / "nc.extxyz")
        env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "HETFLOW_BLAS")}
        env |= {"OMP_NUM_THREADS": str(a.threads), "OPENBLAS_NUM_THREADS": str(a.threads)}
        t0 = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", BASELINE, str(path), a.method, str(a.steps)], env=env,
                             capture_output=True, text=True, check=True)
        base = json.loads(out.stdout.strip().splitlines()[-1])
        base["t_process"] = time.perf_counter() - t0
    print(f"   baseline : single point {base['t_sp']:8.2f} s   relax ({base['relax_steps']} steps) {base['t_relax']:8.2f} s",
          flush=True)

    os.environ["HETFLOW_THREADS"] = str(a.threads)
    spec = CalcSpec(method=a.method)
    t0 = time.perf_counter()
    sp = run_calculation(atoms, spec)  # includes the worker start (first call)
    t_sp_first = time.perf_counter() - t0
    t0 = time.perf_counter()
    sp = run_calculation(atoms, spec)
    t_sp = time.perf_counter() - t0
    t0 = time.perf_counter()
    rx = run_calculation(atoms, spec.replace(task="relax", fmax=1e-4, max_steps=a.steps, optimizer="FIRE"))
    t_relax = time.perf_counter() - t0
    print(f"   hetflow  : single point {t_sp:8.2f} s (first call incl. worker start {t_sp_first:.2f} s)   "
          f"relax ({rx.opt_steps} steps) {t_relax:8.2f} s   BLAS {sp.versions.get('blas')}", flush=True)
    de = abs(sp.energy - base["energy"])
    de_r = abs(rx.energy - base["relax_energy"])
    res = {"natoms": len(atoms), "method": a.method, "threads": a.threads, "steps": a.steps,
           "baseline": base, "hetflow": {"t_sp": t_sp, "t_sp_first": t_sp_first, "t_relax": t_relax,
                                          "energy": sp.energy, "relax_energy": rx.energy, "relax_steps": rx.opt_steps,
                                          "blas": sp.versions.get("blas")},
           "speedup_sp": base["t_sp"] / t_sp, "speedup_sp_first_call": base["t_sp"] / t_sp_first,
           "speedup_relax": base["t_relax"] / t_relax, "dE_sp": de, "dE_relax": de_r}
    print(f"   RESULT speed-up baseline/hetflow: single point {res['speedup_sp']:.2f}× "
          f"({res['speedup_sp_first_call']:.2f}× incl. worker start), relaxation {res['speedup_relax']:.2f}×; "
          f"|ΔE| sp {de:.1e} eV, relaxed {de_r:.1e} eV")
    save("xtb_baseline", res)
    ok = de < 1e-6 and de_r < 1e-5 and rx.opt_steps == base["relax_steps"]
    if not ok:
        print("   FAIL: results differ", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
