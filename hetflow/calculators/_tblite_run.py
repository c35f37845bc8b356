"""``run_tblite``: run one tblite calculation function in the OpenBLAS worker or in-process.

Used by the tblite backend (:meth:`hetflow.calculators.xtb.TBLiteBackend.launch`) for single
points, relaxations (:func:`hetflow.calculators.run.run_local`) and cell relaxations
(:func:`hetflow.calculators.relax.relax_cell`); the function is named by a string, so this module
imports none of them.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ase import Atoms

from hetflow.calculators._worker import _resolve, call_in_worker
from hetflow.calculators.base import CalcResult, CalcSpec
from hetflow.calculators.blas import choose_blas

log = logging.getLogger("hetflow.calculators")


def run_tblite(func: str, atoms: Atoms, spec: CalcSpec, wd: Path | None) -> CalcResult:
    """Run ``func`` ("module:function" taking (atoms, spec, workdir)) for a tblite spec: in the
    OpenBLAS worker process when the BLAS choice asks for it, else in this process.  The caller
    has checked the input (deterministic errors before any process is started)."""
    choice = choose_blas(spec.settings_dict)
    log.info("tblite %s on %s: BLAS %s, OMP_NUM_THREADS=%d",
             spec.method, atoms.get_chemical_formula(), choice.label, choice.threads)
    if choice.use_worker:
        result = call_in_worker(choice.preload, choice.threads, func, atoms, spec, wd)
    else:
        result = _resolve(func)(atoms, spec, wd)
    result.versions["blas"] = choice.label
    result.extra.setdefault("threads", choice.threads)
    return result
