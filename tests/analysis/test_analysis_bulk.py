"""Bulk analysis: the supercell convergence rule, octahedral tilts, lattice parameters."""

import numpy as np
import pytest

from hetflow.analysis.bulk import ConvergencePoint, convergence, lattice_summary, octahedral_tilts
from hetflow.analysis.units import from_ev
from hetflow.errors import InputError
from hetflow.structures.phases import get_phase
from hetflow.structures.supercells import FCC, build_supercell


def _pts(es):
    return [ConvergencePoint(f"s{i}", 10 * (i + 1), 5.0 * (i + 1), e) for i, e in enumerate(es)]


def test_convergence_stops_at_first_small_step():
    kj = 1 / from_ev(1.0, "kJ/mol")  # 1 kJ/mol in eV
    c = convergence(_pts([0.0, -5 * kj, -5.5 * kj, -5.6 * kj]), tol_kj=1.0)
    assert c.converged and len(c.points) == 3  # the 4th point is not needed
    assert c.value == pytest.approx(-5.5 * kj)
    assert c.last_delta_kj == pytest.approx(-0.5)
    rows = c.rows()
    assert rows[0]["Δ from previous (kJ/mol per f.u.)"] is None
    assert rows[1]["Δ from previous (kJ/mol per f.u.)"] == pytest.approx(-5.0)


def test_convergence_not_reached_reports_last_change():
    kj = 1 / from_ev(1.0, "kJ/mol")
    c = convergence(_pts([0.0, 3 * kj, 1.5 * kj]))
    assert not c.converged and c.value == pytest.approx(1.5 * kj) and c.last_delta_kj == pytest.approx(-1.5)
    one = convergence(_pts([0.0]))
    assert not one.converged and one.last_delta_kj is None
    with pytest.raises(InputError, match="must grow"):
        convergence([ConvergencePoint("a", 20, 5, 0.0), ConvergencePoint("b", 10, 6, 0.0)])
    with pytest.raises(InputError, match="tolerance"):
        convergence(_pts([0.0, 1.0]), tol_kj=0)


def test_tilts_zero_for_cubic_and_nonzero_when_rotated():
    a = build_supercell(get_phase("CsPbI3-alpha"), 2 * FCC)
    t = octahedral_tilts(a)
    assert t["n_bridges"] == 48 and t["max_tilt"] == pytest.approx(0.0, abs=1e-6)  # 3 I per f.u., 16 f.u.
    g = octahedral_tilts(get_phase("CsPbI3-gamma"))
    assert 5.0 < g["mean_tilt"] < 15.0  # γ: Pb–I–Pb ≈ 155–165°


def test_lattice_summary_in_the_original_setting():
    a = build_supercell(get_phase("CsPbI3-alpha"), 2 * FCC)
    s = lattice_summary(a, matrix=2 * FCC, formula_units=16)
    assert s["a"] == pytest.approx(6.2894) and s["c"] == pytest.approx(6.2894) and s["beta"] == pytest.approx(90.0)
    assert s["volume_per_fu"] == pytest.approx(6.2894**3)
    assert s["spacegroup"]["0.01"].startswith("Pm-3m")
