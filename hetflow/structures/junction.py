"""The junction of a perovskite (100) face on a chalcohalide (010) face: the registry chosen among
candidates that continue the cation sub-network (by a scorer passed in, or geometrically), the
periodic probe slab a scorer evaluates, the junction relaxation (by a relaxer passed in) and the
periodic slab model (:func:`build_slab`).  Never runs a calculator: scorer and relaxer are functions
it is given.

Part of the heterostructure builders (:mod:`hetflow.structures.interface`, which re-exports the
public names).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from ase import Atoms

from hetflow import validate
from hetflow.errors import InputError, StructureError
from hetflow.structures.assembly import (
    MIN_PEROVSKITE_LAYERS, _as_registry, _check_common, _check_periodic, _label_layers, _partner_positions, _roles,
    interface_cell, model_counts)
from hetflow.structures.charge import formal_charge
from hetflow.structures.epitaxy import epitaxial_match, perovskite_spacing
from hetflow.structures.registry import (
    InterfaceCell, Registry, apply_junction_relaxation, candidate_registries, column_offsets, junction_displacements,
    snap_top_sheet)

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
