"""The system an exchange scan works on (:class:`ScanModel`): phases, halide exchange, model size
and junction, and the faithful model sizes of Tables S1–S3 (:data:`MODELS`)."""

from __future__ import annotations

from dataclasses import dataclass

from ase import Atoms

from hetflow.structures.interface import build_heterostructure
from hetflow.structures.nanocrystal import cut_nanocrystal
from hetflow.workflows.registry import choose_energy_registry, energy_relaxer

__all__ = ["MODELS", "ScanModel", "model_line"]

#: model sizes (perovskite octahedra n1 n2 n3, partner b/2 blocks) per table and mode.  n3 = 5
#: (11 perovskite layers) in every model: the N = 1…5 series from the interface (layers 0–4) and
#: from the bottom (10–6) never share a site, and model (d) keeps CsPbCl3 layers 1–5.  S3 needs a
#: 3 × 3 footprint for its four patterns to be whole planes of equal size (18 Cl each).
MODELS = {
    ("s1", True): ((2, 2, 5), 2),
    ("s1", False): ((3, 3, 5), 2),
    ("s2", True): ((2, 2, 5), 2),
    ("s2", False): ((3, 3, 5), 2),
    ("s3", True): ((3, 3, 5), 2),
    ("s3", False): ((3, 3, 5), 2),
}


@dataclass
class ScanModel:
    """The system a scan works on: phases, halide exchange, model size and junction."""

    perovskite: str = "CsPbCl3"
    partner: str = "Pb4S3Cl2"
    target: str = "I"
    size: tuple[int, int, int] | None = None
    partner_cells: int | None = None
    registry: dict | None = None  # None: chosen by GFN1-xTB energy (cached); or a Registry dict
    #: relax the junction (probe slab) and the chalcohalide's cut faces at GFN1-xTB (cached); None:
    #: when the registry is chosen by energy (a given registry is used as it is, relaxed or not)
    relax: bool | None = None

    def build(self, table: str, quick: bool) -> Atoms:
        size, cells = MODELS[(table, quick)]
        relax = self.registry is None if self.relax is None else self.relax
        reg = self.registry if self.registry is not None else self.energy_registry(relax)
        relaxer = energy_relaxer() if relax else None
        hs = build_heterostructure(self.perovskite, self.partner, size=self.size or size,
                                   partner_cells=self.partner_cells or cells, registry=reg, relaxer=relaxer)
        hs.info["name"] = "pristine"
        return hs

    def energy_registry(self, relax: bool = True) -> dict:
        """The junction of lowest GFN1-xTB probe energy, with ``relax`` relaxed in its probe slab
        (:mod:`hetflow.workflows.registry`, cached)."""
        reg, evaluated = choose_energy_registry(self.perovskite, self.partner, relax=relax)
        d = reg.to_dict()
        d["candidates"] = [r.to_dict() for r in evaluated]
        return d

    def reference_nc(self, hs: Atoms) -> Atoms:
        """The standalone NC: the heterostructure's perovskite domain, same cut, same vacancies."""
        return cut_nanocrystal(self.perovskite, tuple(hs.info["size"]), max_face_fraction=0.25)


def model_line(hs: Atoms) -> str:
    """One line on a built heterostructure for the reports: phases, size, atoms, how its junction was chosen."""
    c = hs.info.get("counts", {})
    lay = c.get("perovskite_layers", hs.info.get("perovskite_layers", 0) + 1)
    reg = hs.info.get("registry", {})
    return (f"{hs.info['perovskite_phase']}/{hs.info['partner_phase']} NC heterostructure, perovskite "
            f"{'×'.join(map(str, hs.info['size']))} ({lay} layers), {hs.info['partner_cells']} partner b/2 blocks, "
            f"{len(hs)} atoms ({hs.get_chemical_formula(mode='hill')}); junction chosen by "
            f"{reg.get('scorer', '?')}, "
            + (f"relaxed at {reg['relaxation'].get('method', '?')}" if isinstance(reg.get("relaxation"), dict)
               else "rigid")
            + ("; chalcohalide faces relaxed" if isinstance(hs.info.get("partner_faces"), dict) else ""))
