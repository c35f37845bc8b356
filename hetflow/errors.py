"""Exceptions hetflow raises for problems a user can fix.

Every error a user can cause (bad input, missing program, impossible request) is a
:class:`HetflowError`; the CLI prints it as a single line ``error: <message>`` and exits
with status 2, never with a traceback.
"""

from __future__ import annotations


class HetflowError(ValueError):
    """A problem with the user's input or environment, with a one-line message."""


class InputError(HetflowError):
    """Invalid user input (sizes, fractions, names, files)."""


class UnknownPhaseError(InputError, KeyError):
    """A phase name that is not in the registry."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else "unknown phase"


class StructureError(HetflowError):
    """A structure that violates a physical requirement (overlap, charge, labels)."""


class CalculatorError(HetflowError):
    """A calculation that cannot be set up or run (missing program, bad spec)."""


class ConvergenceError(CalculatorError):
    """An SCF or geometry optimisation that did not converge after all recovery steps."""


class WorkflowError(HetflowError):
    """A workflow definition or execution problem (cycle, bad YAML, store, scheduler)."""


class CalculationStopped(CalculatorError):
    """A calculation stopped before its end on purpose (walltime reached) with its restart
    files in place: not a failure — resubmitting the task resumes it."""


class StoreError(WorkflowError):
    """The result store cannot be read or written (locked, corrupt, disk full, unreachable)."""


class OutputError(HetflowError):
    """A file hetflow must write cannot be written (disk full, quota, not a directory)."""
