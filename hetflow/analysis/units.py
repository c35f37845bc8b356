"""Energy units: eV inside hetflow, kcal/mol and kJ/mol only in reports.

The conversion factors come from :mod:`ase.units` (CODATA as ASE uses it), so hetflow and
ASE agree to the last digit.  Convert once, at the edge (report/table/plot), never inside a
calculation.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from ase import units as _u

from hetflow.errors import InputError

EnergyUnit = Literal["eV", "kcal/mol", "kJ/mol"]

#: 1 eV (per particle) in kcal/mol (≈ 23.0605)
EV_TO_KCAL_PER_MOL: float = 1.0 / (_u.kcal / _u.mol)
#: 1 eV (per particle) in kJ/mol (≈ 96.4853)
EV_TO_KJ_PER_MOL: float = 1.0 / (_u.kJ / _u.mol)

_FACTORS: dict[str, float] = {
    "eV": 1.0,
    "kcal/mol": EV_TO_KCAL_PER_MOL,
    "kJ/mol": EV_TO_KJ_PER_MOL,
}
UNITS: tuple[str, ...] = tuple(_FACTORS)


def _factor(unit: str) -> float:
    try:
        return _FACTORS[unit]
    except KeyError:
        raise InputError(f"unknown energy unit {unit!r}; choose one of {', '.join(UNITS)}") from None


def from_ev(value, unit: str = "kcal/mol"):
    """Convert an energy (scalar or array) from eV to ``unit``."""
    f = _factor(unit)
    return value * f if np.isscalar(value) else np.asarray(value, float) * f


def kcal(value_ev: float | None) -> float | None:
    """One energy in eV as a float in kcal/mol; None stays None (a value the gate withheld)."""
    return None if value_ev is None else float(value_ev * EV_TO_KCAL_PER_MOL)


def to_ev(value, unit: str = "kcal/mol"):
    """Convert an energy (scalar or array) given in ``unit`` to eV."""
    f = _factor(unit)
    return value / f if np.isscalar(value) else np.asarray(value, float) / f
