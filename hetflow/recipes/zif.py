"""CsPbI3 in agZIF-62 (Li et al., Nat. Commun. 2023): converged bulk α/γ/δ and searched
ligand-exchange interfaces.

Stages, run as rounds of one content-keyed workflow (:mod:`.staged`), all at ``opts.method``
(GFN1-xTB by default, tblite):

1. **bulk** (:mod:`.bulk`): α (from a seeded symmetry-lowering start), α kept cubic, γ and δ
   CsPbI3 — ions and cell relaxed, Γ-point supercells grown until E per CsPbI3 changes by
   < 1 kJ/mol;
2. **fragments**: the Cs_n Pb_n I_3n surface fragments of α and δ (every Pb as highly
   coordinated as the phase allows) and the neutral ZIF fragment, relaxed in vacuum;
3. **screen**: interface candidates built from the *relaxed* fragments over ligand exchanges
   (k = 1, 2), docking sites and orientations
   (:func:`~hetflow.structures.zif_products.interface_candidates`); the best-scored
   ``n_screen`` per k and phase get a single point (the cheap pre-screen);
4. **relax**: the ``n_relax`` lowest screened candidates per phase are relaxed; the reported
   reaction energy of a phase is the lowest converged one,
   ΔE = E(product) − E(CsPbI3 fragment) − E(ZIF fragment).

The check of Li et al.'s conclusion: the interface favours α enough to overcome the bulk
preference for δ when ΔE(α) − ΔE(δ) < −n·[E(α) − E(δ)] (n formula units per fragment) —
assessed only on converged numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ase import Atoms

from hetflow.analysis.energetics import markdown_table, zif_reaction_energy
from hetflow.analysis.plotting import plot_bars
from hetflow.analysis.units import from_ev
from hetflow.analysis.zif import geometry_rows, render_product
from hetflow.errors import HetflowError, InputError
from hetflow.recipes.bulk import (
    BulkConvergence,
    BulkSettings,
    bulk_mode,
    bulk_rows,
    bulk_stages,
    convergence_markdown,
)
from hetflow.recipes.common import RecipeOptions, make_spec
from hetflow.recipes.result import ScanResult, finish_gate
from hetflow.recipes.staged import TaskTuple, run_staged
from hetflow.recipes.rows import ZifCandidateRow, ZifRow, display_rows
from hetflow.structures.zif import PHASE_NAMES, Reaction, pb_coordination, perovskite_fragment, zif_fragment
from hetflow.structures.zif_products import interface_candidates

PHASES = ("alpha", "delta")

#: Li et al.'s xTB numbers, kJ/mol
PUBLISHED = {"alpha_minus_delta": 18.0, "reaction_alpha": -1224.0, "reaction_delta": -1033.0}


@dataclass(frozen=True)
class ZifModel:
    """The cluster models and the search.

    n_units: CsPbI3 formula units per fragment (8–9).  n_zn, zif_charge, n_bim: the ZIF
    fragment (neutral by default; a charged one is used as is, without counter-ion, and the
    report says so).  n_exchange: numbers of ligand exchanges searched.  n_screen: best-scored
    candidates per (phase, k) given a single point.  n_relax: lowest screened candidates per
    phase relaxed.  bulk: the bulk convergence settings (None: defaults / quick)."""

    n_units: int = 8
    n_zn: int = 1
    zif_charge: int = 0
    n_bim: int = 0
    n_exchange: tuple[int, ...] = (1, 2)
    n_screen: int = 6
    n_relax: int = 3
    bulk: BulkSettings | None = None
    cubic_reference: bool = False

    def __post_init__(self) -> None:
        if not 2 <= self.n_units <= 27:
            raise InputError(f"n_units must be 2 … 27, got {self.n_units}")
        if self.n_screen < 1 or self.n_relax < 1:
            raise InputError("n_screen and n_relax must be ≥ 1")

    @classmethod
    def quick(cls) -> "ZifModel":
        return cls(n_screen=2, n_relax=1, bulk=BulkSettings.quick(), cubic_reference=False)


def _with_positions(template: Atoms, stored: Any) -> Atoms:
    """The template's labels and info with the stored (relaxed) positions."""
    out = template.copy()
    out.positions = stored.atoms.positions
    return out


class FragmentsAndProducts:
    """Stage: relax the fragments, screen candidates built from them, relax the best."""

    def __init__(self, opts: RecipeOptions, model: ZifModel):
        self.opts, self.model = opts, model
        self.frags = {ph: perovskite_fragment(ph, model.n_units, seed=opts.seed) for ph in PHASES}
        self.zif = zif_fragment(model.n_zn, model.zif_charge, model.n_bim)
        self.relax = make_spec(opts, "relax")
        self._cands: dict[str, list[Atoms]] = {}
        self.errors: dict[str, str] = {}

    def spec(self, charge: int, task: str = "relax"):
        return (self.relax if task == "relax" else make_spec(self.opts)).replace(charge=int(charge))

    def relaxed(self, results, name: str) -> Atoms | None:
        tmpl = self.zif if name == "zif" else self.frags[name]
        r = results.get(f"frag-{name}")
        return None if r is None else _with_positions(tmpl, r)

    def candidates(self, results, ph: str) -> list[Atoms] | None:
        if ph in self._cands:
            return self._cands[ph]
        pv, zf = self.relaxed(results, ph), self.relaxed(results, "zif")
        if pv is None or zf is None:
            return None

        try:
            allc = interface_candidates(pv, zf, n_exchange=self.model.n_exchange)
        except HetflowError as exc:
            self.errors[ph] = str(exc)
            self._cands[ph] = []
            return []
        chosen = []
        for k in self.model.n_exchange:
            chosen += [c for c in allc if c.info["n_exchange"] == k][: self.model.n_screen]
        self._cands[ph] = chosen
        return chosen

    def screen_name(self, ph: str, c: Atoms) -> str:
        return f"screen-{ph}-{c.info['candidate']}"

    def relax_name(self, ph: str, c: Atoms) -> str:
        return f"product-{ph}-{c.info['candidate']}"

    def to_relax(self, results, ph: str) -> list[Atoms] | None:
        cands = self.candidates(results, ph)
        if cands is None or any(self.screen_name(ph, c) not in results for c in cands):
            return None
        order = sorted(cands, key=lambda c: (results[self.screen_name(ph, c)].energy, c.info["candidate"]))
        return order[: self.model.n_relax]

    def tasks(self, results) -> list[TaskTuple]:
        out: list[TaskTuple] = [(f"frag-{ph}", f, self.spec(0)) for ph, f in self.frags.items()]
        out.append(("frag-zif", self.zif, self.spec(self.zif.info["charge"])))
        q = self.zif.info["charge"]
        for ph in PHASES:
            cands = self.candidates(results, ph)
            if not cands:
                continue
            out += [(self.screen_name(ph, c), c, self.spec(q, "single_point")) for c in cands]
            best = self.to_relax(results, ph)
            if best:
                out += [(self.relax_name(ph, c), c, self.spec(q)) for c in best]
        return out


def zif_stages(opts: RecipeOptions, model: ZifModel) -> tuple[dict[str, BulkConvergence], FragmentsAndProducts]:
    keys = ["alpha"] + (["alpha-cubic"] if model.cubic_reference else []) + ["gamma", "delta"]
    return bulk_stages(keys, opts, model.bulk), FragmentsAndProducts(opts, model)


def _kj(ev: float | None) -> float | None:
    return None if ev is None else float(from_ev(ev, "kJ/mol"))


def run_zif(opts: RecipeOptions | None = None, model: ZifModel | None = None, n_units: int | None = None) -> ScanResult:
    """Run the study; rows = hetflow beside Li et al. (kJ/mol); extra: bulk results, the
    candidate list, geometry of the best products, pictures and Markdown sections."""
    opts = opts or RecipeOptions()
    model = model or (ZifModel.quick() if opts.quick else ZifModel())
    if n_units is not None:
        model = ZifModel(**{**model.__dict__, "n_units": n_units})
    bulk, fp = zif_stages(opts, model)
    summary, res, complete = run_staged("zif", [*bulk.values(), fp], opts)
    if not complete:
        return ScanResult("zif", [], {}, res, summary, {"failures": summary.failures}, complete=False)
    bres = {k: st.result(res) for k, st in bulk.items()}
    n = model.n_units
    # ---- reactions
    cand_rows, best, reactions = [], {}, {}
    for ph in PHASES:
        pv, zf = fp.relaxed(res, ph), fp.relaxed(res, "zif")
        e_pv, e_zf = res[f"frag-{ph}"], res["frag-zif"]
        relaxed_names = {fp.relax_name(ph, c) for c in (fp.to_relax(res, ph) or [])}
        for c in fp.candidates(res, ph) or []:
            sname, rname = fp.screen_name(ph, c), fp.relax_name(ph, c)
            de_screen = zif_reaction_energy(res[sname], e_pv, e_zf)
            relaxed, conv = None, None
            if rname in relaxed_names:
                de = zif_reaction_energy(res[rname], e_pv, e_zf)
                relaxed, conv = _kj(de), "yes" if res[rname].converged else "**no**"
                rx = Reaction(f"{PHASE_NAMES[ph]}+ZIF {c.info['candidate']}", [pv, zf],
                              [_with_positions(c, res[rname])])
                rx.check()
                reactions[rname] = rx
                key = (not res[rname].converged, de)
                if ph not in best or key < best[ph][0]:
                    best[ph] = (key, rname, de)
            row = ZifCandidateRow(phase=ph, candidate=c.info["candidate"], exchanges=c.info["n_exchange"],
                                  dock_pb=c.info["dock_pb"], geometric_score=c.info["score"]["score"],
                                  screen_de_kj=_kj(de_screen), relaxed_de_kj=relaxed, converged=conv)
            cand_rows.append(row)
    # ---- bulk
    def per_fu(k):
        r = bres.get(k)
        return None if r is None else r.energy_per_fu

    a, d, g = per_fu("alpha"), per_fu("delta"), per_fu("gamma")
    bulk_conv = all(bres.get(k) is not None and bres[k].converged for k in ("alpha", "delta"))
    d_ad = None if a is None or d is None else a - d
    d_gd = None if g is None or d is None else g - d
    d_cd = None if per_fu("alpha-cubic") is None or d is None else per_fu("alpha-cubic") - d
    de_a = best.get("alpha", (None, None, None))[2]
    de_d = best.get("delta", (None, None, None))[2]
    prod_conv = all(ph in best and not best[ph][0][0] for ph in PHASES)
    dd = None if de_a is None or de_d is None else de_a - de_d
    def conv_word(ok: bool) -> str:
        return "yes" if ok else "**no**"

    gamma_ok = bres.get("gamma") is not None and bres["gamma"].converged and bulk_conv
    cubic_word = "–" if d_cd is None else conv_word(bres["alpha-cubic"].converged and bres["delta"].converged)
    quantities = [
        ("E(α) − E(δ) per CsPbI3, bulk (α relaxed from a perturbed start)", _kj(d_ad),
         PUBLISHED["alpha_minus_delta"], conv_word(bulk_conv)),
        ("E(α, kept cubic) − E(δ) per CsPbI3, bulk", _kj(d_cd), None, cubic_word),
        ("E(γ) − E(δ) per CsPbI3, bulk", _kj(d_gd), None, conv_word(gamma_ok)),
        ("ΔE reaction α fragment + ZIF (lowest product)", _kj(de_a), PUBLISHED["reaction_alpha"],
         conv_word("alpha" in best and not best["alpha"][0][0])),
        ("ΔE reaction δ fragment + ZIF (lowest product)", _kj(de_d), PUBLISHED["reaction_delta"],
         conv_word("delta" in best and not best["delta"][0][0])),
        ("ΔE(α) − ΔE(δ)", _kj(dd), PUBLISHED["reaction_alpha"] - PUBLISHED["reaction_delta"], conv_word(prod_conv)),
        (f"n × [E(α) − E(δ)], n = {n}", None if d_ad is None else _kj(n * d_ad), n * PUBLISHED["alpha_minus_delta"],
         conv_word(bulk_conv)),
    ]
    # the gate: a number stands beside a published one only when what it comes from converged
    rows = [ZifRow(q, v, p, c) if c in ("yes", "–") or v is None else
            ZifRow(q, None, p, "**no** — not shown (see the bulk / candidate tables)")
            for q, v, p, c in quantities]
    decided = bulk_conv and prod_conv and d_ad is not None and dd is not None
    checks: dict[str, bool | None] = {
        "δ-CsPbI3 more stable than α in bulk": (d_ad > 0) if (bulk_conv and d_ad is not None) else None,
        "ligand exchange exothermic for α": (de_a < 0) if de_a is not None and prod_conv else None,
        "ligand exchange exothermic for δ": (de_d < 0) if de_d is not None and prod_conv else None,
        f"the interface favours α enough to overcome the bulk preference (ΔE(α) − ΔE(δ) < −{n}·[E(α) − E(δ)])":
            bool(-dd > n * d_ad) if decided else None,
    }
    # ---- geometry, pictures
    best_atoms = {ph: res[best[ph][1]].atoms for ph in PHASES if ph in best}
    plots = [render_product(at, opts.outdir / f"zif-product-{ph}.png",
                            title=f"{PHASE_NAMES[ph]} fragment + ZIF: {best[ph][1]} "
                                  f"(ΔE = {_kj(best[ph][2]):.0f} kJ/mol, {opts.method})")
             for ph, at in best_atoms.items()]

    rel = [r for r in cand_rows if r.relaxed_de_kj is not None]
    if rel:
        plots.append(plot_bars([f"{r.phase} {r.candidate}" for r in rel], [r.relaxed_de_kj for r in rel],
                               opts.outdir / "zif.png", unit="kJ/mol", ylabel="ΔE reaction",
                               title="CsPbI3 fragment + ZIF-62 fragment: relaxed ligand-exchange products"))
    alpha = bres.get("alpha")
    cubic_note = ""
    if alpha is not None:
        L, t = alpha.lattice, alpha.tilts or {}
        cubic_note = (f"α relaxed from a seeded perturbation (rms {alpha and bulk['alpha'].s.perturb_rms} Å, strain "
                      f"{bulk['alpha'].s.perturb_strain}, seed {opts.seed}) in {alpha.relax_supercell}: pseudo-cubic "
                      f"a, b, c = {L['a']:.3f}, {L['b']:.3f}, {L['c']:.3f} Å, angles {L['alpha']:.2f}/{L['beta']:.2f}/"
                      f"{L['gamma']:.2f}°, mean/max octahedral tilt {t.get('mean_tilt', float('nan')):.1f}/"
                      f"{t.get('max_tilt', float('nan')):.1f}° (Pb–I–Pb {t.get('min_angle', float('nan')):.1f}° at the "
                      f"smallest), space group {_spacegroups(L['spacegroup'])} — "
                      + ("**stays cubic**" if alpha.stays_cubic() else "**does not stay cubic** (tilts)"))
    sections = [
        "## Bulk phases (periodic, Γ-point supercells, ions and cell relaxed)\n\n"
        + markdown_table(display_rows(bulk_rows(bres)), digits=3)
        + ("\n\n" + cubic_note if cubic_note else ""),
        "## Convergence tables (energy per formula unit)\n\n" + convergence_markdown(bres),
        "## Fragments\n\n" + markdown_table(_fragment_rows(fp, res), digits=3),
        "## Interface candidates (screen: single point of the rigid candidate; relaxed: "
        f"{opts.method} relaxation)\n\n" + markdown_table(display_rows(cand_rows), digits=1),
    ]
    if best_atoms:
        sections.append("## Geometry of the best products (beside EXAFS)\n\n"
                        + markdown_table(geometry_rows(best_atoms), digits=3)
                        + "\n\n" + "\n".join(f"![{ph}]({p.name})" for ph, p in zip(best_atoms, plots)))

    extra = {
        "mode": (f"bulk: {bulk_mode(bulk['alpha'].s, opts.method)}; clusters: fragments and products relaxed in vacuum "
                 f"(fmax {opts.relax_fmax} eV/Å, ≤ {opts.relax_steps} steps, {opts.optimizer})"),
        "model": (f"Cs{n}Pb{n}I{3 * n} surface fragments cut from α and δ; ZIF fragment Zn{model.n_zn} "
                  f"(charge {model.zif_charge:+d}, {model.n_bim} bIm); exchanges k = {list(model.n_exchange)}; "
                  f"{model.n_screen} screened per (phase, k), {model.n_relax} relaxed per phase"),
        "reference": "ΔE = E(product) − E(CsPbI3 fragment) − E(ZIF fragment), all relaxed in vacuum",
        "charges": (next(iter(reactions.values())).charge_note if reactions else ""),
        "bulk": bres, "best": {ph: best[ph][1] for ph in best}, "reactions": reactions,
        "candidates": cand_rows, "plots": plots, "markdown_sections": sections,
        "alpha_minus_delta_eV_per_unit": d_ad, "interface_difference_eV": dd,
        "errors": dict(fp.errors),
    }
    names = [n_ for n_ in res if n_.startswith(("bulk-", "frag-", "product-")) and "-sp-" not in n_]
    return finish_gate(ScanResult("zif", rows, checks, res, summary, extra), names)


def _spacegroups(sg: dict | str) -> str:
    """"P-1 (2) at 0.1 Å, P1 (1) at 0.01 Å" from {tolerance: symbol} (or a symbol as is)."""
    if not isinstance(sg, dict):
        return str(sg)
    return ", ".join(f"{v} at {k} Å" for k, v in sorted(sg.items(), key=lambda kv: -float(kv[0])))


def _fragment_rows(fp: FragmentsAndProducts, res) -> list[dict[str, Any]]:
    rows = []
    for ph, f in fp.frags.items():
        relaxed = fp.relaxed(res, ph)
        cn0 = sorted(pb_coordination(f).values())
        cn1 = sorted(pb_coordination(relaxed).values())
        rows.append({"fragment": f"{ph}: {f.get_chemical_formula(mode='hill')}", "charge": 0,
                     "Pb coordination (cut)": " ".join(map(str, cn0)),
                     "Pb coordination (relaxed)": " ".join(map(str, cn1)),
                     "E (eV)": res[f"frag-{ph}"].energy, "converged": res[f"frag-{ph}"].converged})
    z = fp.zif
    rows.append({"fragment": f"ZIF: {z.get_chemical_formula(mode='hill')}", "charge": z.info["charge"],
                 "Pb coordination (cut)": "–", "Pb coordination (relaxed)": "–",
                 "E (eV)": res["frag-zif"].energy, "converged": res["frag-zif"].converged})
    return rows
