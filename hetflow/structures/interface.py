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

The builders in modules by idea: :mod:`~hetflow.structures.epitaxy` (matching),
:mod:`~hetflow.structures.assembly` (junction cell, labels, checks),
:mod:`~hetflow.structures.junction` (registry choice, probe slab, junction relaxation, periodic slab);
this module builds the finite NC heterostructure and re-exports the public names of the others.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms

from hetflow.errors import InputError, StructureError
from hetflow.structures.assembly import (  # re-exported: the assembly parts
    MIN_DISTANCE, MIN_PEROVSKITE_LAYERS, _check_common, _check_model, _drop_dangling, _label_layers, _partner_positions,
    _roles, formal_charge_by_domain, interface_cell, model_counts)
from hetflow.structures.charge import balance_charge
from hetflow.structures.epitaxy import (  # re-exported: the matching
    EpitaxialMatch, epitaxial_match, lattice_mismatch, partner_spacing, perovskite_spacing)
from hetflow.structures.junction import (  # re-exported: the junction and the periodic slab
    CONTINUITY_CS_PB, CONTINUITY_OFFSET, JUNCTION_FREE_LAYERS, JUNCTION_FREE_PARTNER_PLANES, PROBE_INPLANE,
    PROBE_PARTNER_CELLS, PROBE_PEROVSKITE_CELLS, RegistryScorer, Relaxer, _registry_info, _resolve_registry,
    build_slab, choose_registry, continues_cation_network, junction_probe, junction_record, probe_model,
    relax_junction)
from hetflow.structures.nanocrystal import cut_nanocrystal
from hetflow.structures.registry import Registry, apply_junction_relaxation, snap_top_sheet

__all__ = [
    "EpitaxialMatch",
    "epitaxial_match",
    "lattice_mismatch",
    "perovskite_spacing",
    "partner_spacing",
    "build_heterostructure",
    "build_slab",
    "MIN_DISTANCE",
    # also importable from here (defined in epitaxy, assembly, junction)
    "MIN_PEROVSKITE_LAYERS", "interface_cell", "model_counts", "formal_charge_by_domain",
    "CONTINUITY_CS_PB", "CONTINUITY_OFFSET", "JUNCTION_FREE_LAYERS", "JUNCTION_FREE_PARTNER_PLANES",
    "PROBE_INPLANE", "PROBE_PARTNER_CELLS", "PROBE_PEROVSKITE_CELLS", "RegistryScorer", "Relaxer",
    "choose_registry", "continues_cation_network", "junction_probe", "junction_record", "probe_model",
    "relax_junction", "PAPER_SCALE", "PARTNER_FACES_FIXED_PLANES", "partner_faces_model", "paper_scale_model",
]

#: the model that fills the paper's non-periodic 52 × 68 × 52 Å box (Livakas et al.) with vacuum:
#: a 5 × 5 × 5 perovskite (11 layers, 28 Å) on three b/2 chalcohalide blocks, stacked along the
#: 68 Å edge — see :func:`paper_scale_model`
PAPER_SCALE = {"size": (5, 5, 5), "partner_cells": 3, "box": (52.0, 52.0, 68.0)}


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
