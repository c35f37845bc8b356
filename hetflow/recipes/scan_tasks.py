"""The tasks every exchange scan shares (S1–S3 and the free-energy recipe): the pristine model, its
standalone-NC reference, the PbX2 references, warm-started chains of configurations, the matching
strain references, and the reservoir :class:`~hetflow.analysis.energetics.Reference` from the results."""

from __future__ import annotations

from ase import Atoms

from hetflow.recipes.bulk import converged_bulk_reference
from hetflow.recipes.common import RecipeOptions, add_references, make_spec, reference_from_results
from hetflow.recipes.scan_model import ScanModel
from hetflow.structures.reference_nc import exchanged_reference_sites, matching_reference_nc
from hetflow.workflows.graph import Workflow

__all__ = ["base_tasks", "has_mo", "config_task", "chain", "strain_references", "ref_names", "reference", "done"]


def base_tasks(wf: Workflow, hs: Atoms, model: ScanModel, opts: RecipeOptions, want_mo: bool = False) -> dict[str, str]:
    """pristine relaxation, standalone-NC reference relaxation and PbX2 references."""
    relax = make_spec(opts, "relax")
    names = {"pristine": wf.add_calc("pristine", hs, relax),
             "nc": wf.add_calc("nc-reference", model.reference_nc(hs), relax)}
    if want_mo and has_mo(opts):
        names["pristine-mo"] = wf.add_calc("pristine-mo", None, make_spec(opts, want_mo=True), start_from="pristine")
    refs = add_references(wf, opts, (hs.info["halide"], model.target))
    names.update({f"ref-{h}": n for h, n in refs.items()})
    return names


def has_mo(opts: RecipeOptions) -> bool:
    """Whether the level gives molecular orbitals (the machine-learned potentials do not)."""
    return opts.level != "mlip"


def config_task(wf: Workflow, cfg: Atoms, opts: RecipeOptions, parent_task: str) -> str:
    """A configuration, relaxed from its parent's relaxed geometry (warm start, every mode; with
    ``opts.warm_start=False`` from the relaxed pristine model)."""
    start = parent_task if opts.warm_start else "pristine"
    return wf.add_calc(cfg.info["name"], cfg, make_spec(opts, "relax", warm=True), start_from=start)


def chain(wf: Workflow, configs: list[Atoms], opts: RecipeOptions, first_parent: str = "pristine") -> list[str]:
    """``configs`` as one warm-started chain from ``first_parent``; returns their task names."""
    names = []
    parent = first_parent
    for cfg in configs:
        parent = config_task(wf, cfg, opts, parent)
        names.append(parent)
    return names


def strain_references(wf: Workflow, hs: Atoms, model: ScanModel, opts: RecipeOptions,
                       configs: list[Atoms]) -> dict[str, str]:
    """The strain reference of each configuration: the standalone NC with the same perovskite
    halide sites exchanged (:func:`~hetflow.structures.reference_nc.matching_reference_nc`),
    relaxed at the same level from the relaxed all-Cl NC; configurations that exchange the same
    perovskite sites share one task, and the pristine model keeps ``nc-reference``.  Returns
    {configuration task: reference task}."""
    nc = model.reference_nc(hs)
    by_sites: dict[tuple[int, ...], str] = {(): "nc-reference"}
    out = {"pristine": "nc-reference"}
    for cfg in configs:
        sites = tuple(int(i) for i in exchanged_reference_sites(cfg, nc))
        if sites not in by_sites:
            ref = matching_reference_nc(cfg, nc)
            by_sites[sites] = wf.add_calc(ref.info["name"], ref, make_spec(opts, "relax", warm=True),
                                          start_from="nc-reference")
        out[cfg.info["name"]] = by_sites[sites]
    return out


def ref_names(hs: Atoms, model: ScanModel, opts: RecipeOptions) -> list[str]:
    """Tasks of the PbX2 references in the scan's own workflow (molecules; bulk is separate)."""
    if opts.reference == "bulk":
        return []
    return [f"ref-Pb{h}2-{opts.reference}" for h in (hs.info["halide"], model.target)]


def reference(results, hs: Atoms, model: ScanModel, opts: RecipeOptions):
    """(Reference or None while unfinished, whether it converged).  Molecules: the relaxed PbX2
    molecules of this workflow.  Bulk: relaxed (ions + cell), Γ-point-converged supercells of
    bulk PbX2 (:func:`hetflow.recipes.bulk.converged_bulk_reference`)."""
    halides = (hs.info["halide"], model.target)
    if opts.reference == "bulk":
        ref, out = converged_bulk_reference(opts, halides)
        return ref, ref is not None and all(v is not None and v.converged for v in out.values())
    return reference_from_results(results, {h: f"ref-Pb{h}2-{opts.reference}" for h in halides}, opts), True


def done(results: dict, needed: list[str]) -> bool:
    """Whether every task of ``needed`` has a stored result."""
    return all(n in results for n in needed)
