"""Assembly parts of the heterostructure builders: the junction cell, the chalcohalide block on the
strained in-plane lattice, labels (``domain``, ``layer``, ``role``), the checks every built model
passes, and counts.

Part of the heterostructure builders (:mod:`hetflow.structures.interface`, which re-exports the
public names).
"""

from __future__ import annotations

import math

import numpy as np
from ase import Atoms
from ase.neighborlist import neighbor_list

from hetflow import validate
from hetflow.errors import InputError, StructureError
from hetflow.structures.charge import FORMAL_CHARGES, HALIDES, formal_charge, formal_charges, remove_isolated
from hetflow.structures.epitaxy import perovskite_spacing
from hetflow.structures.labels import plane_index
from hetflow.structures.nanocrystal import _check_size, perovskite_species
from hetflow.structures.phases import get_entry
from hetflow.structures.registry import InterfaceCell, Registry

#: no two atoms of a built model may be closer than this (Å)
MIN_DISTANCE = 1.8
#: minimum number of perovskite atomic layers (so that 5 can be exchanged)
MIN_PEROVSKITE_LAYERS = 6


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


def _check_periodic(atoms: Atoms) -> None:
    i, j, d = neighbor_list("ijd", atoms, MIN_DISTANCE)
    if len(d):
        k = int(np.argmin(d))
        raise StructureError(
            f"atoms {atoms[i[k]].symbol}{i[k]} and {atoms[j[k]].symbol}{j[k]} are {d[k]:.2f} Å apart (< {MIN_DISTANCE} Å)"
        )


def _drop_dangling(atoms: Atoms) -> tuple[Atoms, list[int]]:
    """Remove ions without any counter-ion within contact distance (cut artefacts)."""
    # two passes: removing an ion can strand another
    out, r1 = remove_isolated(atoms)
    out2, r2 = remove_isolated(out)
    return out2, r1 + r2


def formal_charge_by_domain(atoms: Atoms) -> dict[str, int]:
    """Formal charge of each domain (e)."""
    q = formal_charges(atoms)
    dom = atoms.arrays.get("domain", np.full(len(atoms), "all"))
    return {str(d): int(q[dom == d].sum()) for d in np.unique(dom)}


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
