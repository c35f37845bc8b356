"""The inner optimiser of guided relaxations: L-BFGS on the machine-learned surface.

A guided relaxation (:mod:`hetflow.calculators.accelerated`) relaxes, once per target-level call,
the machine-learned surface tilted by a constant force; that inner relaxation is where its
potential calls go (≈ 30 per target call on the quick model with ASE's ``LBFGS``).  :class:`InnerLBFGS`
is ASE's ``LBFGS`` step for step with ``scaled=False`` (no line search, the fixed initial inverse
Hessian 1/70 Å²/eV, the whole step scaled so that no atom moves more than ``maxstep``), and with
``scaled=True`` takes the initial inverse Hessian of each step from the newest curvature pair,
γ = s·y / y·y (Nocedal & Wright, *Numerical Optimization*, eq. 7.20): the soft modes of these
clusters (1–5 eV/Å²) are then not walked at a stiffness of 70 eV/Å².  Replayed on eight GFN1
frames of the quick model, the scaled version needed 130 CHGNet calls where ASE's needed 272
(BENCHMARKS §14c).

Pure numpy; units: Å, eV, eV/Å.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

__all__ = ["InnerLBFGS"]

#: ASE LBFGS's initial inverse Hessian 1/alpha (Å²/eV), alpha = 70 eV/Å²
H0 = 1.0 / 70.0


class InnerLBFGS:
    """L-BFGS minimiser of a force field over the free atoms, ``memory`` curvature pairs, at most
    ``maxstep`` Å per atom and step; ``scaled``: γ-scaled initial inverse Hessian (module doc)."""

    def __init__(self, memory: int = 100, maxstep: float = 0.2, scaled: bool = True) -> None:
        if memory < 1 or maxstep <= 0:
            raise ValueError(f"memory ≥ 1 and maxstep > 0 required, got {memory}, {maxstep}")
        self.memory, self.maxstep, self.scaled = int(memory), float(maxstep), bool(scaled)

    def _direction(self, g: np.ndarray, pairs: list[tuple[np.ndarray, np.ndarray, float]]) -> np.ndarray:
        """−H·g by the two-loop recursion over ``pairs`` (s, y, 1/(s·y))."""
        q = g.copy()
        alphas = []
        for s, y, rho in reversed(pairs):
            a = rho * float((s * q).sum())
            q -= a * y
            alphas.append(a)
        h0 = H0
        if self.scaled and pairs:
            s, y, rho = pairs[-1]
            h0 = 1.0 / (rho * float((y * y).sum()))
        r = h0 * q
        for (s, y, rho), a in zip(pairs, reversed(alphas)):
            b = rho * float((y * r).sum())
            r += s * (a - b)
        return -r

    def minimise(self, forces: Callable[[np.ndarray], np.ndarray], x0: np.ndarray, free: np.ndarray,
                 fmax: float, steps: int, reach: float, f0: np.ndarray | None = None) -> tuple[np.ndarray, int]:
        """Relax from ``x0`` (N × 3, Å) on ``forces(x)`` (N × 3, eV/Å) until the largest free-atom
        force is below ``fmax``, ``steps`` steps were taken, or a step would take an atom further
        than ``reach`` Å from ``x0``; ``f0``: the forces at ``x0`` when known (saves a call).  Returns
        the last geometry within reach and the number of force evaluations."""
        mask = free[:, None].astype(float)
        pairs: list[tuple[np.ndarray, np.ndarray, float]] = []
        x = np.array(x0, float)
        f = (forces(x) if f0 is None else np.asarray(f0, float)) * mask
        calls = int(f0 is None)
        cap = min(self.maxstep, reach)  # a reach below maxstep still allows steps inside it
        for _ in range(int(steps)):
            if np.sqrt((f ** 2).sum(axis=1)).max() < fmax:
                break
            d = self._direction(-f, pairs) * mask
            longest = float(np.sqrt((d ** 2).sum(axis=1)).max())
            if longest > cap:
                d *= cap / longest
            x_new = x + d
            f_new = forces(x_new) * mask
            calls += 1
            y = -(f_new - f)
            sy = float((d * y).sum())
            if sy > 1e-12:  # curvature condition; ASE keeps every pair
                pairs.append((d, y, 1.0 / sy))
                del pairs[:-self.memory]
            if np.sqrt(((x_new - x0) ** 2).sum(axis=1)).max() > reach:
                break
            x, f = x_new, f_new
        return x, calls
