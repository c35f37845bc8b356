"""Typed rows of Tables S1–S3, of the strain table and of the screen: named fields with their units.

A recipe fills these; the report, the CSV and the plots read the *fields* (``row.de_interface_cum_kcal``),
never a display header, so a renamed column fails at once where it is used.  The display header
of each field (units in it) is its ``metadata["header"]``, used only to print tables.

Units: energies kcal/mol (per exchanged halide unless the name says ``total``), strain %, forces
eV/Å.  ``None`` = not computed, or withheld by the convergence gate.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any, Sequence

__all__ = ["S1Row", "S2Row", "S3Row", "StrainRow", "ZifRow", "ZifCandidateRow", "BulkRow", "ScreenRow", "FreeEnergyRow",
           "S3PatternRow", "S3EnsembleRow", "display", "display_rows", "header"]


def col(header: str, default: Any = None) -> Any:
    """A field with its display header."""
    return field(default=default, metadata={"header": header})


@dataclass(frozen=True)
class S1Row:
    """One N of Table S1: Cl→I in N perovskite layers from the interface and from the bottom."""

    n: int = col("N", 0)
    de_interface_step_kcal: float | None = col("ΔE interface, stepwise (kcal/mol)")
    de_interface_cum_kcal: float | None = col("ΔE interface, cumulative (kcal/mol)")
    de_bottom_step_kcal: float | None = col("ΔE bottom, stepwise (kcal/mol)")
    de_bottom_cum_kcal: float | None = col("ΔE bottom, cumulative (kcal/mol)")
    diff_step_kcal: float | None = col("interface − bottom, stepwise (kcal/mol)")
    diff_cum_kcal: float | None = col("interface − bottom, cumulative (kcal/mol)")
    published_interface_kcal: float | None = col("published interface (kcal/mol)")
    published_bottom_kcal: float | None = col("published bottom (kcal/mol)")
    published_diff_kcal: float | None = col("published interface − bottom (kcal/mol)")
    fmax_interface: float | None = col("fmax interface (eV/Å)")
    force_calls_interface: int | None = col("force calls interface")
    fmax_bottom: float | None = col("fmax bottom (eV/Å)")
    force_calls_bottom: int | None = col("force calls bottom")
    status: str = col("status", "")


@dataclass(frozen=True)
class S2Row:
    """One step of Table S2: Cl→I in the two interfacial chalcohalide layers, from model (d)."""

    step: str = col("step (I/Cl %)", "")
    published_step: str | None = col("published step")
    x: int = col("x (halides exchanged)", 0)
    de_step_kcal: float | None = col("ΔE, stepwise (kcal/mol)")
    de_cum_kcal: float | None = col("ΔE, cumulative from (d) (kcal/mol)")
    de_minus_first_kcal: float | None = col("ΔE − ΔE(first) (kcal/mol)")
    strain_before_pct: float | None = col("strain before (%)")
    strain_after_pct: float | None = col("strain after (%)")
    published_de_kcal: float | None = col("published ΔE (kcal/mol)")
    published_strain_before_pct: float | None = col("published strain before (%)")
    published_strain_after_pct: float | None = col("published strain after (%)")
    fmax: float | None = col("fmax (eV/Å)")
    force_calls: int | None = col("force calls")
    status: str = col("status", "")


@dataclass(frozen=True)
class S3Row:
    """One distribution of Table S3: ≈ 20 % Cl→I in the CsPbCl3 domain of model (d)."""

    distribution: str = col("distribution", "")
    x: int = col("x (halides exchanged)", 0)
    de_total_kcal: float | None = col("ΔE total (kcal/mol)")
    random_spread_kcal: float | None = col("random spread (kcal/mol)")
    de_per_halide_kcal: float | None = col("ΔE per halide (kcal/mol)")
    de_minus_random_kcal: float | None = col("ΔE − ΔE(random) (kcal/mol)")
    published_de_kcal: float | None = col("published ΔE (kcal/mol)")
    published_de_minus_random_kcal: float | None = col("published ΔE − ΔE(random) (kcal/mol)")
    fmax: float | None = col("fmax (eV/Å)")
    force_calls: int | None = col("force calls")
    status: str = col("status", "")


@dataclass(frozen=True)
class StrainRow:
    """Interfacial strain of one model against its matching standalone NC (%)."""

    model: str = col("model", "")
    strain_pct: float | None = col("interfacial strain (%)")
    published_pct: float | None = col("published (%)")
    reference: str = col("reference NC", "")
    status: str = col("status", "")


@dataclass(frozen=True)
class ScreenRow:
    """One pair of ``hetflow screen``: epitaxy, the S1-type exchange scan (stepwise, kcal/mol per
    halide), interfacial strain and band-edge localisation; ``rank`` 1 = best."""

    pair: str = col("pair", "")
    exchange: str | None = col("exchange")
    status: str = col("status", "")
    mismatch_pct: float | None = col("mismatch (%)")
    zsl_area_A2: float | None = col("ZSL area (Å²)")
    de_n1_interface_kcal: float | None = col("ΔE N=1 interface (kcal/mol)")
    de_n1_bottom_kcal: float | None = col("ΔE N=1 bottom (kcal/mol)")
    starts_from: str | None = col("starts from")
    mean_de_bottom_kcal: float | None = col("mean ΔE bottom N=1…5 (kcal/mol)")
    strain_pct: float | None = col("interfacial strain (%)")
    homo_on: str | None = col("HOMO on")
    lumo_on: str | None = col("LUMO on")
    rank: int | None = col("rank")


@dataclass(frozen=True)
class ZifRow:
    """One quantity of the ZIF study beside Li et al. (kJ/mol); ``converged`` in words."""

    quantity: str = col("quantity", "")
    hetflow_kj: float | None = col("hetflow (kJ/mol)")
    published_kj: float | None = col("Li et al. (kJ/mol)")
    converged: str = col("converged", "")


@dataclass(frozen=True)
class ZifCandidateRow:
    """One docking candidate of the ZIF study: screened (rigid single point) and, for the best, relaxed."""

    phase: str = col("phase", "")
    candidate: str = col("candidate", "")
    exchanges: int = col("exchanges", 0)
    dock_pb: int = col("dock Pb", 0)
    geometric_score: float = col("geometric score", 0.0)
    screen_de_kj: float | None = col("screen ΔE (kJ/mol)")
    relaxed_de_kj: float | None = col("relaxed ΔE (kJ/mol)")
    converged: str | None = col("converged")


@dataclass(frozen=True)
class BulkRow:
    """One bulk phase: relaxed, Γ-point-converged energy per formula unit (eV) and its lattice."""

    phase: str = col("phase", "")
    formula_unit: str | None = col("formula unit")
    relaxed_in: str | None = col("relaxed in")
    largest_supercell_atoms: int | None = col("largest supercell (atoms)")
    e_per_fu_ev: float | None = col("E per f.u. (eV)")
    last_delta_kj: float | None = col("last Δ (kJ/mol)")
    converged: str = col("converged", "")
    a: float | None = col("a (Å)")
    b: float | None = col("b (Å)")
    c: float | None = col("c (Å)")
    angles: str | None = col("angles (°)")
    spacegroup: str | None = col("space group (0.1 Å)")
    max_tilt_deg: float | None = col("max tilt (°)")
    residual_fmax: float | None = col("residual fmax in largest (eV/Å)")
    status: str = col("status", "")


@dataclass(frozen=True)
class FreeEnergyRow:
    """One composition at one temperature (kcal/mol per exchanged halide unless said otherwise)."""

    x_pct: float = col("I in the interfacial layers (%)", 0.0)
    n_exchanged: int = col("halides exchanged", 0)
    configurations: str = col("configurations", "")
    n_relaxed: int = col("relaxed", 0)
    temperature_k: float = col("T (K)", 0.0)
    de_min_kcal: float | None = col("ΔE min (kcal/mol)")
    de_mean_kcal: float | None = col("⟨ΔE⟩ Boltzmann (kcal/mol)")
    de_arith_kcal: float | None = col("ΔE mean of configurations (kcal/mol)")
    df_kcal: float | None = col("ΔF (kcal/mol)")
    df_err_kcal: float | None = col("ΔF error, bootstrap (kcal/mol)")
    df_half_kcal: float | None = col("ΔF from half the draws (kcal/mol)")
    ideal_kcal: float | None = col("−kT ln Ω (kcal/mol)")
    df_total_kcal: float | None = col("ΔF total (kcal/mol)")
    mixing_kcal: float | None = col("ΔF total − line (d)…100 % (kcal/mol)")
    status: str = col("status", "")


@dataclass(frozen=True)
class S3EnsembleRow:
    """The random ≈ 20 % alloys of Table S3 as an ensemble, at one temperature (kcal/mol, total
    over the x exchanged halides, against model (d) and the PbX2 reservoir)."""

    temperature_k: float = col("T (K)", 0.0)
    n_relaxed: int = col("random configurations relaxed", 0)
    log10_omega: float = col("log10 Ω = log10 C(sites, x)", 0.0)
    de_mean_kcal: float | None = col("⟨ΔE⟩ of the sample (kcal/mol)")
    de_std_kcal: float | None = col("σ (kcal/mol)")
    de_min_kcal: float | None = col("lowest (kcal/mol)")
    de_max_kcal: float | None = col("highest (kcal/mol)")
    de_boltzmann_kcal: float | None = col("⟨ΔE⟩ Boltzmann (kcal/mol)")
    f_kcal: float | None = col("F random, sample (kcal/mol)")
    f_err_kcal: float | None = col("F error, bootstrap (kcal/mol)")
    f_half_kcal: float | None = col("F from half the sample (kcal/mol)")
    f_gauss_kcal: float | None = col("F random, Gaussian (kcal/mol)")
    ideal_kcal: float | None = col("−kT ln Ω (kcal/mol)")
    status: str = col("status", "")


@dataclass(frozen=True)
class S3PatternRow:
    """One ordered pattern of Table S3 against the distribution of random alloys (kcal/mol, total)."""

    distribution: str = col("distribution", "")
    x: int = col("x (halides exchanged)", 0)
    de_total_kcal: float | None = col("ΔE total (kcal/mol)")
    random_below_pct: float | None = col("random sample below it (%)")
    z: float | None = col("z = (ΔE − ⟨ΔE⟩)/σ")
    de_minus_mean_kcal: float | None = col("ΔE − ⟨ΔE⟩ random (kcal/mol)")
    de_minus_min_kcal: float | None = col("ΔE − lowest random (kcal/mol)")
    g_minus_f_kcal: float | None = col("G − F random at T (kcal/mol)")
    published_de_minus_random_kcal: float | None = col("published ΔE − ΔE(random) (kcal/mol)")
    status: str = col("status", "")


def header(row_type: type, name: str) -> str:
    """The display header of field ``name`` of ``row_type``."""
    for f in fields(row_type):
        if f.name == name:
            return f.metadata["header"]
    raise KeyError(f"{row_type.__name__} has no field {name!r}")


def display(row: Any) -> dict[str, Any]:
    """A row as {display header: value} for Markdown/CSV (a plain dict passes through)."""
    if is_dataclass(row):
        return {f.metadata.get("header", f.name): getattr(row, f.name) for f in fields(row)}
    return dict(row)


def display_rows(rows: Sequence[Any]) -> list[dict[str, Any]]:
    return [display(r) for r in rows]
