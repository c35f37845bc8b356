"""MO data on disk: a compressed ``.npz`` beside the result, a small JSON reference in it.

Why: the coefficient and overlap matrices of a 189-atom cluster are ~10⁶ numbers each; as
JSON text (``MOData.to_dict``) they made a 71 MB ``--json`` file and a 28 MB task directory,
and the same text went into the result store.  Here they go into one ``numpy.savez_compressed``
file, and JSON / the store keep only what queries need.

**File layout** (``FORMAT`` = ``"hetflow-mo/1"``; arrays by name, dtype and why):

==================  ===========  =====================================================
``eigenvalues``     float64      (nmo,) eV.  Tiny; band edges and gaps are differences of
                                 these, kept to full precision.
``occupations``     float64      (nmo,) 0…2.  Tiny; HOMO selection compares to 0.5.
``coefficients``    **float32**  (nao, nmo).  7 significant digits: a Mulliken fraction
                                 Σ C S C computed from them moves by < 1e-5 (tested);
                                 domain fractions are reported in % with one decimal.
``overlap_upper``   **float32**  packed upper triangle (row-major, ``numpy.triu_indices``)
                                 of the symmetric (nao, nao) AO overlap; half the numbers;
                                 rebuilt symmetric on load.
``ao_atom``         int32        (nao,) atom index of each AO.
``proj__<group>``   **float32**  (nmo,) stored per-group fractions (CP2K ``&LDOS``).
``format``          str          the format tag.
==================  ===========  =====================================================

Read back, every array is bit-identical to what was stored (float32 stays float32: the
"precision stored"); the analysis layer upcasts to float64 when it computes.

**JSON reference** (:func:`mo_reference`): ``eigenvalues``, ``occupations``, optional
``projections`` (per-group fractions, rounded to 1e-6) and ``data_file`` (path of the
``.npz``), plus ``nao``/``nmo``, ``homo_index``, ``gap_eV`` and ``format``.
:meth:`MOData.from_dict` reads it into a *summary* :class:`MOData` (no C, S) whose
``data_file`` points at the full data; :func:`load_full` / :meth:`MOData.full` load it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from hetflow import atomic
from hetflow.errors import InputError

__all__ = ["FORMAT", "MO_FILE", "MOData", "write_mo_npz", "read_mo_npz", "mo_reference", "load_full"]

FORMAT = "hetflow-mo/1"
#: name of the MO file in a task directory
MO_FILE = "mo.npz"
_PROJ = "proj__"


@dataclass
class MOData:
    """Molecular-orbital data of a converged calculation.

    eigenvalues: (nmo,) orbital energies in eV.
    occupations: (nmo,) occupation numbers (0…2 for closed shell).
    coefficients: (nao, nmo) MO coefficients, or None (CP2K gives projections instead).
    overlap: (nao, nao) AO overlap matrix, or None.
    ao_atom: (nao,) index of the atom each AO sits on, or None.
    projections: optional mapping group name → (nmo,) fraction of each MO on that group
        (what CP2K's ``&LDOS`` lists give, or the stored domain fractions of a summary).
    data_file: path of the ``.npz`` holding the full data (:mod:`hetflow.calculators.mo_io`)
        when this is a summary read from JSON or the store (then coefficients/overlap are
        None); :meth:`full` loads it.
    """

    eigenvalues: np.ndarray
    occupations: np.ndarray
    coefficients: np.ndarray | None = None
    overlap: np.ndarray | None = None
    ao_atom: np.ndarray | None = None
    projections: dict[str, np.ndarray] | None = None
    data_file: str | None = None

    def full(self) -> "MOData":
        """This MO data with coefficients and overlap (loaded from ``data_file`` if needed)."""
        return load_full(self)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "eigenvalues": np.asarray(self.eigenvalues).tolist(),
            "occupations": np.asarray(self.occupations).tolist(),
        }
        for name in ("coefficients", "overlap", "ao_atom"):
            v = getattr(self, name)
            if v is not None:
                out[name] = np.asarray(v).tolist()
        if self.projections is not None:
            out["projections"] = {k: np.asarray(v).tolist() for k, v in self.projections.items()}
        if self.data_file is not None:
            out["data_file"] = self.data_file
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "MOData":
        arr = lambda k: None if d.get(k) is None else np.asarray(d[k])  # noqa: E731
        proj = d.get("projections")
        return cls(
            eigenvalues=np.asarray(d["eigenvalues"], dtype=float),
            occupations=np.asarray(d["occupations"], dtype=float),
            coefficients=arr("coefficients"),
            overlap=arr("overlap"),
            ao_atom=None if d.get("ao_atom") is None else np.asarray(d["ao_atom"], dtype=int),
            projections=None if proj is None else {k: np.asarray(v) for k, v in proj.items()},
            data_file=d.get("data_file"),
        )


def write_mo_npz(mo: MOData, path: str | Path) -> Path:
    """Write ``mo`` to ``path`` (compressed npz, dtypes in the module docstring); atomic
    (:func:`hetflow.atomic.write_via`: a temporary file renamed over ``path``, never over a FIFO or a device).  Returns the path."""
    path = Path(path)
    arrays: dict[str, Any] = {
        "format": np.array(FORMAT),
        "eigenvalues": np.asarray(mo.eigenvalues, dtype=np.float64),
        "occupations": np.asarray(mo.occupations, dtype=np.float64),
    }
    if mo.coefficients is not None:
        arrays["coefficients"] = np.asarray(mo.coefficients, dtype=np.float32)
    if mo.overlap is not None:
        s = np.asarray(mo.overlap)
        if s.ndim != 2 or s.shape[0] != s.shape[1]:
            raise InputError(f"overlap matrix must be square, got shape {s.shape}")
        arrays["overlap_upper"] = s[np.triu_indices(len(s))].astype(np.float32)
    if mo.ao_atom is not None:
        arrays["ao_atom"] = np.asarray(mo.ao_atom, dtype=np.int32)
    for g, v in (mo.projections or {}).items():
        arrays[_PROJ + str(g)] = np.asarray(v, dtype=np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)

    def save(tmp: Path) -> None:
        with open(tmp, "wb") as fh:  # a file object: numpy adds no ".npz" to the name
            np.savez_compressed(fh, **arrays)

    return atomic.write_via(path, save)


def read_mo_npz(path: str | Path) -> MOData:
    """The full :class:`MOData` of an npz written by :func:`write_mo_npz` (arrays in their
    stored dtypes; the overlap rebuilt as a symmetric (nao, nao) float32 matrix)."""
    path = Path(path)
    try:
        z = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise InputError(f"MO data file not found: {path}") from None
    except (OSError, ValueError) as exc:
        raise InputError(f"MO data file {path} is not readable: {exc}") from None
    with z:
        if "format" not in z.files or str(z["format"]) != FORMAT:
            raise InputError(f"{path} is not a hetflow MO file ({FORMAT})")
        overlap = None
        if "overlap_upper" in z.files:
            up = z["overlap_upper"]
            nao = int(round((np.sqrt(8 * len(up) + 1) - 1) / 2))
            overlap = np.zeros((nao, nao), dtype=up.dtype)
            iu = np.triu_indices(nao)
            overlap[iu] = up
            overlap.T[iu] = up
        proj = {k[len(_PROJ):]: z[k] for k in z.files if k.startswith(_PROJ)}
        return MOData(
            eigenvalues=z["eigenvalues"], occupations=z["occupations"],
            coefficients=z["coefficients"] if "coefficients" in z.files else None,
            overlap=overlap, ao_atom=z["ao_atom"] if "ao_atom" in z.files else None,
            projections=proj or None, data_file=str(path),
        )


def _homo_lumo(mo: MOData) -> tuple[int | None, float | None]:
    e = np.asarray(mo.eigenvalues, float)
    occ = np.asarray(mo.occupations, float) > 0.5
    if not occ.any():
        return None, None
    h = int(np.flatnonzero(occ)[np.argmax(e[occ])])
    above = e[e > e[h]]
    return h, (float(above.min() - e[h]) if len(above) else None)


def mo_reference(mo: MOData, data_file: str | Path | None,
                 projections: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The JSON-side record of ``mo``: scalars, eigenvalues, occupations, per-group
    ``projections`` (default: ``mo.projections``; fractions rounded to 1e-6) and the path of
    the npz holding the full data (``data_file``; None = not written)."""
    h, gap = _homo_lumo(mo)
    proj = projections if projections is not None else mo.projections
    out: dict[str, Any] = {
        "format": FORMAT,
        "eigenvalues": np.asarray(mo.eigenvalues, float).tolist(),
        "occupations": np.asarray(mo.occupations, float).tolist(),
        "nmo": int(len(mo.eigenvalues)),
        "nao": None if mo.coefficients is None else int(np.shape(mo.coefficients)[0]),
        "homo_index": h,
        "gap_eV": gap,
        "data_file": None if data_file is None else str(data_file),
    }
    if proj:
        out["projections"] = {str(g): np.round(np.asarray(v, float), 6).tolist() for g, v in proj.items()}
    return out


def load_full(mo: MOData, base: str | Path | None = None) -> MOData:
    """``mo`` with coefficients and overlap: itself when it has them, else the npz its
    ``data_file`` names (a relative name is looked up under ``base``).  Raises InputError
    when the data are not there."""
    if mo.coefficients is not None or not mo.data_file:
        if mo.coefficients is None and not mo.projections:
            raise InputError("MO data has no coefficients and no data file to load them from")
        return mo
    p = Path(mo.data_file)
    if not p.is_absolute() and base is not None:
        p = Path(base) / p
    if not p.exists():  # a task directory reused for another key moved its files to old/<key>-<time>/
        moved = sorted(p.parent.glob(f"old/*/{p.name}"))
        p = moved[-1] if moved else p
    full = read_mo_npz(p)
    if len(full.eigenvalues) != len(mo.eigenvalues) or not np.array_equal(
            np.asarray(full.eigenvalues, float), np.asarray(mo.eigenvalues, float)):
        raise InputError(f"MO data file {p} does not belong to this result (its orbital energies differ)")
    if full.projections is None and mo.projections:
        full.projections = mo.projections
    return full
