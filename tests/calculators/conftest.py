"""Shared small structures for the calculator tests (real engines, seconds each)."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms

A_CUBIC = 5.605  # Å, cubic CsPbCl3


@pytest.fixture(scope="session")
def cluster(gapped_cluster) -> Atoms:
    """Neutral CsPbCl3 cluster (Cs12Pb4Cl20, 36 atoms) with domain/layer/role labels and a clear
    GFN1 gap (see ``tests/conftest.py``: symmetric hand termination of the 2×2×1 cut)."""
    atoms = gapped_cluster.copy()
    assert len(atoms) == 36 and atoms.get_chemical_formula() == "Cl20Cs12Pb4"
    return atoms


@pytest.fixture(scope="session")
def cubic_cell() -> Atoms:
    """5-atom periodic cubic CsPbCl3 cell, a = 5.605 Å."""
    return Atoms("CsPbCl3", scaled_positions=[[0, 0, 0], [.5, .5, .5], [.5, .5, 0], [.5, 0, .5], [0, .5, .5]],
                 cell=[A_CUBIC] * 3, pbc=True)


@pytest.fixture(scope="session")
def pbcl2() -> Atoms:
    """Bent PbCl2 molecule (Pb–Cl 2.44 Å, Cl–Pb–Cl 98°)."""
    r, ang = 2.44, np.radians(98.0)
    return Atoms("PbCl2", positions=[[0, 0, 0], [r, 0, 0], [r * np.cos(ang), r * np.sin(ang), 0]])


@pytest.fixture(scope="session")
def tiny_nc() -> Atoms:
    """11-atom neutral CsPbCl3 nanocrystal (Cs4PbCl6: one PbCl6 octahedron), labels included."""
    from hetflow.structures.nanocrystal import cut_nanocrystal

    atoms = cut_nanocrystal("CsPbCl3", size=(1, 1, 1), charge=0)
    assert len(atoms) == 11 and atoms.get_chemical_formula() == "Cl6Cs4Pb"
    return atoms
