"""Bytes on disk of MO data: JSON text (the earlier format) vs npz beside the result.

Three places, each measured both ways from the **same** calculation in one run:

1. ``hetflow calc single-point FILE --mo --json sp.json`` on the 189-atom CsPbCl3 NC
   (``hetflow build nc --size 3 3 3``): the earlier sp.json (C and S as JSON lists) vs the
   new sp.json + sp.mo.npz.  The new files are written by the CLI itself (a subprocess).
2. The task directory of an MO task run by the engine (LocalExecutor): the earlier
   result.json (``result_payload`` without ``mo_dir``) vs the directory as written now.
3. A result store (SQLite) holding the quick S1 model's MO row (the 128-atom heterostructure
   of ``reproduce s1 --quick``) and single points of S1 configurations: the same payloads
   ingested in the earlier form (MO data inline) and in the new form.  ``--workdir`` re-ingests
   the task directories of a real run (e.g. ``repro/work/s1``) instead.

Read-back is checked: the npz arrays equal the computed ones at the stored precision
(float64 orbital energies and occupations bit-identical, C and S = float32 of the computed
values exactly), and the Mulliken element fractions from the file agree to < 1e-5; the CLI's JSON and npz agree bit
for bit.

    python bench/bench_mo_sizes.py                 # ≈ 2–4 min on 2 cores
    python bench/bench_mo_sizes.py --configs 2     # fewer S1 single points for part 3
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from _common import header, save  # noqa: E402


def _du(path: Path) -> int:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file()) if Path(path).is_dir() \
        else Path(path).stat().st_size


def _mb(n: int) -> str:
    return f"{n / 1e6:.2f} MB"


def part_cli(tmp: Path, env: dict) -> dict:
    from hetflow.analysis.projections import element_fractions
    from hetflow.calculators import CalcSpec, MOData, run_calculation
    from hetflow.calculators.mo_io import load_full, read_mo_npz, write_mo_npz
    from hetflow.structures.io import read_structure

    nc = tmp / "nc.extxyz"
    subprocess.run([sys.executable, "-m", "hetflow.cli", "build", "nc", "--size", "3", "3", "3", "-o", str(nc)],
                   check=True, env=env, capture_output=True)
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "hetflow.cli", "calc", "single-point", str(nc), "--mo",
                          "--json", str(tmp / "sp.json")], check=True, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    new = _du(tmp / "sp.json") + _du(tmp / "sp.mo.npz")
    # the earlier format, from an identical calculation in this process
    atoms = read_structure(nc)
    res = run_calculation(atoms, CalcSpec(backend="tblite", method="GFN1-xTB", want_mo=True))
    legacy = {"energy_eV": res.energy, "converged": res.converged, "scf_steps": res.scf_steps,
              "opt_steps": res.opt_steps, "recovery": res.recovery, "versions": res.versions,
              "spec": res.spec.to_dict(), "wall_time_s": res.wall_time,
              "forces_eV_per_A": res.forces.tolist(), "mo": res.mo.to_dict()}
    old = len(json.dumps(legacy, indent=1).encode())
    # read back what the CLI wrote: its npz and its JSON agree bit for bit
    ref = json.loads((tmp / "sp.json").read_text())["mo"]
    cli_full = load_full(MOData.from_dict(ref), base=tmp)
    checks = {
        "cli_json_vs_npz_eigenvalues_bit_identical": bool(np.array_equal(cli_full.eigenvalues, ref["eigenvalues"])),
        "cli_json_vs_npz_occupations_bit_identical": bool(np.array_equal(cli_full.occupations, ref["occupations"])),
    }
    # and the same format written from this process's result reads back at the stored precision
    mo = res.mo
    full = read_mo_npz(write_mo_npz(mo, tmp / "inproc.npz"))
    checks.update({
        "eigenvalues_bit_identical": bool(np.array_equal(full.eigenvalues, mo.eigenvalues)),
        "occupations_bit_identical": bool(np.array_equal(full.occupations, mo.occupations)),
        "C_equals_float32": bool(np.array_equal(full.coefficients, mo.coefficients.astype(np.float32))),
        "S_equals_float32": bool(np.array_equal(full.overlap, mo.overlap.astype(np.float32))),
    })
    a, b = element_fractions(mo, atoms), element_fractions(full, atoms)
    checks["max_element_fraction_diff"] = max(float(np.abs(a[g] - b[g]).max()) for g in a)
    nao, nmo = mo.coefficients.shape
    print(f"1. calc single-point --mo --json, {len(atoms)} atoms (nao {nao}, nmo {nmo}; CLI {wall:.0f} s):\n"
          f"   before {_mb(old)} (sp.json)  after {_mb(new)} (sp.json {_mb(_du(tmp / 'sp.json'))} + "
          f"sp.mo.npz {_mb(_du(tmp / 'sp.mo.npz'))})  → {old / new:.1f}× smaller", flush=True)
    print(f"   read-back: {checks}", flush=True)
    return {"atoms": len(atoms), "nao": nao, "nmo": nmo, "before_bytes": old, "after_bytes": new,
            "after_json_bytes": _du(tmp / "sp.json"), "after_npz_bytes": _du(tmp / "sp.mo.npz"),
            "ratio": old / new, "checks": checks, "cli_stdout": out.stdout}


def _quick_s1_workflow(n_configs: int):
    from hetflow.structures.exchange import layer_series
    from hetflow.workflows.graph import Workflow
    from hetflow.recipes.common import RecipeOptions, make_spec
    from hetflow.recipes.exchange_scan import ScanModel

    opts = RecipeOptions(quick=True)
    hs = ScanModel().build("s1", quick=True)
    wf = Workflow("mo-sizes")
    wf.add_calc("pristine-mo", hs, make_spec(opts, want_mo=True))
    configs = layer_series(hs, "interface", 5, "I")[: (n_configs + 1) // 2] + \
        layer_series(hs, "bottom", 5, "I")[: n_configs // 2]
    for c in configs:
        wf.add_calc(c.info["name"], c, make_spec(opts))
    return wf, hs


def part_taskdir_and_store(tmp: Path, n_configs: int, workdir: Path | None) -> dict:
    from hetflow.calculators.mo_io import read_mo_npz
    from hetflow.workflows._engine import Engine
    from hetflow.workflows._taskdir import read_json
    from hetflow.workflows.executors import LocalExecutor
    from hetflow.workflows.store import ResultStore

    out: dict = {}
    if workdir is None:
        wf, hs = _quick_s1_workflow(n_configs)
        workdir = tmp / "work"
        t0 = time.perf_counter()
        s = Engine(wf, ResultStore(tmp / "run.db"), LocalExecutor(workers=2), workdir, progress=False).run()
        out["run"] = {"summary": str(s), "wall_s": time.perf_counter() - t0, "model_atoms": len(hs)}
        print(f"   ran {s} on the {len(hs)}-atom quick S1 model in {out['run']['wall_s']:.0f} s", flush=True)
    tasks = sorted(p for p in (workdir / "tasks").iterdir() if p.is_dir())
    payloads_new, payloads_old = [], []
    mo_dir = None
    for td in tasks:
        p = read_json(td / "result.json")
        if not p:
            continue
        payloads_new.append(p)
        old = dict(p)
        if isinstance(p.get("mo"), dict) and p["mo"].get("data_file"):
            old["mo"] = read_mo_npz(p["mo"]["data_file"]).to_dict()  # inline, as the earlier worker wrote it
            mo_dir = mo_dir or td
        payloads_old.append(old)
    if mo_dir is not None:
        name = read_json(mo_dir / "result.json")["name"]
        res_old = len(json.dumps(next(o for o in payloads_old if o["name"] == name)).encode())
        new_dir = _du(mo_dir)
        old_dir = new_dir - _du(mo_dir / "result.json") - sum(_du(f) for f in mo_dir.glob("mo-*.npz")) + res_old
        out["taskdir"] = {"task": mo_dir.name, "before_bytes": old_dir, "after_bytes": new_dir,
                          "ratio": old_dir / new_dir}
        print(f"2. task directory {mo_dir.name}: before {_mb(old_dir)}  after {_mb(new_dir)} "
              f"(result.json {_mb(_du(mo_dir / 'result.json'))} + npz)  → {old_dir / new_dir:.1f}× smaller", flush=True)
    sizes = {}
    for label, pls in (("before", payloads_old), ("after", payloads_new)):
        path = tmp / f"store-{label}.db"
        st = ResultStore(path)
        for p in pls:
            st.ingest(p, workflow="s1")
        sizes[label] = _du(path)
        if label == "after":
            row = next((r for r in st.rows() if r.mo is not None), None)
            if row is not None:
                full = row.mo.full()
                out["store_full_loads"] = bool(full.coefficients is not None)
    out["store"] = {"rows": len(payloads_new), "before_bytes": sizes["before"], "after_bytes": sizes["after"],
                    "ratio": sizes["before"] / sizes["after"]}
    print(f"3. result store, {len(payloads_new)} rows: before {_mb(sizes['before'])}  after {_mb(sizes['after'])}  "
          f"→ {sizes['before'] / sizes['after']:.1f}× smaller; stored MO summary loads C, S: "
          f"{out.get('store_full_loads')}", flush=True)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", type=int, default=4, help="S1 single points beside the MO row (part 3)")
    ap.add_argument("--workdir", type=Path, default=None, help="task directories of a real run to re-ingest")
    a = ap.parse_args(argv)
    m = header("MO data sizes: JSON text vs npz beside the result")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE.parent), os.environ.get("PYTHONPATH", "")]))
    tmp = Path(tempfile.mkdtemp(prefix="hetflow-mo-sizes-"))
    try:
        (tmp / "cli").mkdir()
        cli = part_cli(tmp / "cli", env)
        rest = part_taskdir_and_store(tmp, a.configs, a.workdir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    ratios = [cli["ratio"], rest.get("taskdir", {}).get("ratio", float("nan")), rest["store"]["ratio"]]
    print(f"RESULT mo-sizes: calc --json {ratios[0]:.1f}×, task directory {ratios[1]:.1f}×, store {ratios[2]:.1f}× "
          f"smaller", flush=True)
    print(f"wrote {save('mo_sizes', {'cli': cli, **rest, 'start_machine': m})}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
