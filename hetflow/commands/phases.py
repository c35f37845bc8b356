"""``hetflow phases``: list the phase registry (optionally adding CIFs first)."""

from __future__ import annotations

import click
from rich.console import Console
from rich.table import Table

from hetflow.structures.phases import list_phases, register_cif


def register(app: click.Group) -> None:
    @app.command("phases")
    @click.option("--cif", "cifs", multiple=True, type=click.Path(), help="Register a CIF file first (repeatable).")
    @click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
    def phases(cifs: tuple[str, ...], as_json: bool) -> None:
        """List registered phases: formula, space group, lattice (Å, °) and citation
    (details and sources: docs/PHASES.md)."""
        for c in cifs:
            register_cif(c)
        rows = []
        for p in list_phases():
            a = p.atoms()
            if p.kind == "bulk":
                lat = a.cell.cellpar()
                lattice = "a={:.4f} b={:.4f} c={:.4f} α={:.1f} β={:.1f} γ={:.1f}".format(*lat)
            else:
                lattice = "molecule"
            rows.append({"name": p.name, "formula": a.get_chemical_formula(mode="hill"), "spacegroup": p.spacegroup,
                         "lattice": lattice, "citation": p.citation + (f" [derived from {p.derived_from}]" if p.derived_from else "")})
        if as_json:
            import json

            click.echo(json.dumps(rows, indent=1))
            return
        t = Table(title="hetflow phase registry", caption="positions, settings and sources: docs/PHASES.md")
        for col in ("name", "formula", "spacegroup", "lattice", "citation"):
            t.add_column(col, overflow="fold")
        for r in rows:
            t.add_row(*(r[c] for c in ("name", "formula", "spacegroup", "lattice", "citation")))
        Console(width=200).print(t)
