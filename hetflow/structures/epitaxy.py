"""Epitaxial matching of a perovskite (100) face and a Pnma chalcohalide (010) face: the paper's
lattice mismatch, the pseudo-cubic spacings and the strain of the √2 × √2 relation (pymatgen ZSL).

Part of the heterostructure builders (:mod:`hetflow.structures.interface`, which re-exports these names).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from hetflow.errors import InputError
from hetflow.structures.nanocrystal import perovskite_species, pseudocubic_frame
from hetflow.structures.phases import get_entry

__all__ = ["EpitaxialMatch", "epitaxial_match", "lattice_mismatch", "perovskite_spacing", "partner_spacing"]


def lattice_mismatch(a_perovskite: float, a_partner: float) -> float:
    """Paper's lattice mismatch (%): (a_perovskite − a_partner) / a_perovskite × 100 (a in Å)."""
    if a_perovskite <= 0 or a_partner <= 0:
        raise InputError(f"lattice constants must be > 0 Å, got {a_perovskite} and {a_partner}")
    return (a_perovskite - a_partner) / a_perovskite * 100.0


def perovskite_spacing(phase: str) -> float:
    """Pseudo-cubic Pb–Pb spacing of a perovskite phase (Å)."""
    bulk = get_entry(phase).atoms()
    _, b, _ = perovskite_species(bulk)
    return float(np.linalg.norm(pseudocubic_frame(bulk, b), axis=1).mean())


def partner_spacing(phase: str) -> float:
    """Perovskite-equivalent in-plane spacing of a Pnma chalcohalide: mean(a, c)/√2 (Å)."""
    a, _, c = get_entry(phase).atoms().cell.lengths()
    return float(0.5 * (a + c) / math.sqrt(2.0))


@dataclass
class EpitaxialMatch:
    """Epitaxial relation of a perovskite (100) face and a partner (010) face.

    mismatch_percent: the paper's formula with the pseudo-cubic spacings.
    strain_a / strain_c: strain (%) the partner takes to sit on the √2 × √2 perovskite cell.
    zsl: the smallest-area super-lattice matches found by pymatgen's Zur–McGill (ZSL)
    algorithm: film (perovskite) and substrate (partner) areas in Å², the von-Mises-free
    vector strains (%) and the supercell vectors.
    """

    perovskite: str
    partner: str
    a_perovskite: float
    a_partner: float
    mismatch_percent: float
    strain_a: float
    strain_c: float
    zsl: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        z = self.zsl[0] if self.zsl else None
        zs = (f"; ZSL: area {z['match_area']:.1f} Å², strains {z['strain_u']:+.2f} % / {z['strain_v']:+.2f} %"
              if z else "; ZSL: no match within tolerances")
        return (f"{self.perovskite} (100) ∥ {self.partner} (010): a_p = {self.a_perovskite:.3f} Å, "
                f"a_partner = {self.a_partner:.3f} Å, mismatch {self.mismatch_percent:+.2f} %{zs}")


def epitaxial_match(perovskite: str, partner: str, max_area: float = 200.0,
                    max_length_tol: float = 0.05, max_angle_tol: float = 0.02, n_matches: int = 3) -> EpitaxialMatch:
    """Report the epitaxial match of ``perovskite`` (100) on ``partner`` (010).

    Uses :class:`pymatgen.analysis.interfaces.zsl.ZSLGenerator` on the in-plane lattice
    vectors (perovskite a, a; partner a, c) and the paper's mismatch formula on the
    pseudo-cubic spacings.
    """
    from pymatgen.analysis.interfaces.zsl import ZSLGenerator

    ap = perovskite_spacing(perovskite)
    ab = partner_spacing(partner)
    pa, _, pc = get_entry(partner).atoms().cell.lengths()
    film = np.array([[ap, 0.0, 0.0], [0.0, ap, 0.0]])
    sub = np.array([[pa, 0.0, 0.0], [0.0, pc, 0.0]])
    gen = ZSLGenerator(max_area_ratio_tol=0.09, max_area=max_area, max_length_tol=max_length_tol,
                       max_angle_tol=max_angle_tol)
    matches = []
    for m in gen(film, sub):
        fu, fv = (np.asarray(v, float) for v in m.film_sl_vectors)
        su, sv = (np.asarray(v, float) for v in m.substrate_sl_vectors)
        matches.append({
            "match_area": float(m.match_area),
            "substrate_area": float(np.linalg.norm(np.cross(su, sv))),
            "film_vectors": [fu.tolist(), fv.tolist()],
            "substrate_vectors": [su.tolist(), sv.tolist()],
            # strain the partner (substrate) takes to sit on the perovskite (film) super-cell,
            # the same convention as strain_a / strain_c
            "strain_u": float((np.linalg.norm(fu) / np.linalg.norm(su) - 1) * 100),
            "strain_v": float((np.linalg.norm(fv) / np.linalg.norm(sv) - 1) * 100),
        })
    matches.sort(key=lambda d: (round(d["match_area"], 3), abs(d["strain_u"]) + abs(d["strain_v"])))
    root2 = math.sqrt(2.0) * ap
    return EpitaxialMatch(
        perovskite=get_entry(perovskite).name, partner=get_entry(partner).name,
        a_perovskite=ap, a_partner=ab, mismatch_percent=lattice_mismatch(ap, ab),
        strain_a=(root2 / pa - 1) * 100, strain_c=(root2 / pc - 1) * 100, zsl=matches[:n_matches],
    )
