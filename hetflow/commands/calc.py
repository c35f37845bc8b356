"""``hetflow calc …``: single points, relaxations and CP2K inputs from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import click

from hetflow.atomic import write_atomic
from hetflow.calculators import mlip_models, registry
from hetflow.calculators.base import CalcSpec
from hetflow.calculators.cp2k import check_input_with_cp2k, command, cp2k_settings, write_input
from hetflow.calculators.mo_io import mo_reference, write_mo_npz
from hetflow.errors import InputError
from hetflow.workflows.mo_files import summary_fractions

_BACKENDS = registry.names(include_test_only=False)


def _read(path: str):
    from hetflow.structures.io import read_structure  # lazy: ase.io (0.3 s at CLI start)

    return read_structure(path)  # raises "structure file not found: …"


def _settings(pairs: tuple[str, ...]) -> dict:
    """``key=value`` pairs; values parsed as JSON when possible (numbers, lists, true/false)."""
    out = {}
    for p in pairs:
        if "=" not in p:
            raise InputError(f"--set expects key=value, got {p!r}")
        k, v = p.split("=", 1)
        try:
            out[k.strip()] = json.loads(v)
        except json.JSONDecodeError:
            out[k.strip()] = v
    return out


def _spec(backend, method, charge, multiplicity, periodic, task, settings, **kw):
    # method None: the backend's default (GFN1-xTB, PBE, CHGNet-0.3.0, 7net-0)
    return CalcSpec(backend=backend, method=method, charge=charge, multiplicity=multiplicity,
                    periodic=periodic, task=task, settings=_settings(settings), **kw)


def _common(f):
    f = click.option("--set", "settings", multiple=True, metavar="KEY=VALUE",
                     help="Backend setting, e.g. --set electronic_temperature=500 --set blas=bundled.")(f)
    f = click.option("--periodic/--no-periodic", default=None,
                     help="Periodic boundary conditions (default: as the file's pbc).")(f)
    f = click.option("--multiplicity", type=int, default=1, show_default=True, help="2S+1.")(f)
    f = click.option("--charge", type=int, default=0, show_default=True, help="Total charge, e.")(f)
    f = click.option("--method", default=None,
                     help="GFN1-xTB/gfn1, GFN2-xTB/gfn2, IPEA1-xTB; PBE (cp2k); default: the backend's own.")(f)
    f = click.option("--backend", type=click.Choice(_BACKENDS), default="tblite", show_default=True)(f)
    return f


def _report(res, json_out: str | None, structure_out: str | None) -> None:
    click.echo(f"energy       {res.energy:.6f} eV")
    if res.forces is not None:
        import numpy as np

        click.echo(f"max force    {float(np.linalg.norm(res.forces, axis=1).max()):.4f} eV/Å")
    counts = [f"{what} {n}" for what, n in (("SCF iterations", res.scf_steps), ("optimiser steps", res.opt_steps))
              if n is not None]
    click.echo(f"converged    {res.converged}" + (f"  ({', '.join(counts)})" if counts else ""))
    if res.force_calls is not None and res.opt_steps is not None:
        click.echo(f"force calls  {res.force_calls}")
    pre = res.extra.get("prerelax")
    if pre:
        click.echo(f"prerelax     {pre['method']}: {pre['force_calls']} force calls, final fmax "
                   f"{pre['fmax_reached']:.4f} eV/Å, converged {pre['converged']}, {pre['wall_time']:.1f} s")
    acc = res.extra.get("accelerate")
    if acc:
        click.echo(f"accelerate   {acc['potential']}: {acc['mlip_calls']} potential calls ({acc['mlip_s']:.1f} s), "
                   f"{acc['macro_steps']} guided steps ({acc['refused']} refused), target {acc['target_s']:.1f} s")
    for r in res.recovery:
        click.echo(f"recovery     {r}")
    if "blas" in res.versions:
        click.echo(f"BLAS         {res.versions['blas']}")
    if res.mo is not None:
        import numpy as np

        occ = res.mo.occupations > 1e-3
        if occ.any() and (~occ).any():
            gap = res.mo.eigenvalues[~occ].min() - res.mo.eigenvalues[occ].max()
            click.echo(f"HOMO–LUMO    {gap:.3f} eV")
    click.echo(f"wall time    {res.wall_time:.1f} s")
    if json_out:
        mo_ref, npz = None, None
        if res.mo is not None:
            mo_ref, npz = _write_mo(res, Path(json_out))
        data = {"energy_eV": res.energy, "converged": res.converged, "scf_steps": res.scf_steps,
                "opt_steps": res.opt_steps, "force_calls": res.force_calls,
                "prerelax": res.extra.get("prerelax"), "accelerate": res.extra.get("accelerate"),
                "recovery": res.recovery, "versions": res.versions,
                "spec": res.spec.to_dict(), "wall_time_s": res.wall_time,
                "forces_eV_per_A": res.forces.tolist() if res.forces is not None else None,
                "mo": mo_ref}
        write_atomic(json_out, json.dumps(data, indent=1))
        click.echo(f"wrote {json_out}" + (f" and {npz} (MO coefficients and overlap)" if npz else ""))
    if structure_out:
        from hetflow.structures.io import write_structure  # lazy: ase.io (0.3 s at CLI start)

        click.echo(f"wrote {write_structure(res.atoms, structure_out)}")


def _write_mo(res, json_path: Path) -> tuple[dict, Path]:
    """MO data beside the JSON file: ``<stem>.mo.npz`` (full C and S, float32) and the JSON
    reference (eigenvalues, occupations, domain fractions, the npz's name relative to the JSON
    file).  Read back with ``hetflow.calculators.mo_io.read_mo_npz``."""

    npz = write_mo_npz(res.mo, json_path.with_name(json_path.stem + ".mo.npz"))
    return mo_reference(res.mo, npz.name, summary_fractions(res.mo, res.atoms)), npz


def register(app: click.Group) -> None:
    @app.group("calc")
    def calc() -> None:
        """Run one calculation (xTB via tblite/xtb-python, CP2K PBE) or write CP2K inputs."""

    @calc.command("single-point")
    @click.argument("file")
    @_common
    @click.option("--mo", is_flag=True, help="Also compute MO data (HOMO–LUMO gap printed; with --json the orbital energies go "
                       "into the JSON and C, S into <stem>.mo.npz beside it).")
    @click.option("--workdir", default=None, help="Directory for CP2K files (default: temporary).")
    @click.option("--json", "json_out", default=None, help="Write the result as JSON here.")
    def single_point(file, backend, method, charge, multiplicity, periodic, settings, mo, workdir, json_out):
        """Energy (eV) and forces (eV/Å) of the structure in FILE (extxyz, xyz, cif, …)."""
        from hetflow.calculators.run import run_calculation  # lazy: ase.constraints loads scipy (0.4 s)

        atoms = _read(file)
        periodic = bool(atoms.pbc.any()) if periodic is None else periodic
        spec = _spec(backend, method, charge, multiplicity, periodic, "single_point", settings, want_mo=mo)
        _report(run_calculation(atoms, spec, workdir), json_out, None)

    @calc.command("relax")
    @click.argument("file")
    @_common
    @click.option("--fmax", type=float, default=0.05, show_default=True, help="Force threshold, eV/Å.")
    @click.option("--steps", type=int, default=300, show_default=True, help="Optimiser step budget.")
    @click.option("--optimizer", type=click.Choice(["FIRE", "LBFGS", "BFGS", "PreconLBFGS", "Sella"]),
                  default="FIRE", show_default=True, help="Sella runs in Cartesian coordinates.")
    @click.option("--prerelax", type=click.Choice(registry.prerelax_names()), default=None,
                  help="Relax with this machine-learned potential first, then with the target method.")
    @click.option("--accelerate", type=click.Choice(mlip_models.choices(), case_sensitive=False), default=None,
                  help="Guide the relaxation with this machine-learned potential, force-corrected to the target "
                       "method, which checks every step (--steps then bounds the target's force calls).")
    @click.option("--cell", is_flag=True, help="Relax the cell too (periodic only).")
    @click.option("--workdir", default=None, help="Checkpoint directory; rerun with it to resume.")
    @click.option("-o", "--output", default="relaxed.extxyz", show_default=True)
    @click.option("--json", "json_out", default=None)
    def relax_cmd(file, backend, method, charge, multiplicity, periodic, settings, fmax, steps, optimizer,
                  prerelax, accelerate, cell, workdir, output, json_out):
        """Relax the structure in FILE; writes the final structure (labels kept)."""
        from hetflow.calculators.relax import relax_cell  # lazy: ase.constraints loads scipy (0.4 s)
        from hetflow.calculators.run import run_calculation

        atoms = _read(file)
        periodic = bool(atoms.pbc.any()) if periodic is None else periodic
        spec = _spec(backend, method, charge, multiplicity, periodic, "relax", settings,
                     fmax=fmax, max_steps=steps, optimizer=optimizer, prerelax=prerelax, accelerate=accelerate)
        if cell and accelerate:
            raise InputError("--accelerate relaxes the ions only; drop --cell or --accelerate")
        res = relax_cell(atoms, spec, workdir) if cell else run_calculation(atoms, spec, workdir)
        _report(res, json_out, output)

    @calc.command("cp2k-input")
    @click.argument("file")
    @click.option("-o", "--output", "outdir", default="cp2k-run", show_default=True, help="Directory to write.")
    @click.option("--charge", type=int, default=0, show_default=True)
    @click.option("--multiplicity", type=int, default=1, show_default=True)
    @click.option("--relax", is_flag=True, help="GEO_OPT to 4.5e-4 Ha/Bohr instead of a single point.")
    @click.option("--set", "settings", multiple=True, metavar="KEY=VALUE",
                  help="CP2K setting, e.g. --set vacuum=8 or --set 'box=[40,40,40]'.")
    @click.option("--check/--no-check", default=False, help="Also run `cp2k.psmp --check` on it.")
    def cp2k_input(file, outdir, charge, multiplicity, relax, settings, check):
        """Write a validated CP2K input (paper preset) for FILE, e.g. to run on an HPC machine.

        Run it there with `mpirun -np N cp2k.psmp -i hetflow.inp -o hetflow.out`; the output
        is read back by hetflow.calculators.cp2k.parse_output.
        """
        atoms = _read(file)
        spec = _spec("cp2k", "PBE", charge, multiplicity, False, "relax" if relax else "single_point", settings)
        inp = write_input(atoms, spec, outdir)
        click.echo(f"wrote {inp} (validated with cp2k-input-tools)")
        if check:
            check_input_with_cp2k(inp, cp2k_settings(spec))
            click.echo("cp2k --check: input accepted")
        s = cp2k_settings(spec)
        try:
            click.echo("run with:    (cd " + str(Path(outdir)) + " && " + " ".join(command(s)) + ")")
        except Exception:  # noqa: BLE001 - CP2K not installed here: still print the generic line
            click.echo(f"run with:    (cd {outdir} && mpirun -np N cp2k.psmp -i hetflow.inp -o hetflow.out)")
