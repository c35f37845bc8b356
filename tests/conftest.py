"""Structures shared across the test directories."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms


def symmetric_cluster() -> Atoms:
    """Neutral Cs12Pb4Cl20 (2 × 2 × 1 octahedra, 36 atoms) with a clear GFN1 gap.

    Cut with :func:`hetflow.structures.nanocrystal.cut_nanocrystal` keeping all 18 Cs of the
    CsCl-terminated cut (formal charge +6), then six Cs removed by hand in the most symmetric
    pattern: four corners on a tetrahedron and the two z-face centres.  The production rule
    (corner/edge Cs, least coordinated) leaves one Cs-rich face on a cluster this small, whose
    Cs 6s level becomes the GFN1 HOMO (gap 0.42 eV, HOMO 11 % Cl); this pattern gives a
    0.82 eV gap with a Cl-p HOMO (86 % Cl), which the MO tests need.
    """
    from hetflow.structures.nanocrystal import cut_nanocrystal

    full = cut_nanocrystal("CsPbCl3", size=(2, 2, 1), charge=6, max_face_fraction=1.0)
    syms = np.array(full.get_chemical_symbols())
    cs = np.where(syms == "Cs")[0]
    d = full.positions[cs] - full.positions.mean(axis=0)
    off = np.abs(d) > 1.0
    corners = cs[off[:, 0] & off[:, 1]]
    tetra = corners[np.prod(np.sign(full.positions[corners] - full.positions.mean(axis=0)), axis=1) > 0]
    centres = cs[~off[:, 0] & ~off[:, 1]]
    assert len(tetra) == 4 and len(centres) == 2
    atoms = full.copy()
    del atoms[list(np.r_[tetra, centres])]
    atoms.info.update(charge=0, removed_surface_ions=6, termination={"rule": "test: tetrahedral corners + z centres"})
    return atoms


@pytest.fixture(scope="session")
def gapped_cluster() -> Atoms:
    """Session copy of :func:`symmetric_cluster`."""
    return symmetric_cluster()
