"""Validate a task's calculation input before a batch job is submitted for it."""

from __future__ import annotations

from hetflow.workflows._taskdir import TaskDir, read_json


def precheck_task(td: TaskDir) -> None:
    """CP2K tasks: write and validate the input (cp2k-input-tools, ``cp2k.psmp --check``) into
    ``<task>/cp2k-check/`` before anything is submitted; a rejection fails the task with CP2K's
    own line (InputError / CalculatorError)."""
    d = read_json(td.input)
    if not d or d.get("spec", {}).get("backend") != "cp2k" or d.get("atoms") is None:
        return
    from hetflow.calculators.base import CalcSpec
    from hetflow.calculators.cp2k import precheck
    from hetflow.workflows._taskdir import decode_atoms

    precheck(decode_atoms(d["atoms"]), CalcSpec.from_dict(d["spec"]), td.root / "cp2k-check")
