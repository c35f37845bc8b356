"""``hetflow build …``: nanocrystals, NC heterostructures and periodic slabs."""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np

from hetflow.errors import InputError


def summary_lines(atoms) -> list[str]:
    """One-screen summary of a built model: formula, atoms per domain, layers, charge, mismatch."""
    from hetflow.structures.charge import formal_charge

    lines = [f"formula      {atoms.get_chemical_formula(mode='hill')}  ({len(atoms)} atoms)",
             f"charge       {formal_charge(atoms):+d} (formal: Cs+1 Pb+2 X-1 S-2)"]
    if "domain" in atoms.arrays:
        dom = atoms.arrays["domain"]
        parts = []
        for d in np.unique(dom):
            sub = atoms[dom == d]
            parts.append(f"{d}: {len(sub)} ({sub.get_chemical_formula(mode='hill')})")
        lines.append("domains      " + "; ".join(parts))
    if "layer" in atoms.arrays:
        lay = atoms.arrays["layer"]
        lines.append(f"layers       {lay.min()} … {lay.max()}  (0 = shared interfacial layer)"
                     if lay.min() < 0 else f"layers       {lay.min()} … {lay.max()}")
    if "mismatch_percent" in atoms.info:
        lines.append(f"mismatch     {atoms.info['mismatch_percent']:+.2f} %  "
                     "(a_perovskite − a_partner)/a_perovskite")
    if atoms.pbc.any():
        lines.append("cell         " + " ".join(f"{x:.3f}" for x in atoms.cell.lengths()) + " Å")
    return lines


def _write_outputs(atoms, output: str) -> list[Path]:
    from hetflow.structures.io import write_structure

    out = Path(output)
    written = [write_structure(atoms, out)]
    if atoms.pbc.any() and out.suffix.lower() != ".cif":
        written.append(write_structure(atoms, out.with_suffix(".cif")))
    return written


def register(app: click.Group) -> None:
    @app.group("build")
    def build() -> None:
        """Build structure models (extxyz output keeps the per-atom labels)."""

    @build.command("nc")
    @click.option("--phase", default="CsPbCl3", show_default=True, help="Registered perovskite phase.")
    @click.option("--size", nargs=3, type=int, default=(3, 3, 3), show_default=True, help="Octahedra n1 n2 n3.")
    @click.option("--charge", type=int, default=0, show_default=True)
    @click.option("-o", "--output", default="nc.extxyz", show_default=True)
    def build_nc(phase: str, size: tuple[int, int, int], charge: int, output: str) -> None:
        """A charge-neutral, CsX-terminated perovskite nanocrystal."""
        from hetflow.structures.nanocrystal import cut_nanocrystal

        atoms = cut_nanocrystal(phase, size, charge=charge)
        for p in _write_outputs(atoms, output):
            click.echo(f"wrote {p}")
        click.echo("\n".join(summary_lines(atoms)))

    @build.command("heterostructure")
    @click.option("--perovskite", default="CsPbCl3", show_default=True)
    @click.option("--partner", default="Pb4S3Cl2", show_default=True)
    @click.option("--size", nargs=3, type=int, default=(3, 3, 3), show_default=True,
                  help="Perovskite octahedra n1 n2 (in plane) n3 (thickness: 2·n3+1 layers).")
    @click.option("--partner-cells", type=int, default=2, show_default=True, help="Chalcohalide thickness in b/2 blocks.")
    @click.option("--strain-to", type=click.Choice(["perovskite", "partner", "mean"]), default="perovskite", show_default=True)
    @click.option("--slab", is_flag=True, help="Periodic slab instead of a finite NC (in-plane = --inplane).")
    @click.option("--inplane", nargs=2, type=int, default=(1, 1), show_default=True, help="Slab: partner a×c cells.")
    @click.option("--vacuum", type=float, default=None, help="Vacuum (Å): slab default 15; NC box padding.")
    @click.option("-o", "--output", default="hs.extxyz", show_default=True)
    def build_hs(perovskite, partner, size, partner_cells, strain_to, slab, inplane, vacuum, output) -> None:
        """A perovskite/chalcohalide NC heterostructure (or periodic slab) with domain/layer/role labels."""
        from hetflow.structures.interface import build_heterostructure, build_slab, epitaxial_match

        if slab:
            atoms = build_slab(perovskite, partner, inplane=inplane, perovskite_cells=size[2],
                               partner_cells=partner_cells, strain_to=strain_to,
                               vacuum=15.0 if vacuum is None else vacuum)
        else:
            atoms = build_heterostructure(perovskite, partner, size=size, partner_cells=partner_cells,
                                          strain_to=strain_to, vacuum=vacuum)
        for p in _write_outputs(atoms, output):
            click.echo(f"wrote {p}")
        click.echo("\n".join(summary_lines(atoms)))
        click.echo("epitaxy      " + epitaxial_match(perovskite, partner).summary())

    _ = InputError  # re-exported for command modules that extend `build`
