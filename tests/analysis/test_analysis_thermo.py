"""Thermodynamics of partial exchange on cases with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hetflow.analysis.thermo import (K_B, bootstrap_free_energy, ensemble, gaussian_free_energy,
                                     ideal_mixing_free_energy, log_binomial, mixing_curve)
from hetflow.errors import InputError


def test_non_interacting_sites_give_the_ideal_mixing_entropy_exactly():
    """Every configuration at the same energy: F = E − kT ln C(N, n), S = k ln C(N, n), whether the
    ensemble is given as all distinct configurations with multiplicities or as a sample."""
    n_sites, n, e0, t = 12, 5, -1.7, 300.0
    omega = math.comb(n_sites, n)
    exact = ensemble([e0] * 4, t, multiplicities=[omega // 4] * 3 + [omega - 3 * (omega // 4)])
    sampled = ensemble([e0] * 24, t, log_omega=log_binomial(n_sites, n))
    for st in (exact, sampled):
        assert st.free_energy == pytest.approx(e0 - K_B * t * math.log(omega), abs=1e-12)
        assert st.entropy == pytest.approx(K_B * math.log(omega), rel=1e-12)
        assert st.e_mean == pytest.approx(e0) and st.e_min == e0
    assert ideal_mixing_free_energy(n_sites, n, t) == pytest.approx(-K_B * t * math.log(omega))
    assert bootstrap_free_energy([e0] * 24, t, log_binomial(n_sites, n), n_boot=50) == pytest.approx(0.0, abs=1e-12)


def test_two_level_system_matches_the_analytic_free_energy():
    """Levels 0 and ε with degeneracies g0, g1: F = −kT ln(g0 + g1 e^(−ε/kT)),
    ⟨E⟩ = g1 ε e^(−ε/kT) / (g0 + g1 e^(−ε/kT))."""
    eps, g0, g1 = 0.05, 2, 6
    for t in (50.0, 300.0, 1000.0):
        kt = K_B * t
        z = g0 + g1 * math.exp(-eps / kt)
        st = ensemble([0.0, eps], t, multiplicities=[g0, g1])
        assert st.free_energy == pytest.approx(-kt * math.log(z), rel=1e-12)
        assert st.e_mean == pytest.approx(g1 * eps * math.exp(-eps / kt) / z, rel=1e-12)
        assert st.entropy == pytest.approx((st.e_mean - st.free_energy) / t, rel=1e-12)
    # low T: the ground level's degeneracy only; high T: every state equally
    assert ensemble([0.0, eps], 1.0, multiplicities=[g0, g1]).free_energy == pytest.approx(-K_B * math.log(g0))
    # a sample of the two levels in proportion g0 : g1 estimates the same Z
    draws = [0.0] * g0 + [eps] * g1
    assert ensemble(draws, 300.0, log_omega=math.log(g0 + g1)).free_energy == pytest.approx(
        ensemble([0.0, eps], 300.0, multiplicities=[g0, g1]).free_energy, rel=1e-12)


def test_large_energies_do_not_overflow_and_bad_input_is_refused():
    st = ensemble([-19068.8, -19067.0, -19060.0], 300.0)
    assert math.isfinite(st.free_energy) and st.free_energy <= -19068.8
    with pytest.raises(InputError, match="temperature must be > 0 K"):
        ensemble([0.0], 0.0)
    with pytest.raises(InputError, match="finite"):
        ensemble([0.0, float("nan")], 300.0)
    with pytest.raises(InputError, match="not both"):
        ensemble([0.0], 300.0, multiplicities=[1], log_omega=1.0)
    with pytest.raises(InputError, match="cannot choose 13 of 12"):
        log_binomial(12, 13)


def test_mixing_curve_is_zero_at_the_ends_and_signs_stabilised_points():
    x = [0, 20, 50, 100]
    m = mixing_curve(x, [0.0, -1.0, 0.5, 1.0])
    assert m[0] == 0.0 and m[-1] == 0.0
    assert m[1] == pytest.approx(-1.2) and m[2] == pytest.approx(0.0)
    assert np.argmin(m) == 1


def test_gaussian_free_energy_is_the_second_cumulant():
    """F of Gaussian energies: μ − σ²/2kT − kT ln Ω, which a large sample reproduces (σ = kT/2),
    and which is exact for σ = 0."""
    t, lo = 300.0, math.log(1e6)
    kt = K_B * t
    assert gaussian_free_energy(1.0, 0.0, t, lo) == pytest.approx(1.0 - kt * lo)
    rng = np.random.default_rng(1)
    e = rng.normal(0.2, 0.5 * kt, 400_000)
    sample = ensemble(e, t, log_omega=lo).free_energy
    assert sample == pytest.approx(gaussian_free_energy(0.2, 0.5 * kt, t, lo), abs=2e-4)
    with pytest.raises(InputError, match="std ≥ 0"):
        gaussian_free_energy(0.0, -1.0, t, lo)
