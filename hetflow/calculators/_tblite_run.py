"""``run_tblite``: run one tblite calculation function in the OpenBLAS worker or in-process.

Shared by :mod:`hetflow.calculators.run` (single points, relaxations) and
:mod:`hetflow.calculators.relax` (:func:`~hetflow.calculators.relax.relax_cell`); it imports
neither, so the arrows run one way: ``run → relax → _tblite_run`` and ``run → _tblite_run``.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ase import Atoms

from hetflow.calculators.base import CalcResult, CalcSpec

log = logging.getLogger("hetflow.calculators")


def run_tblite(func: str, atoms: Atoms, spec: CalcSpec, wd: Path | None) -> CalcResult:
    """Run ``func`` ("module:function" taking (atoms, spec, workdir)) for a tblite spec: in the
    OpenBLAS worker process when the BLAS choice asks for it, else in this process."""
    from hetflow.calculators._worker import _resolve, call_in_worker
    from hetflow.calculators.blas import choose_blas
    from hetflow.calculators.xtb import check_xtb_input

    check_xtb_input(atoms, spec)  # deterministic errors before any process is started
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
