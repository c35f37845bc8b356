"""The tunables of guided relaxations (:mod:`hetflow.calculators.accelerated`) and their check.

Kept apart from the algorithm so that :class:`hetflow.calculators.base.CalcSpec` can refuse a bad
``settings["accelerate_options"]`` when the spec is made, before anything runs.  Units: Å, eV.
"""

from __future__ import annotations

from typing import Any

from hetflow.errors import InputError

__all__ = ["ACCEL_DEFAULTS", "accelerate_options"]

#: tunables (``settings["accelerate_options"]`` overrides any of them): trust radius r0 and its
#: bounds (Å, largest atomic displacement per macro step), the surrogate's inner fmax as a
#: fraction of ``spec.fmax``, the MLIP steps per inner relaxation, the energy rise tolerated on
#: acceptance (eV; target SCF noise), the refused steps in a row after which the target level
#: finishes the relaxation alone (``spec.optimizer``, the remaining budget), the L-BFGS memory, and
#: the pair Δ-correction (1: on, 0: off) with its ridge parameter, and whether the inner L-BFGS
#: scales its initial inverse Hessian by s·y/y·y (1) or keeps ASE LBFGS's 1/70 Å²/eV (0); the
#: hand-over: the target level finishes alone once the last ``handover_window`` target calls
#: released less than ``handover`` × the energy released since the start (0: never)
ACCEL_DEFAULTS: dict[str, float] = {"trust": 0.5, "trust_min": 0.02, "trust_max": 1.0, "inner_fmax_ratio": 0.3,
                                    "inner_steps": 500, "accept_rise": 1e-3, "max_refused": 3,
                                    "memory": 8, "correction": 0.0, "ridge": 1e-3, "inner_scaled": 1.0,
                                    "handover": 0.02, "handover_window": 3}


def accelerate_options(settings: dict[str, Any]) -> dict[str, float]:
    """``ACCEL_DEFAULTS`` updated by ``settings["accelerate_options"]``, checked (one-line errors)."""
    given = settings.get("accelerate_options") or {}
    if not isinstance(given, dict) or set(given) - set(ACCEL_DEFAULTS):
        raise InputError(f"settings 'accelerate_options' takes {', '.join(ACCEL_DEFAULTS)}; got {given!r}")
    try:
        out = {**ACCEL_DEFAULTS, **{k: float(v) for k, v in given.items()}}
    except (TypeError, ValueError):
        raise InputError(f"settings 'accelerate_options' takes numbers; got {given!r}") from None
    if (not 0 < out["trust_min"] <= out["trust"] <= out["trust_max"] or not 0 < out["inner_fmax_ratio"] <= 1
            or out["correction"] not in (0.0, 1.0) or out["inner_scaled"] not in (0.0, 1.0)
            or out["ridge"] < 0 or out["memory"] < 0
            or out["max_refused"] < 1 or out["inner_steps"] < 1 or not 0 <= out["handover"] < 1
            or out["handover_window"] < 1):
        raise InputError(f"accelerate_options out of range: {out}")
    return out
