"""Calculators: one protocol (:mod:`hetflow.calculators.base`), several backends.

:func:`run_calculation` is the entry point: ``run_calculation(atoms, spec, workdir=None)``.
"""

from hetflow.calculators.base import CalcResult, CalcSpec, MOData, calc_key
from hetflow.calculators.run import run_calculation

__all__ = ["CalcResult", "CalcSpec", "MOData", "calc_key", "run_calculation"]
