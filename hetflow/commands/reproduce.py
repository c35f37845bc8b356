"""``hetflow reproduce`` and ``hetflow screen``: the science recipes."""

from __future__ import annotations

import click

from hetflow.atomic import write_atomic
from hetflow.calculators import mlip_models


def _opts(level, method, quick, outdir, store, executor, workers, threads, reference, seed, fmax, max_steps,
          partition=None, account=None, walltime=None, optimizer="FIRE", wait=False, pack=None, prerelax=None,
          mlip="chgnet"):
    from hetflow.recipes.common import RecipeOptions

    ex_opts = {}
    if executor == "local" and pack:
        from hetflow.errors import InputError

        raise InputError("--pack needs a scheduler: --executor slurm|pbs|lsf")
    if executor == "local":
        if workers:
            ex_opts["workers"] = workers
        if threads:
            ex_opts["threads"] = threads
    else:
        ex_opts = {k: v for k, v in (("partition", partition), ("account", account), ("walltime", walltime),
                                     ("threads", threads)) if v}
        ex_opts["detached"] = not wait
        ex_opts["pack"] = pack or 1  # packing executor: also chains warm starts behind their parents
    return RecipeOptions(level=level, method=method, quick=quick, outdir=outdir, store=store, executor=executor,
                         executor_options=ex_opts, reference=reference, seed=seed, fmax=fmax, max_steps=max_steps,
                         optimizer=optimizer, prerelax=prerelax, mlip=mlip)


def _model(size, partner_cells, registry_by):
    """The S1–S3 model of the trial-model options (validated here, before anything is built)."""
    from hetflow.errors import InputError
    from hetflow.recipes.exchange_scan import ScanModel

    if size is not None and min(size) < 1:
        raise InputError(f"--size needs three integers ≥ 1, got {' '.join(map(str, size))}")
    if partner_cells is not None and partner_cells < 1:
        raise InputError(f"--partner-cells must be ≥ 1, got {partner_cells}")
    model = ScanModel(size=tuple(size) if size else None, partner_cells=partner_cells)
    if registry_by == "continuity":
        from hetflow.structures.interface import choose_registry

        reg, evaluated = choose_registry(model.perovskite, model.partner)
        model.registry = {**reg.to_dict(), "candidates": [r.to_dict() for r in evaluated]}
    return model


def _common(f):
    opts = [
        click.option("--level", type=click.Choice(["xtb", "pbe", "mlip"]), default="xtb", show_default=True,
                     help="xtb: tblite locally; pbe: CP2K paper preset (submit to a scheduler); mlip: a PBE-trained "
                          "machine-learned potential (--mlip), a screening level."),
        click.option("--mlip", type=click.Choice(mlip_models.choices(), case_sensitive=False),
                     default=mlip_models.DEFAULT_MLIP, show_default=True,
                     help="Potential of --level mlip (weights inside the wheels, no network): chgnet = "
                          "CHGNet-0.3.0, sevennet = 7net-0; 7net-mf-0 uses its PBE head."),
        click.option("--prerelax", type=click.Choice(["chgnet", "sevennet"]), default=None,
                     help="Relax every structure with this potential first; the table's energies stay the "
                          "target level's own."),
        click.option("--method", default="GFN1-xTB", show_default=True, help="xTB method for --level xtb."),
        click.option("--quick", is_flag=True, help="Smaller faithful models and fmax 0.1 eV/Å (still converged)."),
        click.option("-o", "--outdir", default="hetflow-reproduce", show_default=True, type=click.Path()),
        click.option("--store", default=None, help="Result store: SQLite path or postgresql:// URL (default OUTDIR/results.db)."),
        click.option("--executor", type=click.Choice(["local", "slurm", "pbs", "lsf"]), default="local", show_default=True),
        click.option("--workers", type=int, default=None, help="Local executor: worker processes."),
        click.option("--threads", type=int, default=None, help="Threads per worker / job."),
        click.option("--partition", default=None), click.option("--account", default=None),
        click.option("--walltime", default=None, help="Scheduler walltime, e.g. 04:00:00."),
        click.option("--pack", type=int, default=None,
                     help="With a scheduler: tasks per batch allocation (warm-started chains are submitted "
                          "behind their parents' jobs, so they proceed with the controller detached)."),
        click.option("--wait/--detach", default=False,
                     help="With a scheduler: stay attached until every job ended (default: submit what is "
                          "ready and return; run again to collect and submit the next steps)."),
        click.option("--reference", type=click.Choice(["molecule", "bulk"]), default="molecule", show_default=True,
                     help="PbX2 reference: relaxed molecules in vacuum or bulk per formula unit."),
        click.option("--seed", type=int, default=0, show_default=True),
        click.option("--fmax", type=float, default=None,
                     help="Relaxation and gate threshold, eV/Å (default 0.05; quick 0.1)."),
        click.option("--max-steps", type=int, default=None,
                     help="Safety net on optimiser steps per relaxation (default 3000); reaching it = not converged."),
        click.option("--optimizer", type=click.Choice(["FIRE", "LBFGS", "BFGS", "PreconLBFGS", "Sella"]), default="FIRE",
                     show_default=True, help="ASE optimiser of the relaxations."),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


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
    def reproduce_cmd(tables, level, method, quick, outdir, store, executor, workers, threads, partition, account,
                      walltime, pack, wait, reference, seed, fmax, max_steps, optimizer, prerelax, mlip,
                      size, partner_cells, registry_by):
        """Reproduce Tables S1–S3 and the ZIF study: TABLES = s1 s2 s3 zif | all.

        Writes OUTDIR/<table>.md, .csv and .png with hetflow's numbers beside the published ones,
        and checks the paper's qualitative conclusions.  Rerunning reuses every finished
        calculation from the store."""
        from hetflow.recipes.reproduce import expand, reproduce

        tabs = expand(tables)
        opts = _opts(level, method, quick, outdir, store, executor, workers, threads, reference, seed, fmax,
                     max_steps, partition, account, walltime, optimizer, wait, pack, prerelax, mlip)
        reproduce(tabs, opts, model=_model(size, partner_cells, registry_by), echo=click.echo)

    @app.command("free-energy")
    @_common
    @click.option("--samples", type=int, default=24, show_default=True,
                  help="Random configurations drawn per composition when there are too many to relax all.")
    @click.option("--exact-max", type=int, default=40, show_default=True,
                  help="Relax every symmetry-distinct configuration when there are at most this many.")
    @click.option("--temperature", "temperatures", type=float, multiple=True,
                  help="Temperature, K (repeatable; default 300; the first is the report's main one).")
    @click.option("--size", type=int, nargs=3, default=None, metavar="N1 N2 N3",
                  help="Trial model: perovskite octahedra (default: the S2 model, 2 2 5 quick / 3 3 5).")
    @click.option("--partner-cells", type=int, default=None, help="Trial model: Pb4S3Cl2 b/2 blocks (default 2).")
    @click.option("--registry", "registry_by", type=click.Choice(["energy", "continuity"]), default="energy",
                  show_default=True, help="Junction: GFN1-xTB probe energies (shipped) or the geometric score.")
    def free_energy_cmd(level, method, quick, outdir, store, executor, workers, threads, partition, account,
                        walltime, pack, wait, reference, seed, fmax, max_steps, optimizer, prerelax, mlip,
                        samples, exact_max, temperatures, size, partner_cells, registry_by):
        """Beyond the paper: configurational free energy of Cl→I exchange in Table S2's sites.

        Relaxes every symmetry-distinct configuration (or a random sample) of each composition
        and writes OUTDIR/free-energy.md, .csv and .png: ΔE min, Boltzmann ⟨ΔE⟩, ΔF(x) with its
        error and the ideal mixing term, and whether intermediate I/Cl ratios are stabilised."""
        from hetflow.recipes.free_energy import FreeEnergyOptions, run_free_energy
        from hetflow.recipes.free_energy_report import write_free_energy_report

        opts = _opts(level, method, quick, outdir, store, executor, workers, threads, reference, seed, fmax,
                     max_steps, partition, account, walltime, optimizer, wait, pack, prerelax, mlip)
        fo = FreeEnergyOptions(samples=samples, exact_max=exact_max, seed=seed,
                               temperatures=tuple(temperatures) or (300.0,))
        r = run_free_energy(_model(size, partner_cells, registry_by), opts, fo)
        click.echo(f"free-energy: {r.summary}")
        if not r.complete:
            click.echo("free-energy: calculations still running or failed — rerun the same command to collect "
                       f"(state: hetflow status --workdir {opts.outdir / 'work' / 'free-energy'})")
            return
        paths = write_free_energy_report(r, opts, fo)
        click.echo(paths[0].read_text())
        click.echo("wrote " + ", ".join(str(p) for p in paths))

    @app.command("screen")
    @click.option("--pair", "pairs", multiple=True,
                  help="PEROVSKITE/PARTNER:HALIDE (repeatable), e.g. CsPbBr3/Pb4S3Br2:I. Default: three pairs.")
    @click.option("--cif", "cifs", multiple=True, type=click.Path(), help="Register a CIF phase first (repeatable).")
    @_common
    def screen_cmd(pairs, cifs, level, method, quick, outdir, store, executor, workers, threads, partition, account,
                   walltime, pack, wait, reference, seed, fmax, max_steps, optimizer, prerelax, mlip):
        """Rank interfaces: epitaxial match, S1 exchange scan, interfacial strain, band-edge localisation.

        Writes OUTDIR/screen.md and screen.csv."""
        from pathlib import Path

        from hetflow.analysis.energetics import markdown_table
        from hetflow.structures.phases import register_cif
        from hetflow.recipes.report import write_csv
        from hetflow.recipes.screen import DEFAULT_PAIRS, ScreenPair, screen

        for c in cifs:
            register_cif(c)
        parsed = [ScreenPair.parse(p) for p in (pairs or DEFAULT_PAIRS)]
        opts = _opts(level, method, quick, outdir, store, executor, workers, threads, reference, seed, fmax,
                     max_steps, partition, account, walltime, optimizer, wait, pack, prerelax, mlip)
        rows = screen(parsed, opts, echo=click.echo)
        out = Path(outdir)
        out.mkdir(parents=True, exist_ok=True)
        md = "# hetflow screen\n\n" + markdown_table(rows) + "\n"
        write_atomic(out / "screen.md", md)
        write_csv(rows, out / "screen.csv")
        click.echo(md)
        click.echo(f"wrote {out / 'screen.md'}, {out / 'screen.csv'}")
