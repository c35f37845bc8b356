"""Worker side of the work-directory protocol: run one task directory, write result.json.

Runs inside a local pool process or a batch job (``python -m hetflow.workflows._worker DIR``).
It never writes the database; the controller ingests the result file.
"""

from __future__ import annotations

import os
import socket
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from hetflow.workflows._taskdir import TaskDir, encode_atoms, payload_problem, write_json_atomic


def _versions() -> dict[str, str]:
    import ase

    import hetflow

    out = {"hetflow": hetflow.__version__, "ase": ase.__version__}
    try:
        from importlib.metadata import version

        out["tblite"] = version("tblite")
    except Exception:  # noqa: BLE001 - optional package
        pass
    return out


def _run_calculation(atoms, spec, workdir):
    """Dispatch through hetflow.calculators.run_calculation (the one entry point)."""
    from hetflow.calculators import run_calculation

    return run_calculation(atoms, spec, workdir=workdir)


def result_payload(name: str, key: str, res, started: float, ended: float,
                   mo_dir: Path | None = None) -> dict[str, Any]:
    """JSON-serialisable form of a CalcResult plus provenance.  With ``mo_dir`` the MO data
    go to ``mo_dir/mo-<key>.npz`` and the payload keeps a reference (:mod:`hetflow.workflows.mo_files`)."""
    prov = {
        "versions": _versions() | dict(res.versions),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "start": started,
        "end": ended,
        "recovery": list(res.recovery),
        "job_id": os.environ.get("SLURM_JOB_ID") or os.environ.get("PBS_JOBID")
        or os.environ.get("LSB_JOBID"),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "force_calls": getattr(res, "force_calls", None),
    }
    if res.extra.get("prerelax"):
        prov["prerelax"] = dict(res.extra["prerelax"])  # the MLIP stage: model, force calls, final fmax
    return {
        "name": name,
        "key": key,
        "energy": float(res.energy),
        "forces": None if res.forces is None else [[float(x) for x in row] for row in res.forces],
        "atoms": encode_atoms(res.atoms),
        "converged": bool(res.converged),
        "spec": res.spec.to_dict(),
        "scf_steps": res.scf_steps,
        "opt_steps": res.opt_steps,
        "wall_time": float(res.wall_time),
        "mo": None if res.mo is None else (res.mo.to_dict() if mo_dir is None else _mo_ref(res, mo_dir, key)),
        "extra": res.extra,
        "provenance": prov,
    }


def _mo_ref(res, mo_dir: Path, key: str) -> dict[str, Any]:
    from hetflow.workflows.mo_files import externalise_mo, mo_file_name

    return externalise_mo(res.mo, res.atoms, mo_dir, mo_file_name(key))


def run_task_dir(path: str | Path) -> str:
    """Run the calculation described by ``path/input.json``; returns "done", "failed" or
    "stopped" (walltime reached with restart files in place: ``stopped.json``, resubmit to resume).

    A result already present for the same key is not recomputed (restart safety).  A deferred
    input (a chain link submitted with a scheduler dependency) is first resolved from its
    parent's result file (:func:`hetflow.workflows.chain.resolve_deferred`).
    """
    from hetflow.errors import CalculationStopped
    from hetflow.workflows.chain import resolve_deferred

    td = TaskDir(path)
    if resolve_deferred(td) == "failed":
        return "failed"
    name, key, atoms, spec = td.load_input()
    if td.result_for(key) is not None:
        return "done"
    td.error.unlink(missing_ok=True)
    started = time.time()

    def fail(message: str, tb: str = "") -> str:
        write_json_atomic(td.error, {
            "name": name, "key": key, "message": message, "traceback": tb[-4000:],
            "host": socket.gethostname(), "start": started, "end": time.time(),
        })
        return "failed"

    from hetflow.workflows.progress import task_log

    try:
        with task_log(td.root / "worker.log"):  # not onto the controller's terminal
            res = _run_calculation(atoms, spec, str(td.root))
        payload = result_payload(name, key, res, started, time.time(), mo_dir=td.root)
    except CalculationStopped as exc:
        write_json_atomic(td.root / "stopped.json", {
            "name": name, "key": key, "message": str(exc), "host": socket.gethostname(),
            "job_id": os.environ.get("SLURM_JOB_ID") or os.environ.get("PBS_JOBID") or os.environ.get("LSB_JOBID"),
            "start": started, "end": time.time()})
        return "stopped"
    except Exception as exc:  # noqa: BLE001 - every failure becomes error.json
        return fail(f"{type(exc).__name__}: {exc}", traceback.format_exc())
    problem = payload_problem(payload)
    if problem is not None:  # e.g. NaN energy: a calculation failure, not a lost worker
        return fail(f"CalculatorError: {spec.backend} {spec.method} gave an unusable result for "
                    f"{atoms.get_chemical_formula()}: {problem}")
    write_json_atomic(td.result, payload)
    return "done"


def main(argv: list[str] | None = None) -> int:
    from hetflow.errors import HetflowError

    argv = sys.argv[1:] if argv is None else argv
    rc = 0
    for p in argv:
        try:
            outcome = run_task_dir(p)
        except HetflowError as exc:  # a damaged input file or a full disk: one line, next task
            print(f"{p}: error: {exc}", file=sys.stderr, flush=True)
            rc = 2
            continue
        print(f"{p}: {outcome}", flush=True)
        rc = rc or int(outcome != "done")
    return int(rc)


if __name__ == "__main__":
    sys.exit(main())
