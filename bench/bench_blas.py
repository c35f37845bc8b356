"""BLAS benchmark: the same tblite single point with the wheel's bundled BLAS and with OpenBLAS.

Both run in fresh hetflow worker processes with the same thread count (the bundled one without
``LD_PRELOAD``, the other with the system OpenBLAS preloaded — exactly what
``run_calculation`` does by default), so the comparison is one run, same structure, same code.
Prints both wall times, the speed-up ratio and the energy difference (must be < 1e-6 eV).

    python bench/bench_blas.py                      # 189-atom CsPbCl3 cluster (3×3×3), GFN2 (≈ 2.5 min)
    python bench/bench_blas.py --size 2 2 1 --method GFN1-xTB --threads 1   # quick

Measured on the shared 2-core development machine with this script: 189 atoms, GFN2, 2 threads:
114 s bundled vs 29.5 s OpenBLAS (3.9×, |ΔE| = 0); 36 atoms, GFN1, 1 thread: 1.1 s vs 0.46 s.
"""

from __future__ import annotations

import argparse
import sys
import time


def main(argv: list[str] | None = None) -> int:
    from hetflow.calculators import CalcSpec
    from hetflow.calculators._worker import Worker
    from hetflow.calculators.blas import find_openblas
    from hetflow.structures.nanocrystal import cut_nanocrystal

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", nargs=3, type=int, default=(3, 3, 3), help="octahedra n1 n2 n3 (3 3 3 → 189 atoms)")
    p.add_argument("--method", default="GFN2-xTB")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)

    lib = find_openblas()
    if lib is None:
        print("no system OpenBLAS found; nothing to compare", file=sys.stderr)
        return 1
    atoms = cut_nanocrystal("CsPbCl3", size=tuple(args.size), charge=0)
    spec = CalcSpec(method=args.method, settings={"blas": "bundled"})  # in the worker: run as loaded
    print(f"{atoms.get_chemical_formula()} ({len(atoms)} atoms), {spec.method}, OMP_NUM_THREADS={args.threads}")

    results = {}
    for label, preload in (("bundled netlib", None), (f"OpenBLAS {lib}", lib)):
        w = Worker(preload, args.threads)
        try:
            w.call("hetflow.calculators._worker:_import", "tblite.interface")  # import tblite before timing
            t0 = time.perf_counter()
            r = w.call("hetflow.calculators.run:run_local", atoms, spec, None)
            dt = time.perf_counter() - t0
            info = w.call("hetflow.calculators._worker:_info")
        finally:
            w.close()
        blas = ", ".join(x for x in info["blas_libraries"] if "numpy" not in x and "scipy" not in x) or "?"
        print(f"{label:<45s} {dt:8.2f} s   E = {r.energy:.8f} eV   SCF {r.scf_steps}   [{blas}]")
        results[label] = (dt, r.energy)

    (t_b, e_b), (t_o, e_o) = results.values()
    de = abs(e_b - e_o)
    print(f"speed-up bundled/OpenBLAS = {t_b / t_o:.2f}×   |ΔE| = {de:.2e} eV")
    if de > 1e-6:
        print("FAIL: energies differ by more than 1e-6 eV", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
