"""The recipes' options, each written once: its default, its help text and how the command line
spells it (:func:`option`).  :mod:`hetflow.commands.reproduce` builds the click options of
``hetflow reproduce | free-energy | screen`` from these dataclass fields.

A light module on purpose (no engine, no structures): the CLI imports it at start-up.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hetflow.calculators import mlip_models
from hetflow.calculators.base import OPTIMIZERS
from hetflow.errors import InputError

__all__ = ["option", "RecipeOptions", "ExecutorOptions", "FreeEnergyOptions", "LEVELS", "REFERENCES", "EXECUTORS",
           "MLIPS", "PRERELAX", "FULL_FMAX", "QUICK_FMAX", "MAX_STEPS", "EXACT_MAX", "DEFAULT_TEMPERATURE"]

LEVELS = ("xtb", "pbe", "mlip")
REFERENCES = ("molecule", "bulk")
EXECUTORS = ("local", "slurm", "pbs", "lsf")

#: machine-learned potentials usable as --level mlip (any model of the catalogue) and as --prerelax
MLIPS = mlip_models.choices()
PRERELAX = mlip_models.MLIP_BACKENDS


#: relaxation / gate thresholds (eV/Å) and the optimiser safety net (steps): the defaults of
#: :attr:`RecipeOptions.fmax` / ``max_steps``, written here once (help texts and docs are built from them)
FULL_FMAX = 0.05
QUICK_FMAX = 0.1
MAX_STEPS = 3000


def option(default: Any = None, help: str | None = None, *, default_factory: Any = None, **cli: Any) -> Any:
    """A recipe option: a dataclass field with its default, its help text and how the command line
    spells it, written once.  ``cli`` (read by :mod:`hetflow.commands.reproduce`, which builds the
    click options from the fields): ``flags`` (option declarations; default ``--field-name``),
    ``choices`` (+ ``case_sensitive``), ``type`` (a Python type: int, float, ``"path"``),
    ``multiple``.  A field without ``cli`` (``option(..., cli=False)`` or a plain field) is not on
    the command line.  A bool field is a flag; a default that is neither None nor a bool is shown in
    ``--help``."""
    meta = {"help": help, "cli": cli if cli.pop("cli", True) else None}
    if default_factory is not None:
        return field(default_factory=default_factory, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class RecipeOptions:
    """How a recipe runs (each field's help text is in its ``option(...)``; the command line's
    ``hetflow reproduce | free-energy | screen`` options are built from these fields).

    level: "xtb" (tblite, local by default), "pbe" (CP2K with the paper preset; realistic
        only on a cluster — use ``executor="slurm"`` etc.) or "mlip" (a PBE-trained
        machine-learned potential, ``mlip`` = a model of :mod:`hetflow.calculators.mlip_models`:
        a screening level, not DFT).
    method: xTB Hamiltonian for level xtb (GFN1-xTB default: robust relaxations of these
        clusters, see docs/MEASUREMENTS.md; GFN2-xTB selectable).
    quick: smaller faithful models (S1/S2: 2 × 2 × 5 perovskite; S3 keeps 3 × 3 × 5) and a looser,
        still converged threshold (:data:`QUICK_FMAX`); never capped relaxations.
    reference: "molecule" (relaxed PbX2 molecules in vacuum, consistent with the finite
        models) or "bulk" (bulk PbX2 per formula unit, periodic).
    outdir: where tables, plots, the store (results.db) and the work directory go.
    store: result store location (SQLite path or postgresql:// URL); default outdir/results.db.
    executor: "local", "slurm", "pbs" or "lsf"; executor_options go to
        :func:`hetflow.workflows.executors.make_executor` (with a scheduler, ``{"pack": N}``
        runs N calculations per allocation and chains warm starts behind their parents' jobs:
        :mod:`hetflow.workflows.packing`); on the command line they come from
        :class:`ExecutorOptions`.
    fmax: convergence threshold of every relaxation and of the table's gate, eV/Å (None:
        :data:`FULL_FMAX`, quick :data:`QUICK_FMAX`).
    max_steps: safety net on the optimiser steps of one relaxation (None: :data:`MAX_STEPS`); a
        relaxation that reaches it is reported as not converged and its rows carry no number.
    optimizer: ASE optimiser of the xTB relaxations (FIRE, LBFGS, BFGS, PreconLBFGS, Sella).
    accelerate: None or a machine-learned potential that guides the relaxations of level xtb that
        start from a built geometry (:mod:`hetflow.calculators.accelerated`); energies stay the
        target level's own.
    accelerate_warm: guide the warm-started relaxations (from a relaxed parent) too; off by default,
        as near its minimum the target level alone is faster (BENCHMARKS.md §14d).
    prerelax: None or a machine-learned potential (chgnet, sevennet) that relaxes each structure
        first; the energy that enters a table is always the target level's own, at its own
        converged geometry.
    mlip: the potential of ``level="mlip"``: a model name of
        :mod:`hetflow.calculators.mlip_models` (default ``chgnet-r2scan``; ``chgnet`` = CHGNet-0.3.0, ``sevennet`` = 7net-0,
        ``chgnet-0.2.0``, ``chgnet-r2scan``, ``7net-l3i5``, ``7net-mf-0``).
    warm_start: relax each configuration from its parent's relaxed geometry (default); False
        relaxes every configuration from the relaxed pristine model instead (the earlier scheme,
        kept for the benchmark that compares the two).
    """

    level: str = option("xtb", "xtb: tblite locally; pbe: CP2K paper preset (submit to a scheduler); mlip: a "
                        "PBE-trained machine-learned potential (--mlip), a screening level.", choices=LEVELS)
    method: str = option("GFN1-xTB", "xTB method for --level xtb.")
    quick: bool = option(False, f"Smaller faithful models and fmax {QUICK_FMAX:g} eV/Å (still converged).")
    reference: str = option("molecule", "PbX2 reference: relaxed molecules in vacuum or bulk per formula unit.",
                            choices=REFERENCES)
    outdir: Path = option(Path("hetflow-reproduce"), flags=("-o", "--outdir"), type="path")
    store: str | None = option(None, "Result store: SQLite path or postgresql:// URL (default OUTDIR/results.db).")
    executor: str = option("local", choices=EXECUTORS)
    executor_options: dict[str, Any] = option(default_factory=dict, cli=False)
    seed: int = option(0, type=int)
    fmax: float | None = option(None, f"Relaxation and gate threshold, eV/Å (default {FULL_FMAX:g}; quick "
                                f"{QUICK_FMAX:g}).", type=float)
    max_steps: int | None = option(None, f"Safety net on optimiser steps per relaxation (default {MAX_STEPS}); "
                                   "reaching it = not converged.", type=int)
    optimizer: str = option("FIRE", "ASE optimiser of the relaxations.", choices=OPTIMIZERS)
    prerelax: str | None = option(None, "Relax every structure with this potential first; the table's energies "
                                  "stay the target level's own.", choices=PRERELAX)
    accelerate: str | None = option(None, "Guide the relaxations of --level xtb that start from a built geometry with "
                                    "this potential (force-corrected to the target level, which checks each step); the "
                                    "table's energies stay the target level's own.", choices=MLIPS, case_sensitive=False)
    accelerate_warm: bool = option(False, "With --accelerate: guide the warm-started relaxations too (each exchanged "
                                   "configuration from its parent's relaxed geometry). Default: only the relaxations "
                                   "from a built geometry are guided; near its minimum the target level alone is faster.")
    mlip: str = option(mlip_models.DEFAULT_MLIP, "Potential of --level mlip (weights inside the wheels, no "
                       "network): chgnet-r2scan = CHGNet's r²SCAN model (the default, closest to Tables S1–S2), chgnet = "
                       "CHGNet-0.3.0, sevennet = 7net-0; 7net-mf-0 uses its PBE head.",
                       choices=MLIPS, case_sensitive=False)
    warm_start: bool = option(True, cli=False)
    progress: bool = option(True, cli=False)

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            raise InputError(f"unknown level {self.level!r}; choose one of {', '.join(LEVELS)}")
        if self.reference not in REFERENCES:
            raise InputError(f"unknown reference {self.reference!r}; choose molecule or bulk")
        if mlip_models.resolve(self.mlip) is None:
            raise InputError(f"unknown machine-learned potential {self.mlip!r}; choose one of {', '.join(MLIPS)}")
        if self.prerelax is not None and self.prerelax not in PRERELAX:
            raise InputError(f"unknown prerelax {self.prerelax!r}; choose one of {', '.join(PRERELAX)}")
        if self.accelerate is not None:
            if mlip_models.resolve(self.accelerate) is None:
                raise InputError(f"unknown accelerate potential {self.accelerate!r}; choose one of {', '.join(MLIPS)}")
            if self.level != "xtb":
                raise InputError(f"--accelerate guides --level xtb relaxations (level {self.level!r}: "
                                 + ("the potential is the level itself)" if self.level == "mlip" else
                                    "CP2K relaxes natively; use --prerelax)"))
            if self.prerelax is not None:
                raise InputError("--accelerate and --prerelax exclude each other")
        elif self.accelerate_warm:
            raise InputError("--accelerate-warm needs --accelerate NAME (the potential that guides)")
        self.outdir = Path(self.outdir)

    @property
    def store_location(self) -> str:
        return self.store or str(self.outdir / "results.db")

    @property
    def relax_fmax(self) -> float:
        return self.fmax if self.fmax is not None else (QUICK_FMAX if self.quick else FULL_FMAX)

    @property
    def relax_steps(self) -> int:
        return self.max_steps if self.max_steps is not None else MAX_STEPS


@dataclass(frozen=True)
class ExecutorOptions:
    """How the command line spells :attr:`RecipeOptions.executor_options` (the options of
    :func:`hetflow.workflows.executors.make_executor` for the chosen executor)."""

    workers: int | None = option(None, "Local executor: worker processes.", type=int)
    threads: int | None = option(None, "Threads per worker / job.", type=int)
    partition: str | None = option(None)
    account: str | None = option(None)
    walltime: str | None = option(None, "Scheduler walltime, e.g. 04:00:00.")
    pack: int | None = option(None, "With a scheduler: tasks per batch allocation (warm-started chains are "
                              "submitted behind their parents' jobs, so they proceed with the controller "
                              "detached).", type=int)
    wait: bool = option(False, "With a scheduler: stay attached until every job ended (default: submit what is "
                        "ready and return; run again to collect and submit the next steps).",
                        flags=("--wait/--detach",))

    def for_executor(self, executor: str) -> dict[str, Any]:
        """The ``executor_options`` of ``executor`` (those of the other kind are ignored)."""
        if executor == "local":
            if self.pack:
                raise InputError("--pack needs a scheduler: --executor slurm|pbs|lsf")
            return {k: v for k, v in (("workers", self.workers), ("threads", self.threads)) if v}
        out: dict[str, Any] = {k: v for k, v in (("partition", self.partition), ("account", self.account),
                                                 ("walltime", self.walltime), ("threads", self.threads)) if v}
        out["detached"] = not self.wait
        out["pack"] = self.pack or 1  # packing executor: also chains warm starts behind their parents
        return out


#: the most symmetry-distinct configurations relaxed all (exactly) before the recipe samples
EXACT_MAX = 80
#: the report's temperature when none is given (K)
DEFAULT_TEMPERATURE = 300.0


@dataclass(frozen=True)
class FreeEnergyOptions:
    """What the free-energy recipe samples.

    samples: random draws per composition when it is sampled (≥ 20 for a converged answer on the
        quick model; see the report's half-sample column).  exact_max: at most this many
        symmetry-distinct configurations are relaxed all, with multiplicities.
    temperatures: K (the first is the report's main one).  seed: of the draws.
    fractions: the compositions, fractions of the interfacial sites (None: Table S2's steps,
        :data:`hetflow.structures.exchange.S2_FRACTIONS`; not imported here, it would load the
        structures layer at CLI start-up).
    n_boot: bootstrap resamples of the error.
    sites: "s2" (the interfacial chalcohalide layers, :mod:`hetflow.recipes.free_energy`) or "s3" (the
        perovskite alloy of Table S3, :mod:`hetflow.recipes.free_energy_s3`).
    """

    samples: int = option(32, "Random configurations drawn per composition when there are too many to relax all.",
                          type=int)
    exact_max: int = option(EXACT_MAX, "Relax every symmetry-distinct configuration when there are at most this "
                            "many.", type=int)
    temperatures: tuple[float, ...] = option((DEFAULT_TEMPERATURE,), f"Temperature, K (repeatable; default "
                                             f"{DEFAULT_TEMPERATURE:g}; the first is the report's main one).",
                                             flags=("--temperature", "temperatures"), type=float, multiple=True)
    seed: int = option(0, cli=False)  # the recipe's --seed (RecipeOptions.seed)
    fractions: tuple[float, ...] | None = option(None, cli=False)
    n_boot: int = option(500, cli=False)
    sites: str = option("s2", "Which sites: s2 = Table S2's interfacial chalcohalide layers, composition by "
                        "composition; s3 = Table S3's ≈ 20 % perovskite alloy, its ordered patterns against the "
                        "distribution of --samples random ones.", choices=("s2", "s3"))

    def __post_init__(self) -> None:
        if not isinstance(self.samples, int) or not 2 <= self.samples <= 10_000:
            raise InputError(f"samples must be an integer 2 … 10000, got {self.samples!r}")
        if not isinstance(self.exact_max, int) or not 1 <= self.exact_max <= 10_000:
            raise InputError(f"exact_max must be an integer 1 … 10000, got {self.exact_max!r}")
        if not self.temperatures or not all(np.isfinite(t) and 0 < t <= 5000 for t in self.temperatures):
            raise InputError(f"temperatures must be in (0, 5000] K, got {list(self.temperatures)}")
        if self.sites not in ("s2", "s3"):
            raise InputError(f"sites must be 's2' or 's3', got {self.sites!r}")
        if self.fractions is not None and (not self.fractions or not all(0 < f <= 1 for f in self.fractions) or
                                           any(b <= a for a, b in zip(self.fractions, self.fractions[1:]))):
            raise InputError(f"fractions must increase strictly within (0, 1], got {list(self.fractions)}")
