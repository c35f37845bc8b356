"""One validation layer for every user-supplied value: numbers, names, paths, lists, mappings,
plain data (a parsed YAML/JSON document) and structure files.

Used at the edges — the CLI (:mod:`hetflow.cli` wraps every click option with
:func:`cli_type`), the workflow-file loader (:mod:`hetflow.workflows.wfile`),
:class:`~hetflow.calculators.base.CalcSpec` and the job renderer
(:mod:`hetflow.workflows._jobscript`).  Every check raises :class:`~hetflow.errors.InputError`
with a one-line message that names the value (``what``) and shows what was given; callers
that know more context (``wf.yaml: structures[2]: …``) prefix it.

Numbers are finite (NaN and ±inf never pass), booleans are not numbers, integers are integral.
Text is valid Unicode without control characters (a non-UTF-8 file name arrives in Python as
lone surrogates and is rejected here, before it reaches a database or a terminal).  Files are
regular files (never a FIFO or a device, which would block a reader) of bounded size, opened
without blocking.  Structure files with a count header (xyz/extxyz, POSCAR) are checked
against their length before ASE reads them, so a header claiming 10⁹ atoms fails at once;
a CIF's cell lengths and angles are checked the same way.

Outputs follow one rule (:func:`output_file`): a new name or a regular file, never a FIFO, a
device, a directory or a socket.  Size-like inputs follow one table (:data:`SIZES`), whatever
their type and wherever they come from; a calculation's periodic cell is checked by
:func:`calc_cell` before a worker starts.
"""

from __future__ import annotations

from hetflow.validate._core import *  # noqa: F401,F403 - the basic checks
from hetflow.validate._core import __all__ as _core_all
from hetflow.validate.cli import *  # noqa: F401,F403 - the CLI's rules
from hetflow.validate.cli import __all__ as _cli_all
from hetflow.validate.structures import *  # noqa: F401,F403 - structure files, sizes, cells
from hetflow.validate.structures import __all__ as _structures_all

__all__ = [*_core_all, *_structures_all, *_cli_all]
