"""The CLI's rules: bounds of options by name, output options, executor counts (:mod:`hetflow.validate`)."""

from __future__ import annotations

from typing import Any

from hetflow.errors import InputError
from hetflow.validate._core import integer
from hetflow.validate.structures import MAX_INPLANE, MAX_OCTAHEDRA, MAX_PARTNER_CELLS

# ----------------------------------------------------------------------------- CLI rules
#: bounds of CLI options by parameter name (ints and floats); options not listed are only
#: required to be finite and of moderate size (|x| ≤ 1e9).  Size-like options are checked
#: as a whole by their rule in :data:`SIZES` as well.
CLI_NUMBERS: dict[str, dict[str, Any]] = {
    "seed": {"lo": 0, "hi": 2**32 - 1},
    "workers": {"lo": 1, "hi": 100_000},
    "threads": {"lo": 1, "hi": 100_000},
    "nodes": {"lo": 1, "hi": 100_000},
    "ntasks": {"lo": 1, "hi": 10_000_000},
    "max_retries": {"lo": 0, "hi": 1000},
    "steps": {"lo": 0, "hi": 10**7},
    "max_steps": {"lo": 0, "hi": 10**7},
    "lines": {"lo": 0, "hi": 10**6},
    "charge": {"lo": -1000, "hi": 1000},
    "multiplicity": {"lo": 1, "hi": 1000},
    "size": {"hi": MAX_OCTAHEDRA},  # the whole triple: SIZES["size"]
    "inplane": {"lo": 1, "hi": MAX_INPLANE},
    "partner_cells": {"lo": 1, "hi": MAX_PARTNER_CELLS},
    "fmax": {"lo": 0, "lo_open": True, "hi": 1000},
    "vacuum": {"lo": 0, "hi": 1000},
    "poll": {"lo": 0, "lo_open": True, "hi": 3600},
    "samples": {"lo": 2, "hi": 10_000},
    "exact_max": {"lo": 1, "hi": 10_000},
    "temperatures": {"lo": 0, "lo_open": True, "hi": 5000},
}
CLI_DEFAULT_BOUND = 1e9
#: CLI options naming a file hetflow writes: checked by :func:`output_file` before any work
CLI_OUTPUT_FILES = ("output", "json_out", "csv_out")


def executor_count(value: Any, what: str, default: int, lo: int = 1) -> int:
    """An executor's integer option (workers, threads, retries, …): ``default`` when None, else an
    integer in [lo, 100000]; a bad value is a ``WorkflowError`` naming the option."""
    from hetflow.errors import WorkflowError

    if value is None:
        return default
    try:
        return integer(value, what, lo=lo, hi=100_000)
    except InputError as exc:
        raise WorkflowError(str(exc)) from None


__all__ = ['CLI_NUMBERS', 'CLI_DEFAULT_BOUND', 'CLI_OUTPUT_FILES', 'executor_count']
