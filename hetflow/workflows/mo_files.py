"""MO data of a task: the full matrices to ``<task dir>/mo.npz``, a reference in the result.

The file is named after the content key (``mo-<key>.npz``), so a task directory reused for
another calculation (its old files moved to ``old/``) can never hand one result's matrices to
another; the loader also checks that the file's eigenvalues are the summary's.

The worker calls :func:`externalise_mo` instead of inlining ``MOData.to_dict()`` into
``result.json``: the payload's ``mo`` becomes the JSON reference of
:func:`hetflow.calculators.mo_io.mo_reference` — eigenvalues, occupations, the per-domain
Mulliken fractions (computed here, where C and S are in memory, when the structure carries
``domain`` labels) and the absolute path of the npz.  The store ingests that reference as it
is, so a stored row keeps what queries need and ``StoredResult.mo.full()`` reads C and S back
from the task directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hetflow.calculators.mo_io import MO_FILE, mo_reference, write_mo_npz
from hetflow.errors import HetflowError


def summary_fractions(mo, atoms) -> dict[str, Any] | None:
    """Domain fractions of ``mo`` on ``atoms`` (None when the structure has no usable
    domain labels or the MO data cannot be projected)."""
    if atoms is None or "domain" not in atoms.arrays:
        return mo.projections
    from hetflow.analysis.projections import domain_fractions

    try:
        return domain_fractions(mo, atoms)
    except HetflowError:
        return mo.projections


def mo_file_name(key: str) -> str:
    """File name of the MO data of the calculation with content key ``key``."""
    return f"mo-{key}.npz"


def externalise_mo(mo, atoms, directory: str | Path, name: str = MO_FILE) -> dict[str, Any]:
    """Write ``mo`` to ``directory/name`` and return its JSON reference (absolute path)."""
    path = write_mo_npz(mo, Path(directory).resolve() / name)
    return mo_reference(mo, path, summary_fractions(mo, atoms))
