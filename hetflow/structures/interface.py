"""Epitaxial perovskite / chalcohalide heterostructures: matching and assembly.

Geometry (PHASES.md; Toso et al. 2022, Livakas et al.):

* perovskite (100) ∥ Pb4S3X2 (010): the chalcohalide's long b axis is the stacking axis z;
* in plane, the chalcohalide a × c cell sits on a √2 × √2 perovskite cell (45° rotation):
  chalcohalide a ∥ perovskite [110], c ∥ [1-10];
* the chalcohalide is cut at its (010) mirror plane, so its interfacial face is the
  Pb sheet that continues the perovskite's Cs⁺/Pb²⁺ cation sub-network;
* the perovskite's interfacial CsX monolayer is the *shared layer* (``layer`` 0): its halides
  bind the chalcohalide's surface Pb, its Cs continue the chalcohalide Pb sub-lattice.

The lateral registry and the gap are chosen among junctions that continue the cation
sub-network (:mod:`hetflow.structures.registry`): by a *scorer* passed in (single-point energies
of periodic probe slabs, :mod:`hetflow.workflows.registry`) or by the geometric continuity score.
A *relaxer* passed in then relaxes the chosen junction in its probe slab (:func:`junction_probe`)
— the builders give the atoms next to the interface its per-site displacements — and the
chalcohalide domain's cut faces in the standalone domain (:func:`partner_faces_model`).  This
module never runs a calculator: scorer and relaxer are functions it is given.  Everything is
reported in ``atoms.info["registry"]`` (candidates, energies, the relaxation record) and
``atoms.info["partner_faces"]``.

Labels (``atoms.arrays``): ``domain`` ("perovskite" | "chalcohalide"), ``layer`` (0 = shared
layer, +1 … into the perovskite alternating PbX2 / CsX, −1 … into the chalcohalide, one per
atomic plane), ``role`` (A = Cs, B = perovskite Pb, X = halide, S = sulfide, M = chalcohalide Pb).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np
from ase import Atoms

from hetflow import validate
from hetflow.errors import InputError, StructureError
from hetflow.structures.charge import HALIDES, balance_charge, formal_charge, formal_charges
from hetflow.structures.labels import plane_index
from hetflow.structures.nanocrystal import cut_nanocrystal, perovskite_species, pseudocubic_frame
from hetflow.structures.phases import get_entry
from hetflow.structures.registry import (
    InterfaceCell,
    Registry,
    apply_junction_relaxation,
    candidate_registries,
    column_offsets,
    junction_displacements,
    snap_top_sheet,
)

__all__ = [
    "EpitaxialMatch",
    "epitaxial_match",
    "lattice_mismatch",
    "perovskite_spacing",
    "partner_spacing",
    "build_heterostructure",
    "build_slab",
    "MIN_DISTANCE",
]

#: no two atoms of a built model may be closer than this (Å)
MIN_DISTANCE = 1.8
#: minimum number of perovskite atomic layers (so that 5 can be exchanged)
MIN_PEROVSKITE_LAYERS = 6

#: the model that fills the paper's non-periodic 52 × 68 × 52 Å box (Livakas et al.) with vacuum:
#: a 5 × 5 × 5 perovskite (11 layers, 28 Å) on three b/2 chalcohalide blocks, stacked along the
#: 68 Å edge — see :func:`paper_scale_model`
PAPER_SCALE = {"size": (5, 5, 5), "partner_cells": 3, "box": (52.0, 52.0, 68.0)}



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


# --------------------------------------------------------------------------- assembly helpers


def _inplane_target(ap: float, pa: float, pc: float, strain_to: str) -> float:
    """Common in-plane perovskite spacing (Å) both domains are put on."""
    bp = 0.5 * (pa + pc) / math.sqrt(2.0)
    if strain_to == "perovskite":
        return ap
    if strain_to == "partner":
        return bp
    if strain_to == "mean":
        return 0.5 * (ap + bp)
    raise InputError(f"strain_to must be 'perovskite', 'partner' or 'mean', got {strain_to!r}")


def _partner_block(partner: str, halide: str) -> tuple[Atoms, np.ndarray]:
    """The partner's conventional cell with b along z, cut at the (010) mirror planes.

    Returns the cell (positions fractional in a, c; z Cartesian) as an Atoms object whose
    scaled positions give (fa, fc, fb) and the half-cell thickness b/2 in Å as array([b/2]).
    """
    cell = get_entry(partner).atoms()
    syms = set(cell.get_chemical_symbols())
    if "S" not in syms or "Pb" not in syms or not (syms & set(HALIDES)):
        raise InputError(f"partner phase {partner!r} is not a Pb–S–halide chalcohalide (elements {sorted(syms)})")
    if not np.allclose(cell.cell.angles(), 90.0, atol=0.5):
        raise InputError(f"partner phase {partner!r} must be orthorhombic (Pnma) for the (010) interface")
    return cell, np.array([cell.cell.lengths()[1] / 2])


def _partner_positions(cell: Atoms, vec_a: np.ndarray, vec_c: np.ndarray, n_half: int,
                       ia: range, ic: range) -> tuple[list[str], np.ndarray]:
    """Chalcohalide atoms on the strained in-plane lattice (vec_a, vec_c), ``n_half`` b/2 blocks
    stacked downward, cut between the Pb double sheets (the only neutral (010) cut: each b/2
    block is Pb8S6X4), with the top Pb sheet at z = 0."""
    frac = cell.get_scaled_positions() % 1.0
    b = cell.cell.lengths()[1]
    syms = cell.get_chemical_symbols()
    out_s: list[str] = []
    out_p: list[np.ndarray] = []
    for blk in range(n_half):
        for k, (fa, fb, fc) in enumerate(frac):
            # keep the half cell 0 ≤ fb < ½ for even blocks, ½ ≤ fb < 1 for odd blocks
            lo = 0.0 if blk % 2 == 0 else 0.5
            if not (lo <= fb < lo + 0.5):
                continue
            # blocks stack downward: block 0 occupies (−b/2, 0], block 1 (−b, −b/2], …
            z = (fb - lo - 0.5) * b - blk * b / 2
            for i in ia:
                for j in ic:
                    out_s.append(syms[k])
                    out_p.append((fa + i) * vec_a + (fc + j) * vec_c + np.array([0.0, 0.0, z]))
    pos = np.array(out_p)
    s_arr = np.array(out_s)
    top = pos[s_arr == "Pb", 2].max() if len(pos) else 0.0
    pos[:, 2] -= top
    return out_s, pos


def interface_cell(perovskite: str, partner: str, strain_to: str = "perovskite") -> InterfaceCell:
    """The periodic junction cell of ``perovskite`` (100) on ``partner`` (010) (perovskite frame)."""
    from hetflow.structures.charge import FORMAL_CHARGES

    pentry, centry = get_entry(perovskite), get_entry(partner)
    pbulk = pentry.atoms()
    a_sym, b_sym, x_sym = perovskite_species(pbulk)
    cell, _ = _partner_block(centry.name, x_sym)
    ap = perovskite_spacing(pentry.name)
    pa, _, pc = cell.cell.lengths()
    a_in = _inplane_target(ap, pa, pc, strain_to)
    # terminal CsX monolayer (z = 0): X over the Pb columns (0,0), (0,1); Cs at (½,½), (½,3/2);
    # then the PbX2 layer above (z = +ap/2) — one √2 × √2 cell (vectors a_in(1,1), a_in(−1,1))
    d = ap / 2
    pv_syms = [x_sym, x_sym, a_sym, a_sym, b_sym, b_sym, x_sym, x_sym, x_sym, x_sym]
    pv_pos = a_in * np.array([[0, 0, 0], [0, 1, 0], [0.5, 0.5, 0], [0.5, 1.5, 0],
                              [0, 0, 0], [0, 1, 0], [0.5, 0, 0], [0, 0.5, 0], [0.5, 1, 0], [0, 1.5, 0]], float)
    pv_pos[4:, 2] = d
    unit = Atoms(cell.get_chemical_symbols(), cell=np.diag(cell.cell.lengths()), pbc=True)
    unit.set_scaled_positions(cell.get_scaled_positions())
    va = a_in * np.array([1.0, 1.0, 0.0])
    vc = a_in * np.array([-1.0, 1.0, 0.0])
    ch_syms, ch_pos = _partner_positions(unit, va, vc, 1, range(1), range(1))
    m2 = np.array([va[:2], vc[:2]]).T
    ch_frac = np.linalg.solve(m2, ch_pos[:, :2].T).T % 1.0
    charges = {s: FORMAL_CHARGES[s] for s in set(pv_syms) | set(ch_syms)}
    return InterfaceCell(a_in=float(a_in), d_layer=float(d), bx=float(d), pv_symbols=pv_syms, pv_pos=pv_pos,
                         ch_symbols=list(ch_syms), ch_frac=ch_frac, ch_z=ch_pos[:, 2], charges=charges)


#: registry scorer: candidates + a probe-model builder → the evaluated registries (lowest score wins)
RegistryScorer = Callable[[list[Registry], Callable[[Registry], Atoms]], list[Registry]]
#: relaxer: a structure whose boolean array ``free`` marks the atoms to move (a periodic
#: :func:`junction_probe` or a finite :func:`partner_faces_model`) → relaxed positions (Å) and a dict
#: describing the relaxation (method, energies, fmax, force calls …)
Relaxer = Callable[[Atoms], tuple[np.ndarray, dict]]

#: in-plane cells, perovskite cells and partner blocks of the probe slab a calculator-backed scorer
#: evaluates: periodic in plane, so every registry has the same composition (a finite patch would
#: take other atoms at its edges for every lateral shift), 2 × 2 a × c cells (≈ 16 Å) for the
#: Γ-point xTB calculation
PROBE_INPLANE = (2, 2)
PROBE_PEROVSKITE_CELLS = 2
PROBE_PARTNER_CELLS = 1


def probe_model(perovskite: str, partner: str, reg: Registry, strain_to: str = "perovskite") -> Atoms:
    """The periodic probe slab a scorer evaluates for ``reg`` (perovskite 5 layers on one b/2
    block, 2 × 2 partner cells in plane, 10 Å vacuum; compute it with ``periodic=True``).  Always
    the rigid junction (``reg.relaxation`` is not applied)."""
    return _assemble_slab(perovskite, partner, PROBE_INPLANE, PROBE_PEROVSKITE_CELLS, PROBE_PARTNER_CELLS,
                          strain_to, 10.0, reg.replace(relaxation=None), None, min_layers=3)


#: the atoms of the probe slab a junction relaxation moves: perovskite layers 0 … 2 (the terminal
#: CsX monolayer, the first PbX2 layer and the next CsX layer) and the top five atomic planes of the
#: chalcohalide block (the shared Pb sheet with its Cl and S, and the Pb/S plane below); the two
#: outermost planes on either side stay at the bulk geometry, as the interior of a model does
JUNCTION_FREE_LAYERS = (0, 2)
JUNCTION_FREE_PARTNER_PLANES = 5


def junction_probe(perovskite: str, partner: str, reg: Registry, strain_to: str = "perovskite") -> Atoms:
    """The probe slab of ``reg`` with a boolean array ``free``: the atoms a junction relaxation
    moves (:data:`JUNCTION_FREE_LAYERS`, :data:`JUNCTION_FREE_PARTNER_PLANES`); the others are held
    at the rigid, bulk-like geometry."""
    probe = probe_model(perovskite, partner, reg, strain_to)
    lay, dom = probe.arrays["layer"], probe.arrays["domain"]
    lo, hi = JUNCTION_FREE_LAYERS
    free = ((dom == "perovskite") & (lay >= lo) & (lay <= hi)) | (
        (dom == "chalcohalide") & (lay >= -JUNCTION_FREE_PARTNER_PLANES))
    probe.set_array("free", free)
    return probe


def junction_record(probe: Atoms, relaxed: np.ndarray, reg: Registry, strain_to: str = "perovskite") -> dict:
    """The ``relaxation`` record of ``reg`` from a relaxed :func:`junction_probe` (positions in Å,
    the probe's frame): the per-site displacement table of the free atoms in the junction frame
    (:func:`~hetflow.structures.registry.junction_displacements`), their largest displacement and
    the spread between periodic images (Å)."""
    relaxed = np.asarray(relaxed, float)
    if relaxed.shape != probe.positions.shape or not np.isfinite(relaxed).all():
        raise StructureError(f"relaxed junction positions must be finite, shape {probe.positions.shape}")
    frame = probe.info["junction_frame"]
    rot, origin = np.asarray(frame["rotation"]), np.asarray(frame["origin"])
    start = (probe.positions - origin) @ rot
    end = (relaxed - origin) @ rot
    cell = interface_cell(probe.info["perovskite_phase"], probe.info["partner_phase"], strain_to)
    free = np.asarray(probe.arrays["free"], bool)
    rows, spread = junction_displacements(probe.get_chemical_symbols(), start, end, cell, reg, free)
    disp = np.linalg.norm(end[free] - start[free], axis=1)
    return {"sites": rows, "image_spread": round(spread, 4), "max_displacement": round(float(disp.max()), 4),
            "free_layers": list(JUNCTION_FREE_LAYERS), "free_partner_planes": JUNCTION_FREE_PARTNER_PLANES,
            "probe_atoms": len(probe)}


#: a junction continues the cation sub-network when every top-sheet chalcohalide Pb stands within
#: this in-plane distance (Å) of a perovskite cation column and no Cs–Pb pair is closer than
#: CONTINUITY_CS_PB (Cs–Pb in CsPbCl3: 4.85 Å).  The derived Pb4S3Cl2's top sheet holds its two Pb
#: per cell (½, 0.35) apart instead of the columns' (½, ½), so no rigid junction does better than
#: ≈ 0.6 Å.
CONTINUITY_OFFSET = 0.75
CONTINUITY_CS_PB = 4.0


def continues_cation_network(reg: Registry) -> bool:
    """Whether a scored candidate keeps Toso et al.'s cation-sub-network continuity."""
    d = reg.details
    cc = d.get("shortest_cation_cation")
    return bool(d.get("column_offset_max", np.inf) <= CONTINUITY_OFFSET and cc is not None and cc >= CONTINUITY_CS_PB)


def choose_registry(perovskite: str, partner: str, strain_to: str = "perovskite",
                    scorer: RegistryScorer | None = None, n_candidates: int = 8,
                    relaxer: Relaxer | None = None) -> tuple[Registry, list[Registry]]:
    """Best junction and every registry evaluated.

    Candidates are the ``n_candidates`` best by :func:`~hetflow.structures.registry.continuity_score`
    (pure geometry, :func:`~hetflow.structures.registry.candidate_registries`), each marked
    ``details["continuity"]`` (:func:`continues_cation_network`).  ``scorer`` (e.g. single-point
    energies of probe slabs, :mod:`hetflow.workflows.registry`) re-scores them; the chosen junction
    is the lowest-scoring one that continues the cation sub-network (the definition of the model;
    the others stay in the record with their scores).  Without a scorer the geometric best.

    ``relaxer`` (e.g. :func:`hetflow.workflows.registry.energy_relaxer`) then relaxes the chosen
    junction in its periodic probe slab (:func:`junction_probe`); the returned registry carries the
    displacements (``relaxation``, :func:`junction_record`) that the builders apply."""
    cell = interface_cell(perovskite, partner, strain_to)
    cands = [r.replace(details={**r.details, "continuity": continues_cation_network(r)})
             for r in candidate_registries(cell, keep=n_candidates)]
    if not any(r.details["continuity"] for r in cands):
        raise StructureError(f"no junction of {perovskite}/{partner} continues the cation sub-network "
                             f"(top-sheet Pb ≤ {CONTINUITY_OFFSET} Å from a column, Cs–Pb ≥ {CONTINUITY_CS_PB} Å)")
    if scorer is None:
        best, evaluated = cands[0], cands
    else:
        evaluated = scorer(cands, lambda r: probe_model(perovskite, partner, r, strain_to))
        ok = [r for r in evaluated if r.score is not None and np.isfinite(r.score) and r.details.get("continuity")]
        if not ok:
            raise StructureError("the registry scorer returned no finite score for a junction that continues the "
                                 "cation sub-network")
        best = min(ok, key=lambda r: r.score)
    return (relax_junction(perovskite, partner, best, relaxer, strain_to) if relaxer is not None else best), evaluated


def relax_junction(perovskite: str, partner: str, reg: Registry, relaxer: Relaxer,
                   strain_to: str = "perovskite") -> Registry:
    """``reg`` with its junction relaxed by ``relaxer`` in the periodic probe slab (see
    :func:`junction_probe`): ``relaxation`` = :func:`junction_record` + what the relaxer reports."""
    probe = junction_probe(perovskite, partner, reg, strain_to)
    positions, meta = relaxer(probe)
    record = junction_record(probe, positions, reg, strain_to)
    return reg.replace(relaxation={**dict(meta), **record})


def _as_registry(registry: Registry | dict | None) -> Registry | None:
    if registry is None or isinstance(registry, Registry):
        return registry
    if isinstance(registry, dict):
        try:
            return Registry.from_dict(registry)
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"registry must give orientation, shift_frac and gap: {exc}") from None
    raise InputError(f"registry must be a Registry or a dict, got {type(registry).__name__}")


def _label_layers(atoms: Atoms, n_perov_layers: int, tol: float = 0.45) -> None:
    """layer: perovskite planes 0…L by z (already given), chalcohalide planes −1, −2, … downward."""
    layer = np.zeros(len(atoms), int)
    dom = atoms.arrays["domain"]
    pv = dom == "perovskite"
    layer[pv] = plane_index(atoms.positions[pv, 2], tol)
    ch = ~pv
    idx = plane_index(-atoms.positions[ch, 2], 0.2)  # 0 = top plane of the chalcohalide
    layer[ch] = -(idx + 1)
    if layer[pv].max() != n_perov_layers:
        raise StructureError(
            f"perovskite planes could not be resolved: found {layer[pv].max() + 1}, expected {n_perov_layers + 1}"
        )
    atoms.set_array("layer", layer)


def _check_model(atoms: Atoms, charge: int) -> None:
    q = formal_charge(atoms)
    if q != charge:
        raise StructureError(f"model formal charge is {q:+d}, expected {charge:+d}")
    from ase.neighborlist import neighbor_list

    i, j, d = neighbor_list("ijd", atoms, MIN_DISTANCE)
    if len(d):
        k = int(np.argmin(d))
        raise StructureError(
            f"atoms {atoms[i[k]].symbol}{i[k]} and {atoms[j[k]].symbol}{j[k]} are {d[k]:.2f} Å apart "
            f"(< {MIN_DISTANCE} Å)"
        )


def _roles(syms: np.ndarray, domain: np.ndarray, a_sym: str, b_sym: str) -> np.ndarray:
    role = np.full(len(syms), "X", dtype="<U2")
    role[(syms == a_sym)] = "A"
    role[(syms == b_sym) & (domain == "perovskite")] = "B"
    role[(syms == b_sym) & (domain == "chalcohalide")] = "M"
    role[np.isin(syms, ["S", "Se"])] = "S"
    return role


def _check_common(perovskite: str, partner: str, size, partner_cells: int, strain_to: str,
                  min_layers: int = MIN_PEROVSKITE_LAYERS) -> tuple:
    from hetflow.structures.nanocrystal import _check_size

    size = _check_size(size)
    validate.check_size("partner_cells", partner_cells)
    n_layers = 2 * size[2]
    if n_layers + 1 < min_layers:
        raise InputError(
            f"perovskite with too few layers: size n3 = {size[2]} gives {n_layers + 1} atomic layers, "
            f"need ≥ {min_layers} (n3 ≥ 3) so that 5 can be exchanged"
        )
    pentry = get_entry(perovskite)
    centry = get_entry(partner)
    if pentry.family != "perovskite":
        raise InputError(f"{pentry.name!r} is not a perovskite phase (family {pentry.family})")
    pbulk = pentry.atoms()
    a_sym, b_sym, x_sym = perovskite_species(pbulk)
    cell, _ = _partner_block(centry.name, x_sym)
    _inplane_target(1.0, 1.0, 1.0, strain_to)
    return size, pentry, centry, (a_sym, b_sym, x_sym), cell


# --------------------------------------------------------------------------- builders


def _resolve_registry(perovskite: str, partner: str, strain_to: str, registry, scorer,
                      relaxer: Relaxer | None = None) -> tuple[Registry, list]:
    reg = _as_registry(registry)
    if reg is not None:
        if relaxer is not None and reg.relaxation is None:
            reg = relax_junction(perovskite, partner, reg, relaxer, strain_to)
        return reg, []
    return choose_registry(perovskite, partner, strain_to, scorer, relaxer=relaxer)


def _registry_info(reg: Registry, evaluated: list[Registry], cell: InterfaceCell) -> dict:
    off = column_offsets(cell, reg)
    out = {
        "orientation": reg.orientation, "shift_frac": [float(v) for v in reg.shift_frac], "gap": float(reg.gap),
        "scorer": reg.scorer, "score": reg.score, "column_offset_max": float(off.max()),
        "candidates": [r.to_dict() for r in evaluated],
    }
    if reg.relaxation is not None:
        out["relaxation"] = reg.relaxation
        out["column_offset_max_rigid"] = float(column_offsets(cell, reg.replace(relaxation=None)).max())
    return out


def build_heterostructure(
    perovskite: str = "CsPbCl3",
    partner: str = "Pb4S3Cl2",
    size: tuple[int, int, int] = (3, 3, 5),
    partner_cells: int = 2,
    strain_to: str = "perovskite",
    charge: int = 0,
    vacuum: float | None = None,
    registry: Registry | dict | None = None,
    scorer: RegistryScorer | None = None,
    partner_margin: float = 1.0,
    relaxer: Relaxer | None = None,
    relax_partner_faces: bool = True,
) -> Atoms:
    """Finite NC heterostructure: a CsX-terminated perovskite cube on a chalcohalide domain.

    Parameters
    ----------
    perovskite, partner: registered phase names (e.g. "CsPbCl3"/"Pb4S3Cl2",
        "CsPbBr3"/"Pb4S3Br2").
    size: perovskite octahedra (n1, n2, n3); n1 × n2 is the in-plane size, n3 the thickness:
        the perovskite has 2·n3 + 1 atomic layers (0 … 2·n3), at least 6 are required.
    partner_cells: chalcohalide thickness in half cells of b (b/2 ≈ 7.3 Å, Pb8S6X4 each).
    strain_to: common in-plane lattice: "perovskite" (partner strained onto the perovskite,
        default: the perovskite starts unstrained), "partner" or "mean".
    charge: total formal charge (e) of the perovskite domain (the chalcohalide is neutral).
    vacuum: optional vacuum padding (Å) around the model in a non-periodic box.
    registry: the junction to use (:class:`~hetflow.structures.registry.Registry` or its dict);
        ``None`` chooses it: by ``scorer`` when given (e.g.
        :func:`hetflow.workflows.registry.energy_scorer`), else by cation-column continuity.
    partner_margin: how far (Å) the chalcohalide extends beyond the perovskite's footprint.
    relaxer: relaxes the chosen junction in its periodic probe slab (e.g.
        :func:`hetflow.workflows.registry.energy_relaxer`); the atoms next to the interface then
        take the relaxed junction's displacements (``registry.relaxation``, also applied when a
        given ``registry`` carries them).  ``None`` and no relaxation in ``registry``: the rigid
        junction.
    relax_partner_faces: with a ``relaxer``, also relax the chalcohalide domain's cut faces (its
        outer face and lateral edges) in the standalone domain, the planes that bind the
        perovskite (:data:`PARTNER_FACES_FIXED_PLANES`) held (:func:`partner_faces_model`).

    The perovskite domain is exactly :func:`~hetflow.structures.nanocrystal.cut_nanocrystal` of
    ``size`` (the standalone reference NC): CsX on every face, surface Cs vacancies by the one
    rule of :mod:`hetflow.structures.termination` (≤ ¼ of any face).  Its face z = 0 is the
    terminal CsX monolayer (``layer`` 0) on the chalcohalide's top Pb sheet.

    Returns :class:`ase.Atoms` with arrays ``domain``, ``layer``, ``role`` and info describing
    the model (``kind="nc_heterostructure"``, phases, size, epitaxial match, registry, counts).
    """
    size, pentry, centry, (a_sym, b_sym, x_sym), cell = _check_common(perovskite, partner, size, partner_cells, strain_to)
    if not (np.isfinite(partner_margin) and 0 <= partner_margin <= 20):
        raise InputError(f"partner_margin must be between 0 and 20 Å, got {partner_margin}")
    icell = interface_cell(pentry.name, centry.name, strain_to)
    reg, evaluated = _resolve_registry(pentry.name, centry.name, strain_to, registry, scorer, relaxer)
    ap = perovskite_spacing(pentry.name)
    a_in = icell.a_in

    # perovskite NC, pseudo-cubic axes = Cartesian, layer 0 at z = 0, Pb(0,0) column at origin
    pv = cut_nanocrystal(pentry.name, size, charge=charge, max_face_fraction=0.25)
    pv.positions[:, :2] *= a_in / ap
    syms = np.array(pv.get_chemical_symbols())
    pv.positions[:, 2] -= pv.positions[:, 2].min()
    pb_low = pv.positions[(syms == b_sym)]
    pb_low = pb_low[pb_low[:, 2] < pb_low[:, 2].min() + 0.5]
    corner = pb_low[np.lexsort((pb_low[:, 1], pb_low[:, 0]))[0]]
    pv.positions[:, :2] -= corner[:2]

    # chalcohalide patch below, covering the NC footprint (+ margin)
    lo = pv.positions[:, :2].min(axis=0) - partner_margin
    hi = pv.positions[:, :2].max(axis=0) + partner_margin
    span = int(np.ceil(np.abs(np.r_[lo, hi]).max() / a_in)) + 3
    vec_a, vec_c = icell.vectors(reg.orientation)
    ch_syms, ch_pos = _partner_positions(cell, vec_a, vec_c, int(partner_cells), range(-span, span + 1),
                                         range(-span, span + 1))
    ch_pos = ch_pos + reg.shift_frac[0] * vec_a + reg.shift_frac[1] * vec_c - np.array([0, 0, reg.gap])
    if reg.snap:
        ch_pos = snap_top_sheet(np.array(ch_syms), ch_pos, a_in)
    inside = np.all((ch_pos[:, :2] >= lo) & (ch_pos[:, :2] <= hi), axis=1)
    ch = Atoms(list(np.array(ch_syms)[inside]), positions=ch_pos[inside])
    ch.set_array("domain", np.full(len(ch), "chalcohalide", dtype="<U16"))
    ch, _ = _drop_dangling(ch)
    ch, removed = balance_charge(ch, target=0, protect=ch.positions[:, 2] > -reg.gap - 1.5)

    term = dict(pv.info.get("termination", {}))
    pv.set_array("domain", np.full(len(pv), "perovskite", dtype="<U16"))
    for name in list(pv.arrays):
        if name not in ("numbers", "positions", "domain"):
            pv.set_array(name, None)
    hs = pv + ch
    hs.info = {}
    hs.pbc = False
    hs.set_cell(np.zeros((3, 3)))
    syms = np.array(hs.get_chemical_symbols())
    hs.set_array("role", _roles(syms, hs.arrays["domain"], a_sym, b_sym))
    _label_layers(hs, 2 * size[2])  # on the rigid planes, before the junction's displacements
    hs.positions, n_moved = apply_junction_relaxation(syms, hs.positions, icell, reg)
    faces = None
    if relaxer is not None and relax_partner_faces:
        hs.positions, faces = _relax_partner_faces(hs, relaxer)
    if vacuum is not None:
        hs.center(vacuum=vacuum)
    _check_model(hs, charge)
    match = epitaxial_match(pentry.name, centry.name)
    hs.info.update(
        kind="nc_heterostructure", perovskite_phase=pentry.name, partner_phase=centry.name,
        halide=x_sym, size=list(size), partner_cells=int(partner_cells), perovskite_layers=2 * size[2],
        strain_to=strain_to, inplane_spacing=float(a_in), charge=int(charge), stacking_axis=2,
        mismatch_percent=float(match.mismatch_percent),
        registry=_registry_info(reg, evaluated, icell), junction_relaxed_atoms=int(n_moved),
        termination=term, partner_removed_ions=len(removed),
        counts=model_counts(hs),
    )
    if faces is not None:
        hs.info["partner_faces"] = faces
    return hs


#: the chalcohalide planes held when the domain's cut faces are relaxed alone: the shared Pb sheet
#: and its Cl and S (layers −1 … −3), which bind the perovskite
PARTNER_FACES_FIXED_PLANES = 3


def partner_faces_model(hs: Atoms) -> Atoms:
    """The chalcohalide domain of a heterostructure alone (finite), with a boolean array ``free``:
    every atom but the :data:`PARTNER_FACES_FIXED_PLANES` planes that bind the perovskite — what a
    relaxer moves to take the cut artefacts (bare outer Pb sheet, lateral edges) out of a model."""
    ch = np.flatnonzero(hs.arrays["domain"] == "chalcohalide")
    patch = hs[ch]
    patch.pbc = False
    patch.set_cell(np.zeros((3, 3)))
    patch.set_array("free", patch.arrays["layer"] < -PARTNER_FACES_FIXED_PLANES)
    patch.info = {"relax_what": "partner faces"}
    return patch


def _relax_partner_faces(hs: Atoms, relaxer: Relaxer) -> tuple[np.ndarray, dict]:
    patch = partner_faces_model(hs)
    positions, meta = relaxer(patch)
    positions = np.asarray(positions, float)
    if positions.shape != patch.positions.shape or not np.isfinite(positions).all():
        raise StructureError(f"the partner-faces relaxer returned positions of shape {positions.shape}, "
                             f"expected finite {patch.positions.shape}")
    out = hs.positions.copy()
    out[hs.arrays["domain"] == "chalcohalide"] = positions
    moved = np.linalg.norm(positions - patch.positions, axis=1)
    return out, {**dict(meta), "free_atoms": int(patch.arrays["free"].sum()),
                 "max_displacement": round(float(moved.max()), 4)}


def paper_scale_model(perovskite: str = "CsPbCl3", partner: str = "Pb4S3Cl2", registry: Registry | dict | None = None,
                      scorer: RegistryScorer | None = None, relaxer: Relaxer | None = None,
                      relax_partner_faces: bool = False) -> Atoms:
    """The paper-scale NC heterostructure (:data:`PAPER_SCALE`) centred in the 52 × 52 × 68 Å box
    (x, y in plane, z the stacking axis; pbc False), ``info["box_vacuum"]`` = the smallest gap
    (Å) between the model and a box face.  For CP2K PBE on a cluster (the recipes'
    ``--level pbe``); ≈ 1.5 × 10³ atoms.  The junction is relaxed when a ``relaxer`` is given; the
    chalcohalide's 755-atom domain is not (a GFN1-xTB force call on it costs minutes here) unless
    ``relax_partner_faces`` asks for it."""
    hs = build_heterostructure(perovskite, partner, size=PAPER_SCALE["size"], partner_cells=PAPER_SCALE["partner_cells"],
                               registry=registry, scorer=scorer, relaxer=relaxer,
                               relax_partner_faces=relax_partner_faces)
    box = np.array(PAPER_SCALE["box"])
    hs.set_cell(np.diag(box))
    hs.positions += box / 2 - 0.5 * (hs.positions.min(axis=0) + hs.positions.max(axis=0))
    gaps = np.minimum(hs.positions.min(axis=0), box - hs.positions.max(axis=0))
    if (gaps < 5.0).any():
        raise StructureError(f"the paper-scale model does not fit the 52 × 52 × 68 Å box with 5 Å vacuum (gaps {gaps})")
    hs.pbc = False
    hs.info.update(kind="nc_heterostructure_paper_scale", box=box.tolist(), box_vacuum=float(gaps.min()))
    return hs


def model_counts(atoms: Atoms) -> dict:
    """Atom counts of a labelled model: total, per domain and element, perovskite layers."""
    dom = atoms.arrays["domain"]
    syms = np.array(atoms.get_chemical_symbols())
    out: dict = {"atoms": len(atoms)}
    for d in np.unique(dom):
        els, n = np.unique(syms[dom == d], return_counts=True)
        out[str(d)] = {str(e): int(k) for e, k in zip(els, n)}
    lay = atoms.arrays.get("layer")
    if lay is not None:
        out["perovskite_layers"] = int(lay[dom == "perovskite"].max() + 1)
        out["partner_planes"] = int(-lay[dom != "perovskite"].min()) if (dom != "perovskite").any() else 0
    return out


def build_slab(
    perovskite: str = "CsPbCl3",
    partner: str = "Pb4S3Cl2",
    inplane: tuple[int, int] = (1, 1),
    perovskite_cells: int = 3,
    partner_cells: int = 2,
    strain_to: str = "perovskite",
    vacuum: float = 15.0,
    registry: Registry | dict | None = None,
    scorer: RegistryScorer | None = None,
    relaxer: Relaxer | None = None,
) -> Atoms:
    """Periodic slab: in-plane periodic (``inplane`` × the partner a × c cell ≙ √2 × √2
    perovskite cells), vacuum along z; the junction as in :func:`build_heterostructure`.

    The perovskite part has ``perovskite_cells`` cubic cells → 2·n + 1 atomic layers, CsX on
    both faces; the chalcohalide ``partner_cells`` half cells of b.  Every plane of the
    perovskite (CsX or PbX2) and every b/2 block of the partner is neutral, so the slab is.
    The cell is x ∥ partner a (or c, by the registry's orientation), z the stacking axis.
    """
    return _assemble_slab(perovskite, partner, inplane, perovskite_cells, partner_cells, strain_to, vacuum,
                          registry, scorer, relaxer=relaxer)


def _assemble_slab(perovskite, partner, inplane, perovskite_cells, partner_cells, strain_to, vacuum, registry,
                   scorer, min_layers: int = MIN_PEROVSKITE_LAYERS, relaxer: Relaxer | None = None) -> Atoms:
    m1, m2 = validate.check_size("inplane", inplane)
    validate.check_size("perovskite_cells", perovskite_cells)
    size, pentry, centry, (a_sym, b_sym, x_sym), cell = _check_common(
        perovskite, partner, (1, 1, perovskite_cells), partner_cells, strain_to, min_layers)
    if not (np.isfinite(vacuum) and vacuum > 0):
        raise InputError(f"vacuum must be > 0 Å, got {vacuum}")
    icell = interface_cell(pentry.name, centry.name, strain_to)
    reg, evaluated = _resolve_registry(pentry.name, centry.name, strain_to, registry, scorer, relaxer)
    ap = perovskite_spacing(pentry.name)
    a_in = icell.a_in
    syms: list[str] = []
    pos: list[np.ndarray] = []
    n_layers = 2 * size[2]
    for k in range(n_layers + 1):
        z = k * ap / 2
        for col in ([0, 0], [0, 1]):
            c = np.array(col, float)
            if k % 2 == 0:  # CsX: X over the Pb column, Cs at the cube centre
                syms += [x_sym, a_sym]
                pos += [a_in * np.array([*c, 0]) + [0, 0, z], a_in * np.array([c[0] + .5, c[1] + .5, 0]) + [0, 0, z]]
            else:  # PbX2
                syms += [b_sym, x_sym, x_sym]
                pos += [a_in * np.array([*c, 0]) + [0, 0, z], a_in * np.array([c[0] + .5, c[1], 0]) + [0, 0, z],
                        a_in * np.array([c[0], c[1] + .5, 0]) + [0, 0, z]]
    pv = Atoms(syms, positions=np.array(pos))
    pv.set_array("domain", np.full(len(pv), "perovskite", dtype="<U16"))
    vec_a, vec_c = icell.vectors(reg.orientation)
    ch_syms, ch_pos = _partner_positions(cell, vec_a, vec_c, int(partner_cells), range(1), range(1))
    ch_pos = ch_pos + reg.shift_frac[0] * vec_a + reg.shift_frac[1] * vec_c - np.array([0, 0, reg.gap])
    if reg.snap:
        ch_pos = snap_top_sheet(np.array(ch_syms), ch_pos, a_in)
    ch = Atoms(ch_syms, positions=ch_pos)
    ch.set_array("domain", np.full(len(ch), "chalcohalide", dtype="<U16"))
    unit = pv + ch
    # the relaxed junction's displacements, carried as an array and added after the planes are labelled
    moved, n_moved = apply_junction_relaxation(unit.get_chemical_symbols(), unit.positions, icell, reg)
    # rotate to the partner frame: x ∥ vec_a, y ∥ vec_c
    rot = np.array([vec_a / np.linalg.norm(vec_a), vec_c / np.linalg.norm(vec_c), [0, 0, 1.0]])
    unit.set_array("_junction_shift", (moved - unit.positions) @ rot.T)
    unit.positions = unit.positions @ rot.T
    la, lc = np.linalg.norm(vec_a), np.linalg.norm(vec_c)
    unit.set_cell([[la, 0, 0], [0, lc, 0], [0, 0, 1.0]])
    unit.pbc = [True, True, False]
    unit.wrap()
    slab = unit.repeat((m1, m2, 1))
    zmin, zmax = slab.positions[:, 2].min(), slab.positions[:, 2].max()
    slab.set_cell([[m1 * la, 0, 0], [0, m2 * lc, 0], [0, 0, zmax - zmin + 2 * vacuum]])
    slab.positions[:, 2] += vacuum - zmin
    syms_arr = np.array(slab.get_chemical_symbols())
    slab.set_array("role", _roles(syms_arr, slab.arrays["domain"], a_sym, b_sym))
    _label_layers(slab, n_layers)
    slab.positions += slab.arrays["_junction_shift"]
    slab.set_array("_junction_shift", None)
    _check_periodic(slab)
    if formal_charge(slab) != 0:
        raise StructureError(f"slab formal charge is {formal_charge(slab):+d}, expected 0")
    match = epitaxial_match(pentry.name, centry.name)
    slab.info.update(
        kind="slab", perovskite_phase=pentry.name, partner_phase=centry.name, halide=x_sym,
        inplane=[m1, m2], perovskite_cells=int(perovskite_cells), partner_cells=int(partner_cells),
        perovskite_layers=n_layers, strain_to=strain_to, inplane_spacing=float(a_in), charge=0,
        stacking_axis=2, vacuum=float(vacuum), mismatch_percent=float(match.mismatch_percent),
        registry=_registry_info(reg, evaluated, icell), counts=model_counts(slab),
        junction_relaxed_atoms=int(n_moved) * m1 * m2,
        # slab position = junction-frame position @ rotation.T + origin (modulo the in-plane cell)
        junction_frame={"rotation": rot.tolist(), "origin": [0.0, 0.0, float(vacuum - zmin)]},
    )
    return slab


def _check_periodic(atoms: Atoms) -> None:
    from ase.neighborlist import neighbor_list

    i, j, d = neighbor_list("ijd", atoms, MIN_DISTANCE)
    if len(d):
        k = int(np.argmin(d))
        raise StructureError(
            f"atoms {atoms[i[k]].symbol}{i[k]} and {atoms[j[k]].symbol}{j[k]} are {d[k]:.2f} Å apart (< {MIN_DISTANCE} Å)"
        )


def _drop_dangling(atoms: Atoms) -> tuple[Atoms, list[int]]:
    """Remove ions without any counter-ion within contact distance (cut artefacts)."""
    from hetflow.structures.charge import remove_isolated

    # two passes: removing an ion can strand another
    out, r1 = remove_isolated(atoms)
    out2, r2 = remove_isolated(out)
    return out2, r1 + r2


def formal_charge_by_domain(atoms: Atoms) -> dict[str, int]:
    """Formal charge of each domain (e)."""
    q = formal_charges(atoms)
    dom = atoms.arrays.get("domain", np.full(len(atoms), "all"))
    return {str(d): int(q[dom == d].sum()) for d in np.unique(dom)}
