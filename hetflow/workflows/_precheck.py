"""Validate a task's calculation input before a batch job is submitted for it."""

from __future__ import annotations

from hetflow.calculators import registry
from hetflow.calculators.base import CalcSpec
from hetflow.workflows._taskdir import TaskDir, decode_atoms, read_json


def precheck_task(td: TaskDir) -> None:
    """Ask the task's backend to validate its input before anything is submitted (CP2K: write the
    input and check it with cp2k-input-tools and ``cp2k.psmp --check`` into ``<task>/cp2k-check/``);
    a rejection fails the task with the backend's own line (InputError / CalculatorError)."""
    d = read_json(td.input)
    if not d or d.get("atoms") is None or not isinstance(d.get("spec"), dict):
        return
    spec = CalcSpec.from_dict(d["spec"])
    registry.backend(spec.backend).precheck(decode_atoms(d["atoms"]), spec, td.root / f"{spec.backend}-check")
