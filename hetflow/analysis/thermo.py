"""Configurational thermodynamics of partial exchange: Boltzmann averages and free energies.

For one composition — ``n`` of the ``N`` sites of a sublattice exchanged — the configurations form a
canonical ensemble of Ω = C(N, n) members.  With relaxed energies E_i of configurations that are
either

* **all symmetry-distinct ones** with their multiplicities g_i (Σ g_i = Ω): Z = Σ g_i e^(−βE_i), or
* **a uniform random sample** of M of them: Z ≈ Ω · (1/M) Σ e^(−βE_i) (the sample mean of the
  Boltzmann factor estimates ⟨e^(−βE)⟩ over all Ω),

the configurational free energy is F = −kT ln Z, the Boltzmann-averaged energy
⟨E⟩ = Σ w_i E_i with w_i ∝ g_i e^(−βE_i), and the configurational entropy S = (⟨E⟩ − F)/T.  For
sites that do not interact (every E_i equal) this gives exactly the ideal mixing entropy
S = k ln Ω.  Energies are shifted by their minimum before exponentiating (no overflow).

Units: eV and K in, eV and eV/K out (k_B = 8.617333262e-5 eV/K); kcal/mol only in reports.

The statistical error of a sampled composition is a bootstrap over its configurations
(:func:`bootstrap_free_energy`): resample the M energies with replacement, recompute F, report the
standard deviation.  It says how well M configurations pin the low-energy tail — it cannot see a
rare configuration far below all M sampled ones; the sample-size convergence in the report does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from hetflow.errors import InputError

__all__ = ["K_B", "EnsembleStats", "ensemble", "bootstrap_free_energy", "ideal_mixing_free_energy",
           "mixing_curve", "log_binomial", "gaussian_free_energy"]

#: Boltzmann constant, eV/K (CODATA 2018)
K_B = 8.617333262e-5


@dataclass(frozen=True)
class EnsembleStats:
    """One composition's ensemble (eV, eV/K).

    e_min: lowest configuration energy.  e_mean: Boltzmann average ⟨E⟩.  e_arith: plain mean of the
    configurations (the T → ∞ average of a uniform sample).  free_energy: F = −kT ln Z.
    entropy: S = (⟨E⟩ − F)/T.  log_omega: ln Ω (Ω = number of configurations the ensemble stands
    for).  n_configs: configurations evaluated.  temperature: K.  sampled: a random sample (True)
    or every symmetry-distinct configuration with multiplicities (False).
    """

    e_min: float
    e_mean: float
    e_arith: float
    free_energy: float
    entropy: float
    log_omega: float
    n_configs: int
    temperature: float
    sampled: bool


def log_binomial(n: int, k: int) -> float:
    """ln C(n, k), exact through lgamma (no overflow for large n)."""
    if not (0 <= k <= n):
        raise InputError(f"cannot choose {k} of {n} sites")
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def _check(energies: Sequence[float], temperature: float) -> np.ndarray:
    e = np.asarray(energies, dtype=float)
    if e.ndim != 1 or len(e) == 0:
        raise InputError("an ensemble needs at least one configuration energy")
    if not np.isfinite(e).all():
        raise InputError("configuration energies must be finite")
    if not (np.isfinite(temperature) and temperature > 0):
        raise InputError(f"temperature must be > 0 K, got {temperature}")
    return e


def ensemble(energies: Sequence[float], temperature: float, multiplicities: Sequence[float] | None = None,
             log_omega: float | None = None) -> EnsembleStats:
    """The ensemble of one composition.

    ``multiplicities``: every symmetry-distinct configuration with its multiplicity (Ω = their sum).
    ``log_omega``: a uniform random sample standing for Ω = e^log_omega configurations (e.g.
    :func:`log_binomial`).  Exactly one of the two is given, or neither (then the configurations
    are the whole ensemble, each once)."""
    e = _check(energies, temperature)
    kt = K_B * temperature
    e0 = float(e.min())
    boltz = np.exp(-(e - e0) / kt)
    if multiplicities is not None and log_omega is not None:
        raise InputError("give multiplicities (all distinct configurations) or log_omega (a sample), not both")
    if log_omega is not None:
        g = np.ones_like(e)
        ln_z = -e0 / kt + float(log_omega) + math.log(float(boltz.mean()))
        lo, sampled = float(log_omega), True
    else:
        g = np.ones_like(e) if multiplicities is None else np.asarray(multiplicities, dtype=float)
        if g.shape != e.shape or (g <= 0).any():
            raise InputError("one positive multiplicity per configuration is needed")
        ln_z = -e0 / kt + math.log(float((g * boltz).sum()))
        lo, sampled = math.log(float(g.sum())), False
    w = g * boltz
    w /= w.sum()
    e_mean = float((w * e).sum())
    f = -kt * ln_z
    return EnsembleStats(e_min=e0, e_mean=e_mean, e_arith=float(np.average(e, weights=g)), free_energy=f,
                         entropy=(e_mean - f) / temperature, log_omega=lo, n_configs=len(e),
                         temperature=float(temperature), sampled=sampled)


def bootstrap_free_energy(energies: Sequence[float], temperature: float, log_omega: float,
                          n_boot: int = 1000, seed: int = 0) -> float:
    """Standard deviation (eV) of F over ``n_boot`` bootstrap resamples of a sampled composition."""
    e = _check(energies, temperature)
    if len(e) < 2:
        return float("nan")
    rng = np.random.default_rng(seed)
    fs = [ensemble(e[rng.integers(0, len(e), len(e))], temperature, log_omega=log_omega).free_energy
          for _ in range(int(n_boot))]
    return float(np.std(fs, ddof=1))


def gaussian_free_energy(mean: float, std: float, temperature: float, log_omega: float) -> float:
    """F (eV) of Ω = e^log_omega configurations whose energies are Gaussian with ``mean`` and ``std``
    (eV): ⟨e^(−βE)⟩ = e^(−βμ + β²σ²/2), so F = μ − σ²/(2kT) − kT ln Ω (the second-cumulant
    estimate).  Beside the sample estimate of :func:`ensemble` it shows whether M draws pin the
    low-energy tail: when σ ≫ kT the sample mean of e^(−βE) is set by its lowest draw and lies
    above the Gaussian value; a distribution with a heavier low tail lies below both."""
    if not (np.isfinite(temperature) and temperature > 0):
        raise InputError(f"temperature must be > 0 K, got {temperature}")
    if not (np.isfinite(mean) and np.isfinite(std) and std >= 0):
        raise InputError(f"mean and std must be finite, std ≥ 0; got {mean}, {std}")
    kt = K_B * temperature
    return float(mean - std ** 2 / (2.0 * kt) - kt * log_omega)


def ideal_mixing_free_energy(n_sites: int, n_exchanged: int, temperature: float) -> float:
    """−kT ln C(N, n) (eV): the free energy of mixing of non-interacting sites."""
    return -K_B * temperature * log_binomial(n_sites, n_exchanged)


def mixing_curve(x: Sequence[float], values: Sequence[float]) -> np.ndarray:
    """``values`` minus the straight line between the two end members (x = first and last):
    negative where an intermediate composition is more stable than the phase-separated mixture."""
    x = np.asarray(x, dtype=float)
    v = np.asarray(values, dtype=float)
    if len(x) != len(v) or len(x) < 2:
        raise InputError("a mixing curve needs at least two compositions, one value each")
    line = v[0] + (v[-1] - v[0]) * (x - x[0]) / (x[-1] - x[0])
    return v - line
