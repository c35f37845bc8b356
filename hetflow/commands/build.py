"""``hetflow build …``: nanocrystals, NC heterostructures and periodic slabs."""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np

from hetflow.analysis.pictures import render_model
from hetflow.errors import InputError
from hetflow.workflows.registry import energy_relaxer, energy_scorer


def summary_lines(atoms) -> list[str]:
    """One-screen summary of a built model: formula, atoms per domain, layers, charge, mismatch."""
    from hetflow.structures.charge import formal_charge  # lazy: ase.neighborlist → scipy, ≈ 0.25 s at CLI start

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
        if lay.min() < 0:
            pv = atoms.arrays.get("domain", np.array([])) == "perovskite"
            lines.append(f"layers       perovskite 0 … {lay[pv].max()} ({lay[pv].max() + 1} layers; 0 = terminal CsX "
                         f"monolayer at the interface, {lay[pv].max()} = the outer face), chalcohalide −1 … −{-lay.min()}")
        else:
            lines.append(f"layers       {lay.min()} … {lay.max()}")
    term = atoms.info.get("termination")
    if isinstance(term, dict) and "faces" in term:
        faces = ", ".join(f"{k} {r}/{n}" for k, (r, n) in term["faces"].items())
        lines.append(f"termination  CsX on every face; Cs vacancies (removed/sites) {faces}; rule: {term.get('rule', '')}")
    reg = atoms.info.get("registry")
    if isinstance(reg, dict) and "gap" in reg:
        lines.append(f"registry     shift {np.round(reg['shift_frac'], 3).tolist()} (a×c fractions), gap {reg['gap']:.2f} Å, "
                     f"chosen by {reg.get('scorer')}; top-sheet Pb ≤ {reg.get('column_offset_max', float('nan')):.2f} Å "
                     f"from a cation column; {len(reg.get('candidates', []))} candidates in info['registry']")
        rel = reg.get("relaxation")
        if isinstance(rel, dict):
            lines.append(f"junction     relaxed at {rel.get('method')} in the periodic probe slab "
                         f"({'converged' if rel.get('converged') else 'NOT converged'}, fmax {rel.get('fmax_rigid', float('nan')):.2f}"
                         f" → {rel.get('fmax', float('nan')):.3f} eV/Å, {rel.get('force_calls')} force calls); "
                         f"{atoms.info.get('junction_relaxed_atoms', 0)} atoms moved (≤ {rel.get('max_displacement', float('nan')):.2f} Å), "
                         f"top-sheet Pb {reg.get('column_offset_max_rigid', float('nan')):.2f} → "
                         f"{reg.get('column_offset_max', float('nan')):.2f} Å from a column")
        else:
            lines.append("junction     rigid (not relaxed)")
    faces = atoms.info.get("partner_faces")
    finite_hs = "domain" in atoms.arrays and (atoms.arrays["domain"] == "chalcohalide").any() and not atoms.pbc.any()
    if finite_hs and not isinstance(faces, dict):
        lines.append("faces        chalcohalide outer face and edges as cut (not relaxed)")
    elif isinstance(faces, dict):
        lines.append(f"faces        chalcohalide outer face and edges relaxed alone at {faces.get('method')} "
                     f"({'converged' if faces.get('converged') else 'NOT converged'}, {faces.get('free_atoms')} atoms, "
                     f"fmax {faces.get('fmax_rigid', float('nan')):.2f} → {faces.get('fmax', float('nan')):.3f} eV/Å, "
                     f"{faces.get('force_calls')} force calls)")
    if "mismatch_percent" in atoms.info:
        lines.append(f"mismatch     {atoms.info['mismatch_percent']:+.2f} %  "
                     "(a_perovskite − a_partner)/a_perovskite")
    if atoms.pbc.any():
        lines.append("cell         " + " ".join(f"{x:.3f}" for x in atoms.cell.lengths()) + " Å")
    return lines


def _write_outputs(atoms, output: str) -> list[Path]:
    from hetflow.structures.io import write_structure  # lazy: ase.io → scipy, ≈ 0.3 s at CLI start

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
    @click.option("--png", is_flag=True, help="Also write OUTPUT.png (side and top views).")
    @click.option("-o", "--output", default="nc.extxyz", show_default=True)
    def build_nc(phase: str, size: tuple[int, int, int], charge: int, png: bool, output: str) -> None:
        """A charge-neutral, CsX-terminated perovskite nanocrystal."""
        from hetflow.structures.nanocrystal import cut_nanocrystal  # lazy: ase.neighborlist → scipy, ≈ 0.25 s at CLI start

        atoms = cut_nanocrystal(phase, size, charge=charge)
        written = _write_outputs(atoms, output)
        if png:
            written.append(render_model(atoms, Path(output).with_suffix(".png")))
        for p in written:
            click.echo(f"wrote {p}")
        click.echo("\n".join(summary_lines(atoms)))

    @build.command("heterostructure")
    @click.option("--perovskite", default="CsPbCl3", show_default=True)
    @click.option("--partner", default="Pb4S3Cl2", show_default=True)
    @click.option("--size", nargs=3, type=int, default=(3, 3, 5), show_default=True,
                  help="Perovskite octahedra n1 n2 (in plane) n3 (thickness: 2·n3+1 layers).")
    @click.option("--partner-cells", type=int, default=2, show_default=True, help="Chalcohalide thickness in b/2 blocks.")
    @click.option("--strain-to", type=click.Choice(["perovskite", "partner", "mean"]), default="perovskite", show_default=True)
    @click.option("--registry", "registry_mode", type=click.Choice(["energy", "continuity"]), default="energy",
                  show_default=True,
                  help="Junction: lowest GFN1-xTB energy of a probe slab over the candidates (cached) or the "
                       "geometric cation-column continuity score.")
    @click.option("--rigid-junction", is_flag=True,
                  help="Keep the rigid junction (default with --registry energy: the junction is relaxed at "
                       "GFN1-xTB in its periodic probe slab, cached, and the atoms next to the interface take "
                       "its displacements).")
    @click.option("--slab", is_flag=True, help="Periodic slab instead of a finite NC (in-plane = --inplane).")
    @click.option("--inplane", nargs=2, type=int, default=(1, 1), show_default=True, help="Slab: partner a×c cells.")
    @click.option("--vacuum", type=float, default=None, help="Vacuum (Å): slab default 15; NC box padding.")
    @click.option("--png", is_flag=True, help="Also write OUTPUT.png: side view and view from the interface.")
    @click.option("--paper-scale", is_flag=True,
                  help="The model that fills the paper's 52 × 68 × 52 Å box (overrides --size/--partner-cells).")
    @click.option("-o", "--output", default="hs.extxyz", show_default=True)
    def build_hs(perovskite, partner, size, partner_cells, strain_to, registry_mode, rigid_junction, slab, inplane,
                 vacuum, png, paper_scale, output) -> None:
        """A perovskite/chalcohalide NC heterostructure (or periodic slab) with domain/layer/role labels."""
        # lazy: the builders load scipy (ase.neighborlist), ≈ 0.3 s at CLI start
        from hetflow.structures.interface import build_heterostructure, build_slab, epitaxial_match, paper_scale_model

        scorer = relaxer = None
        if registry_mode == "energy":
            def say(msg: str) -> None:
                click.echo(msg, err=True)

            scorer = energy_scorer(progress=say)
            relaxer = None if rigid_junction else energy_relaxer(progress=say)
        if paper_scale:
            atoms = paper_scale_model(perovskite, partner, scorer=scorer, relaxer=relaxer)
        elif slab:
            atoms = build_slab(perovskite, partner, inplane=inplane, perovskite_cells=size[2],
                               partner_cells=partner_cells, strain_to=strain_to,
                               vacuum=15.0 if vacuum is None else vacuum, scorer=scorer, relaxer=relaxer)
        else:
            atoms = build_heterostructure(perovskite, partner, size=size, partner_cells=partner_cells,
                                          strain_to=strain_to, vacuum=vacuum, scorer=scorer, relaxer=relaxer)
        written = _write_outputs(atoms, output)
        if png:
            written.append(render_model(atoms, Path(output).with_suffix(".png")))
        for p in written:
            click.echo(f"wrote {p}")
        click.echo("\n".join(summary_lines(atoms)))
        click.echo("epitaxy      " + epitaxial_match(perovskite, partner).summary())

    _ = InputError  # re-exported for command modules that extend `build`
