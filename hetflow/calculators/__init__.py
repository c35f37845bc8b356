"""Calculators: one protocol (:mod:`hetflow.calculators.base`), several backends."""

from hetflow.calculators.base import CalcResult, CalcSpec, MOData, calc_key

__all__ = ["CalcResult", "CalcSpec", "MOData", "calc_key"]
