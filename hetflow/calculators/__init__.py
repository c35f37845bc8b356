"""Calculators: one protocol (:mod:`hetflow.calculators.base`), several backends, each one object
registered by name in :mod:`hetflow.calculators.registry`.

:func:`run_calculation` is the entry point: ``run_calculation(atoms, spec, workdir=None)``.
"""

from hetflow.calculators.base import CalcResult, CalcSpec, MOData, calc_key

__all__ = ["CalcResult", "CalcSpec", "MOData", "calc_key", "run_calculation"]


def __getattr__(name: str):
    # imported lazily so that the protocol types (CalcSpec, MOData …) can be used — e.g. by the
    # analysis layer — without loading the engine entry point
    if name == "run_calculation":
        from hetflow.calculators.run import run_calculation

        return run_calculation
    raise AttributeError(f"module 'hetflow.calculators' has no attribute {name!r}")
