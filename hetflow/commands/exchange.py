"""``hetflow build exchange …`` and ``hetflow build zif …`` (subcommands of ``build``)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import click

from hetflow import validate
from hetflow.atomic import write_atomic
from hetflow.errors import InputError
from hetflow.structures.zif import Reaction, pb_coordination, perovskite_fragment, zif_fragment
from hetflow.structures.zif_products import ligand_exchange_products
from hetflow.workflows.progress import count_progress

_INDEX_KEYS = ("name", "pattern", "parent", "exchange", "N", "start", "step", "distribution", "fraction",
               "fraction_actual", "n_exchanged_step", "n_exchanged_total", "multiplicity", "file")


def _floats(text: str | None, what: str) -> list[float] | None:
    if text is None:
        return None
    try:
        return [float(x) for x in text.replace(",", " ").split()]
    except ValueError:
        raise InputError(f"{what} must be numbers separated by commas, got {text!r}") from None


def _ints(text: str | None, what: str) -> list[int] | None:
    """Bounded integers (a layer index beyond any model is refused, not passed to numpy)."""
    return None if text is None else validate.int_list(text, what)


def _write_index(rows: list[dict], outdir: Path) -> list[Path]:
    js = write_atomic(outdir / "index.json", json.dumps(rows, indent=1, default=str))
    fh = io.StringIO(newline="")
    w = csv.DictWriter(fh, fieldnames=list(_INDEX_KEYS), extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow({k: r.get(k, "") for k in _INDEX_KEYS})
    return [js, write_atomic(outdir / "index.csv", fh.getvalue())]


def _row(atoms, path: Path) -> dict:
    row = {k: atoms.info.get(k) for k in _INDEX_KEYS if k in atoms.info}
    row["file"] = path.name
    row["formula"] = atoms.get_chemical_formula(mode="hill")
    return row


def _prepare_outdir(out: Path, force: bool) -> list[str]:
    """Refuse a non-empty ``out`` unless ``force``; with ``force`` remove the files a previous
    ``build exchange`` wrote there (those its index.json lists, and the index itself), so the
    new index matches the folder.  Returns the names of other files left in place."""
    if out.exists() and not out.is_dir():
        raise InputError(f"output folder {out} is a file")
    entries = sorted(p.name for p in out.iterdir()) if out.is_dir() else []
    if not entries:
        return []
    if not force:
        raise InputError(f"output folder {out} is not empty ({len(entries)} entries); choose another "
                         f"-o/--outdir or add --force to replace the previous run's files")
    owned = {"index.json", "index.csv"}
    try:
        rows = json.loads((out / "index.json").read_text())
        owned |= {Path(str(r["file"])).name for r in rows if isinstance(r, dict) and r.get("file")}
    except (OSError, ValueError, TypeError):
        pass
    left = []
    for name in entries:
        p = out / name
        if name in owned and p.is_file():
            p.unlink()
        else:
            left.append(name)
    return left


def register(app: click.Group) -> None:
    if "build" not in app.commands:  # pragma: no cover - guarded by COMMAND_MODULES order
        raise RuntimeError("hetflow.commands.exchange must be registered after 'build'")
    build = app.commands["build"]

    @click.command("exchange")
    @click.argument("structure", type=click.Path(dir_okay=False))
    @click.option("--pattern", "patterns", multiple=True, default=("s1",), show_default=True,
                  help="s1 | s2 | s3 | custom (repeatable).")
    @click.option("--target", default="I", show_default=True, help="Incoming halide.")
    @click.option("--source", default=None, help="Outgoing halide [default: the structure's info['halide']].")
    @click.option("--n-max", type=int, default=5, show_default=True, help="s1: layers N = 1 … n-max.")
    @click.option("--start", type=click.Choice(["interface", "bottom", "both"]), default="both", show_default=True,
                  help="s1: exchange order.")
    @click.option("--fractions", default="0.2,0.4,0.6,0.8,1.0", show_default=True,
                  help="s2: I/Cl steps in the first two chalcohalide halide layers.")
    @click.option("--fraction", type=float, default=None,
                  help="s3: fraction of the remaining perovskite halides [0.2]; custom: of the selection [1].")
    @click.option("--s3-patterns", default="random,csx_perp,csx_par,pbx2_perp", show_default=True)
    @click.option("--layers", default=None, help="custom: layer indices, e.g. '0,1' or '-2'.")
    @click.option("--domain", default=None, help="custom: perovskite | chalcohalide.")
    @click.option("--k", type=int, default=None, help="custom: enumerate symmetry-distinct k-site exchanges.")
    @click.option("--max-configs", type=int, default=50, show_default=True, help="custom --k: at most this many.")
    @click.option("--seed", type=int, default=0, show_default=True)
    @click.option("-o", "--outdir", default="exchange", show_default=True)
    @click.option("--force", is_flag=True, help="Write into a non-empty output folder, removing the files a "
                  "previous build exchange listed in its index.json.")
    def build_exchange(structure, patterns, target, source, n_max, start, fractions, fraction, s3_patterns,
                       layers, domain, k, max_configs, seed, outdir, force) -> None:
        """Exchange configurations of a labelled heterostructure: one extxyz per configuration
        plus index.json / index.csv.  The output folder must be empty (or new) unless --force."""
        from hetflow.structures import exchange as ex  # lazy: ase.neighborlist → scipy (≈ 0.25 s at CLI start)
        from hetflow.structures.io import read_structure, write_structure  # lazy: ase.io → scipy, ≈ 0.3 s at CLI start

        out = Path(outdir)
        if out.exists() and not out.is_dir():
            raise InputError(f"output folder {out} is a file")
        if out.is_dir() and any(out.iterdir()) and not force:
            _prepare_outdir(out, False)  # raises the one-line error before any work is done
        atoms = read_structure(structure)
        for p in patterns:
            if p not in ex.PATTERNS:
                raise InputError(f"unknown exchange pattern {p!r}; choose from {', '.join(ex.PATTERNS)}")
        confs = []
        for p in patterns:
            if p == "s1":
                confs += ex.configurations(atoms, "s1", start=None if start == "both" else start, n_max=n_max,
                                           target=target, source=source)
            elif p == "s2":
                confs += ex.interfacial_series(atoms, fractions=_floats(fractions, "--fractions"), seed=seed,
                                               target=target, source=source)
            elif p == "s3":
                confs += ex.alloy_patterns(atoms, fraction=0.2 if fraction is None else fraction,
                                           patterns=[x.strip() for x in s3_patterns.split(",") if x.strip()],
                                           seed=seed, target=target, source=source)
            elif k is not None:
                with count_progress(f"symmetry-distinct k={k}") as progress:
                    confs += ex.configurations(atoms, "custom", layers=_ints(layers, "--layers"), domain=domain,
                                               seed=seed, target=target, source=source, k=k,
                                               max_configs=max_configs, progress=progress)
            else:
                confs += ex.configurations(atoms, "custom", layers=_ints(layers, "--layers"), domain=domain,
                                           fraction=1.0 if fraction is None else fraction, seed=seed,
                                           target=target, source=source, k=k, max_configs=max_configs)
        left = _prepare_outdir(out, force)
        out.mkdir(parents=True, exist_ok=True)
        pristine = atoms.copy()
        pristine.info = dict(atoms.info, name=atoms.info.get("name", "pristine"))
        rows = []
        seen = set()
        for a in [pristine, *confs]:
            name = a.info["name"]
            if name in seen:
                continue
            seen.add(name)
            path = write_structure(a, out / f"{name}.extxyz")
            rows.append(_row(a, path))
        for p in _write_index(rows, out):
            click.echo(f"wrote {p}")
        click.echo(f"{len(rows)} structures ({len(rows) - 1} exchange configurations) in {out}/")
        if left:
            click.echo(f"note: {len(left)} entries in {out}/ were not written by build exchange and were left: "
                       + ", ".join(left[:5]) + (" …" if len(left) > 5 else ""))
        for r in rows:
            click.echo(f"  {r['name']:<22} parent {str(r.get('parent', '-')):<20} "
                       f"+{r.get('n_exchanged_step', 0):<4} total {r.get('n_exchanged_total', 0)}")

    @click.command("zif")
    @click.option("--phase", type=click.Choice(["alpha", "delta", "gamma"]), default="alpha", show_default=True)
    @click.option("--n-units", type=int, default=8, show_default=True, help="CsPbI3 formula units (8–9).")
    @click.option("--n-zn", type=int, default=1, show_default=True, help="Zn centres of the ZIF fragment (1 or 2).")
    @click.option("--zif-charge", type=int, default=0, show_default=True,
                  help="Formal charge of the ZIF fragment (0: neutral; a charged one has no counter-ion).")
    @click.option("--n-bim", type=int, default=0, show_default=True, help="Benzimidazolate linkers.")
    @click.option("--n-exchange", "n_exchange", type=int, multiple=True, default=(1,), show_default=True,
                  help="Ligand exchanges per product (repeatable, e.g. --n-exchange 1 --n-exchange 2).")
    @click.option("--products", type=int, default=3, show_default=True, help="Best-scored products to write.")
    @click.option("-o", "--outdir", default="zif", show_default=True)
    def build_zif(phase, n_units, n_zn, zif_charge, n_bim, n_exchange, products, outdir) -> None:
        """CsPbI3 fragment, ZIF-62 fragment and the best-scored ligand-exchange products (extxyz + index.json)."""
        from hetflow.structures.io import write_structure  # lazy: ase.io → scipy, ≈ 0.3 s at CLI start

        pv = perovskite_fragment(phase, n_units)
        zf = zif_fragment(n_zn, zif_charge, n_bim)
        prods = ligand_exchange_products(pv, zf, max_products=products, n_exchange=tuple(n_exchange))
        rx = Reaction("zif", [pv, zf], prods[:1])
        stoich = rx.check()
        out = Path(outdir)
        out.mkdir(parents=True, exist_ok=True)
        rows = []
        for name, a, role in [(f"perovskite-{phase}", pv, "reactant"), ("zif", zf, "reactant")] + \
                [(f"product-{phase}-{p.info['candidate']}", p, "product") for p in prods]:
            path = write_structure(a, out / f"{name}.extxyz")
            rows.append({"name": name, "role": role, "file": path.name, "formula": a.get_chemical_formula(mode="hill"),
                         "score": a.info.get("score", {}).get("score") if role == "product" else None,
                         "exchanges": a.info.get("n_exchange"), "charge": a.info.get("charge", 0)})
        write_atomic(out / "index.json", json.dumps({"reaction": "E(product) - E(perovskite) - E(zif)",
                                                     "stoichiometry": stoich, "charges": rx.charge_note,
                                                     "structures": rows}, indent=1))
        click.echo(f"wrote {len(rows)} structures and index.json to {out}/")
        click.echo(f"  Pb coordination of the fragment: {' '.join(map(str, sorted(pb_coordination(pv).values())))}"
                   f"  ({rx.charge_note})")
        for r in rows:
            sc = "" if r["score"] is None else f"  score {r['score']:.3f}  exchanges {r['exchanges']}"
            click.echo(f"  {r['role']:<9} {r['name']:<34} {r['formula']}{sc}")

    build.add_command(build_exchange)
    build.add_command(build_zif)
