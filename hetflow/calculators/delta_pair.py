"""A pairwise correction between two levels of theory, fitted to their force difference (Δ-learning).

A machine-learned potential (MLIP) and the target level (GFN1-xTB, PBE) disagree mostly in bond
lengths and stiffnesses — GFN1 puts the CsPbCl3 lattice at 5.40 Å where CHGNet puts it near 5.6 Å —
and a short-ranged pair term per element pair captures most of that:

    E_Δ(x) = Σ_{i<j, r_ij < r_cut} Σ_b w_{t(ij), b} φ_b(r_ij),
    φ_b(r) = exp(−((r − c_b)/σ)²) · ½(cos(π r / r_cut) + 1),

with Gaussians at ``n`` evenly spaced centres c_b on [r_min, r_cut] (σ their spacing) and t(ij) the
unordered element pair.  The weights w are linear, so the fit to the frames computed at both levels
is a ridge least-squares problem in the forces: minimise Σ_k ‖F_Δ(x_k) − (F_T(x_k) − F_M(x_k))‖²
over the free atoms, + λ‖w‖² (λ = ``ridge`` × the mean diagonal of the normal matrix).  Bounded
Gaussians and a cutoff make the correction vanish outside the distances it was fitted on instead
of diverging there.

Pure functions of ``ase.Atoms`` and arrays; no calculator runs here.  Units: Å, eV, eV/Å.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from ase import Atoms
from ase.neighborlist import neighbor_list

__all__ = ["PairBasis", "PairCorrection", "PairFit", "pair_features", "fit_pair_correction"]


@dataclass(frozen=True)
class PairBasis:
    """Radial basis of the correction: ``n`` Gaussians on [``r_min``, ``r_cut``] Å, cosine cutoff."""

    r_min: float = 2.0
    r_cut: float = 6.0
    n: int = 9

    def __post_init__(self) -> None:
        if not 0 < self.r_min < self.r_cut or self.n < 2:
            raise ValueError(f"PairBasis needs 0 < r_min < r_cut and n ≥ 2; got {self}")

    @property
    def centres(self) -> np.ndarray:
        return np.linspace(self.r_min, self.r_cut, self.n)

    def values(self, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """φ_b(r) and dφ_b/dr (Å⁻¹), each of shape (len(r), n)."""
        c = self.centres
        s = c[1] - c[0]
        u = (r[:, None] - c[None, :]) / s
        g = np.exp(-u * u)
        dg = g * (-2.0 * u / s)
        fc = 0.5 * (np.cos(np.pi * r / self.r_cut) + 1.0)
        dfc = -0.5 * np.pi / self.r_cut * np.sin(np.pi * r / self.r_cut)
        return g * fc[:, None], dg * fc[:, None] + g * dfc[:, None]


def _pair_types(numbers: np.ndarray) -> list[tuple[int, int]]:
    z = sorted(set(int(n) for n in numbers))
    return [(a, b) for k, a in enumerate(z) for b in z[k:]]


def pair_features(atoms: Atoms, basis: PairBasis, types: list[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    """The correction's energy and force per unit weight: e of shape (P,) (eV) and f of shape
    (N, 3, P) (eV/Å), P = len(types) × basis.n, so that E_Δ = e·w and F_Δ = f·w."""
    nb = basis.n
    index = {t: k for k, t in enumerate(types)}
    i, j, d, dvec = neighbor_list("ijdD", atoms, basis.r_cut)
    e = np.zeros(len(types) * nb)
    f = np.zeros((len(atoms), 3, len(types) * nb))
    if len(i) == 0:
        return e, f
    z = atoms.numbers
    zi, zj = z[i], z[j]
    t = np.array([index[(min(a, b), max(a, b))] for a, b in zip(zi, zj)])
    phi, dphi = basis.values(d)
    cols = t[:, None] * nb + np.arange(nb)[None, :]
    np.add.at(e, cols.ravel(), 0.5 * phi.ravel())  # each pair appears as (i, j) and (j, i)
    # F_i = Σ_j φ'(r_ij) (x_j − x_i)/r_ij for the ordered pairs with first index i
    unit = dvec / d[:, None]
    for ax in range(3):
        np.add.at(f[:, ax, :], (np.repeat(i, nb), cols.ravel()), (dphi * unit[:, ax:ax + 1]).ravel())
    return e, f


@dataclass
class PairCorrection:
    """A fitted pair correction: ``weights`` over ``types`` × ``basis``; :meth:`energy_forces`
    evaluates it.  An unfitted one (``weights`` None) is zero."""

    basis: PairBasis
    types: list[tuple[int, int]]
    weights: np.ndarray | None = None
    frames: int = 0
    residual: dict[str, float] = field(default_factory=dict)

    def energy_forces(self, atoms: Atoms) -> tuple[float, np.ndarray]:
        if self.weights is None:
            return 0.0, np.zeros((len(atoms), 3))
        e, f = pair_features(atoms, self.basis, self.types)
        return float(e @ self.weights), f @ self.weights


class PairFit:
    """The normal equations of the ridge fit, accumulated one frame at a time (a relaxation adds a
    frame per target-level call and refits: each frame's features are computed once)."""

    def __init__(self, atoms: Atoms, free: np.ndarray | None = None, basis: PairBasis | None = None,
                 ridge: float = 1e-3) -> None:
        if ridge < 0:
            raise ValueError(f"ridge must be ≥ 0; got {ridge}")
        self.basis, self.ridge = basis or PairBasis(), ridge
        self.types = _pair_types(atoms.numbers)
        self.free = np.ones(len(atoms), bool) if free is None else np.asarray(free, bool)
        self._frame = atoms.copy()
        self._frame.calc = None
        p = len(self.types) * self.basis.n
        self.a, self.b = np.zeros((p, p)), np.zeros(p)
        self.yy, self.count, self.frames = 0.0, 0, 0

    def add(self, positions: np.ndarray, dforces: np.ndarray) -> None:
        """One frame: positions (N, 3) Å and F_T − F_M there (N, 3) eV/Å."""
        self._frame.positions = np.asarray(positions, float)
        _, f = pair_features(self._frame, self.basis, self.types)
        m = f[self.free].reshape(-1, self.a.shape[0])
        y = np.asarray(dforces, float)[self.free].reshape(-1)
        self.a += m.T @ m
        self.b += m.T @ y
        self.yy += float(y @ y)
        self.count += y.size
        self.frames += 1

    def solve(self) -> PairCorrection:
        """The ridge solution over the frames added so far (zero weights before the first)."""
        w = np.zeros(self.a.shape[0])
        used = np.diag(self.a) > 0  # pair types/centres no frame samples stay at zero
        if used.any():
            lam = self.ridge * float(np.mean(np.diag(self.a)[used]))
            sub = self.a[np.ix_(used, used)] + lam * np.eye(int(used.sum()))
            w[used] = np.linalg.solve(sub, self.b[used])
        n = max(self.count, 1)
        sse = self.yy - 2.0 * float(w @ self.b) + float(w @ self.a @ w)
        return PairCorrection(basis=self.basis, types=self.types, weights=w, frames=self.frames,
                              residual={"rms_before": float(np.sqrt(self.yy / n)),
                                        "rms_after": float(np.sqrt(max(sse, 0.0) / n))})


def fit_pair_correction(atoms: Atoms, positions: list[np.ndarray], dforces: list[np.ndarray],
                        free: np.ndarray | None = None, basis: PairBasis | None = None,
                        ridge: float = 1e-3) -> PairCorrection:
    """Fit the pair correction to force differences ``dforces[k]`` = F_T − F_M (eV/Å) at
    ``positions[k]`` of ``atoms`` (same atoms, cell and periodicity), over the ``free`` atoms.

    ``residual`` of the result: the RMS force difference before and after the fit (eV/Å), over
    all frames — how much of the disagreement a pair term explains."""
    if len(positions) != len(dforces) or not positions:
        raise ValueError("fit_pair_correction needs one force difference per frame, at least one frame")
    acc = PairFit(atoms, free, basis, ridge)
    for pos, df in zip(positions, dforces):
        acc.add(pos, df)
    return acc.solve()
