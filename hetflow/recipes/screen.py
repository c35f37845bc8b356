"""``hetflow screen``: rank perovskite/partner interfaces and halide exchanges at xTB.

For every pair: the epitaxial match (paper mismatch + pymatgen ZSL), the NC heterostructure,
the S1-type exchange scan (both directions, N = 1…5), the interfacial strain of the relaxed
pristine model against the standalone NC, and the band-edge localisation of the pristine
model (dominant domain of HOMO and LUMO).  New pairs need no code: any registered or CIF
phases whose halide the exchange can replace.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from hetflow.errors import InputError
from hetflow.recipes.common import RecipeOptions
from hetflow.recipes.exchange_scan import ScanModel, run_s1
from hetflow.recipes.report import band_edge_rows
from hetflow.recipes.rows import ScreenRow
from hetflow.structures.interface import choose_registry, epitaxial_match
from hetflow.structures.phases import get_entry

_PAIR = re.compile(r"^\s*([^/:]+)/([^/:]+):([A-Z][a-z]?)\s*$")


@dataclass(frozen=True)
class ScreenPair:
    """perovskite/partner phases and the incoming halide (the outgoing one is the model's)."""

    perovskite: str
    partner: str
    target: str

    @classmethod
    def parse(cls, text: str) -> "ScreenPair":
        """``"CsPbCl3/Pb4S3Cl2:I"`` → Cl→I on CsPbCl3/Pb4S3Cl2."""
        m = _PAIR.match(text)
        if not m:
            raise InputError(f"bad pair {text!r}; write PEROVSKITE/PARTNER:HALIDE, e.g. CsPbBr3/Pb4S3Br2:I")
        p, c, t = m.groups()
        get_entry(p), get_entry(c)
        if t not in ("F", "Cl", "Br", "I"):
            raise InputError(f"bad pair {text!r}: {t!r} is not a halide")
        return cls(get_entry(p).name, get_entry(c).name, t)

    @property
    def label(self) -> str:
        return f"{self.perovskite}/{self.partner}:{self.target}"

    @property
    def slug(self) -> str:
        return re.sub(r"[^A-Za-z0-9]+", "-", self.label).strip("-")


DEFAULT_PAIRS = ("CsPbCl3/Pb4S3Cl2:I", "CsPbCl3/Pb4S3Cl2:Br", "CsPbBr3/Pb4S3Br2:I")


def screen(pairs: list[ScreenPair], opts: RecipeOptions, echo=print, size: tuple[int, int, int] | None = None,
           partner_cells: int | None = None, geometric_registry: bool = False) -> list[ScreenRow]:
    """Run the screen; returns typed rows (:class:`~hetflow.recipes.rows.ScreenRow`) ranked by
    |mismatch|, then by the mean bottom-first exchange energy of N = 1…5 (kcal/mol per halide,
    stepwise; only from converged relaxations — a pair whose relaxations did not converge is ranked
    last and shows no energies).

    ``size``/``partner_cells`` override the recipe's model; ``geometric_registry`` takes each
    pair's junction from the continuity score instead of GFN1-xTB probe energies."""
    rows: list[ScreenRow] = []
    for pair in pairs:
        match = epitaxial_match(pair.perovskite, pair.partner)
        reg = choose_registry(pair.perovskite, pair.partner)[0].to_dict() if geometric_registry else None
        model = ScanModel(pair.perovskite, pair.partner, pair.target, size=size, partner_cells=partner_cells, registry=reg)
        r = run_s1(model, opts, name=f"screen-{pair.slug}")
        echo(f"{pair.label}: {r.summary}")
        if not r.complete:
            rows.append(ScreenRow(pair=pair.label, status="incomplete", mismatch_pct=match.mismatch_percent))
            continue
        ser = r.extra["series"]
        src = r.extra["hs"].info["halide"]
        i1, b1 = ser["interface"][0], ser["bottom"][0]
        bottoms = [v for v in ser["bottom"] if v is not None]
        strain = {s.model: s.strain_pct for s in r.extra.get("strain_rows", [])}
        edges = ({e["label"]: e for e in band_edge_rows(r.extra["pristine_mo"], 0)}
                 if "pristine_mo" in r.extra else {})
        rows.append(ScreenRow(
            pair=pair.label, exchange=f"{src}→{pair.target}",
            status="done" if not r.extra.get("unconverged") else "not converged",
            mismatch_pct=match.mismatch_percent,
            zsl_area_A2=match.zsl[0]["match_area"] if match.zsl else None,
            de_n1_interface_kcal=i1, de_n1_bottom_kcal=b1,
            starts_from=None if i1 is None or b1 is None else ("bottom" if b1 < i1 else "interface"),
            mean_de_bottom_kcal=sum(bottoms) / 5 if len(bottoms) == 5 else None,
            strain_pct=strain.get("pristine"),
            homo_on=edges.get("HOMO", {}).get("dominant"), lumo_on=edges.get("LUMO", {}).get("dominant"),
        ))
    rows.sort(key=lambda x: (x.status != "done", abs(x.mismatch_pct), x.mean_de_bottom_kcal or 0))
    return [replace(row, rank=k) for k, row in enumerate(rows, 1)]
