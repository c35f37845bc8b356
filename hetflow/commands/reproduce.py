"""``hetflow reproduce`` and ``hetflow screen``: the science recipes."""

from __future__ import annotations

from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any, Callable

import click

from hetflow.analysis.energetics import markdown_table
from hetflow.atomic import write_atomic
from hetflow.errors import InputError
from hetflow.recipes.options import ExecutorOptions, FreeEnergyOptions, RecipeOptions
from hetflow.recipes.rows import display_rows
from hetflow.structures.phases import register_cif

# The recipes themselves (hetflow.recipes.reproduce, .free_energy, .screen, .scan_model …) are imported
# inside the commands: they load the engine and the structures layer (ase.io, scipy) and matplotlib,
# ≈ 0.8 s that every `hetflow` call would pay at start-up.  Their options (hetflow.recipes.options)
# are light and imported here.


def _click_options(*classes: type) -> list[Callable]:
    """The click options of the dataclass fields of ``classes`` that carry ``cli`` metadata
    (:func:`hetflow.recipes.options.option`): name, choices, type, default and help written once,
    in the dataclass."""
    out = []
    for cls in classes:
        for f in fields(cls):
            cli = f.metadata.get("cli")
            if cli is None:
                continue
            decls = cli.get("flags") or (f"--{f.name.replace('_', '-')}",)
            default = None if f.default is MISSING else f.default
            kw: dict[str, Any] = {"help": f.metadata.get("help")}
            if "choices" in cli:
                kw["type"] = click.Choice(list(cli["choices"]), case_sensitive=cli.get("case_sensitive", True))
            elif cli.get("type") == "path":
                kw["type"] = click.Path()
            elif "type" in cli:
                kw["type"] = cli["type"]
            if cli.get("multiple"):
                kw["multiple"] = True  # not given: the dataclass default
            elif isinstance(default, bool) and "/" not in decls[0]:
                kw["is_flag"] = True
            else:
                kw["default"] = str(default) if isinstance(default, Path) else default
                kw["show_default"] = default is not None and not isinstance(default, bool)
            out.append(click.option(*decls, **kw))
    return out


def _values(cls: type, given: dict[str, Any]) -> dict[str, Any]:
    """The command-line fields of ``cls`` (those with ``cli`` metadata) among the command's
    parameters; a repeatable option that was not given is left out (the dataclass default applies)."""
    out = {}
    for f in fields(cls):
        cli = f.metadata.get("cli")
        if cli is not None and f.name in given and not (cli.get("multiple") and not given[f.name]):
            out[f.name] = given[f.name]
    return out


def _opts(given: dict[str, Any]) -> RecipeOptions:
    """The :class:`RecipeOptions` of the shared options (executor options for the chosen executor)."""
    ex = ExecutorOptions(**_values(ExecutorOptions, given))
    return RecipeOptions(**_values(RecipeOptions, given), executor_options=ex.for_executor(given["executor"]))


def _model(size, partner_cells, registry_by):
    """The S1–S3 model of the trial-model options (validated here, before anything is built)."""
    from hetflow.recipes.scan_model import ScanModel  # lazy: the structures layer (scipy), see above
    from hetflow.structures.interface import choose_registry

    if size is not None and min(size) < 1:
        raise InputError(f"--size needs three integers ≥ 1, got {' '.join(map(str, size))}")
    if partner_cells is not None and partner_cells < 1:
        raise InputError(f"--partner-cells must be ≥ 1, got {partner_cells}")
    model = ScanModel(size=tuple(size) if size else None, partner_cells=partner_cells)
    if registry_by == "continuity":
        reg, evaluated = choose_registry(model.perovskite, model.partner)
        model.registry = {**reg.to_dict(), "candidates": [r.to_dict() for r in evaluated]}
    return model


def _decorate(*options: Callable) -> Callable:
    def deco(f):
        for o in reversed(options):
            f = o(f)
        return f

    return deco


#: the options every recipe command shares: the fields of RecipeOptions and ExecutorOptions
_common = _decorate(*_click_options(RecipeOptions, ExecutorOptions))
#: the free-energy recipe's own options: the fields of FreeEnergyOptions
_free_energy = _decorate(*_click_options(FreeEnergyOptions))


def register(app: click.Group) -> None:
    @app.command("reproduce")
    @click.argument("tables", nargs=-1, required=True)
    @_common
    @click.option("--size", type=int, nargs=3, default=None, metavar="N1 N2 N3",
                  help="S1–S3 trial model: perovskite octahedra (default: the recipe's faithful model, "
                       "2 2 5 quick / 3 3 5). Tables on another model are not the paper's.")
    @click.option("--partner-cells", type=int, default=None,
                  help="S1–S3 trial model: Pb4S3Cl2 b/2 blocks (default 2).")
    @click.option("--registry", "registry_by", type=click.Choice(["energy", "continuity"]), default="energy",
                  show_default=True,
                  help="Junction: lowest GFN1-xTB probe energy (cached) or the geometric continuity score "
                       "(no calculation).")
    def reproduce_cmd(tables, size, partner_cells, registry_by, **common):
        """Reproduce Tables S1–S3 and the ZIF study: TABLES = s1 s2 s3 zif | all.

        Writes OUTDIR/<table>.md, .csv and .png with hetflow's numbers beside the published ones,
        and checks the paper's qualitative conclusions.  Rerunning reuses every finished
        calculation from the store."""
        from hetflow.recipes.reproduce import expand, reproduce  # lazy: see the top of the module

        tabs = expand(tables)
        opts = _opts(common)
        reproduce(tabs, opts, model=_model(size, partner_cells, registry_by), echo=click.echo)

    @app.command("free-energy")
    @_common
    @_free_energy
    @click.option("--size", type=int, nargs=3, default=None, metavar="N1 N2 N3",
                  help="Trial model: perovskite octahedra (default: the S2 model, 2 2 5 quick / 3 3 5).")
    @click.option("--partner-cells", type=int, default=None, help="Trial model: Pb4S3Cl2 b/2 blocks (default 2).")
    @click.option("--registry", "registry_by", type=click.Choice(["energy", "continuity"]), default="energy",
                  show_default=True, help="Junction: GFN1-xTB probe energies (shipped) or the geometric score.")
    def free_energy_cmd(size, partner_cells, registry_by, **common):
        """Beyond the paper: configurational free energy of Cl→I exchange.

        --sites s2 (default): Table S2's interfacial chalcohalide layers; relaxes every
        symmetry-distinct configuration (or a random sample) of each composition and writes
        OUTDIR/free-energy.md, .csv and .png: ΔE min, Boltzmann ⟨ΔE⟩, ΔF(x) with its error and the
        ideal mixing term, and whether intermediate I/Cl ratios are stabilised.
        --sites s3: Table S3's ordered ≈ 20 % patterns against --samples relaxed random alloys;
        writes OUTDIR/s3-distribution.md, .csv, -random.csv and .png."""
        from hetflow.recipes import free_energy_report as fer  # lazy: see the top of the module

        opts = _opts(common)
        fo = FreeEnergyOptions(**_values(FreeEnergyOptions, common), seed=opts.seed)
        if fo.sites == "s3":
            from hetflow.recipes.free_energy_s3 import WORKFLOW, run_s3_distribution

            name, r = WORKFLOW, run_s3_distribution(_model(size, partner_cells, registry_by), opts, fo)
        else:
            from hetflow.recipes.free_energy import run_free_energy

            name, r = "free-energy", run_free_energy(_model(size, partner_cells, registry_by), opts, fo)
        click.echo(f"{name}: {r.summary}")
        if not r.complete:
            click.echo(f"{name}: calculations still running or failed — rerun the same command to collect "
                       f"(state: hetflow status --workdir {opts.outdir / 'work' / name})")
            return
        write = fer.write_s3_distribution_report if fo.sites == "s3" else fer.write_free_energy_report
        paths = write(r, opts, fo)
        click.echo(paths[0].read_text())
        click.echo("wrote " + ", ".join(str(p) for p in paths))

    @app.command("screen")
    @click.option("--pair", "pairs", multiple=True,
                  help="PEROVSKITE/PARTNER:HALIDE (repeatable), e.g. CsPbBr3/Pb4S3Br2:I. Default: three pairs.")
    @click.option("--cif", "cifs", multiple=True, type=click.Path(), help="Register a CIF phase first (repeatable).")
    @_common
    def screen_cmd(pairs, cifs, **common):
        """Rank interfaces: epitaxial match, S1 exchange scan, interfacial strain, band-edge localisation.

        Writes OUTDIR/screen.md and screen.csv."""
        from hetflow.recipes.report import write_csv  # lazy: see the top of the module
        from hetflow.recipes.screen import DEFAULT_PAIRS, ScreenPair, screen

        for c in cifs:
            register_cif(c)
        parsed = [ScreenPair.parse(p) for p in (pairs or DEFAULT_PAIRS)]
        opts = _opts(common)
        rows = screen(parsed, opts, echo=click.echo)
        out = Path(opts.outdir)
        out.mkdir(parents=True, exist_ok=True)
        md = "# hetflow screen\n\n" + markdown_table(display_rows(rows)) + "\n"
        write_atomic(out / "screen.md", md)
        write_csv(rows, out / "screen.csv")
        click.echo(md)
        click.echo(f"wrote {out / 'screen.md'}, {out / 'screen.csv'}")
