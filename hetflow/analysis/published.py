"""Published reference numbers hetflow's reproductions are compared with.

Source: D. Livakas, A. Skvortsova, … I. Infante, S. Bals, L. Manna, "Halide Perovskite–
Chalcohalide Nanocrystal Heterostructures as a Platform for the Synthesis and Investigation
of the CsPbCl3–CsPbI3 Epitaxial Interface", Supporting Information, Tables S1–S3
(CP2K 2024.1, PBE, GTH pseudopotentials, DZVP-MOLOPT-SR-GTH, 400 Ry, non-periodic 52×68×52 Å
box, forces < 4.5e-4 Ha/Bohr).  Energies in **kcal/mol** as published (per exchanged halide for
S1 and S2; Table S3 is a total for the ≈20 % exchange, not per halide).  As transcribed in
SCIENCE.md of this project.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SOURCE", "METHOD", "TABLE_S1", "TABLE_S2", "TABLE_S3", "INTERFACIAL_STRAIN",
           "LATTICE", "MISMATCH", "S1Row", "S2Row", "S3Row", "s1_series"]

SOURCE = (
    "Livakas, Skvortsova, Zito, …, Infante, Bals, Manna, 'Halide Perovskite–Chalcohalide "
    "Nanocrystal Heterostructures as a Platform for the Synthesis and Investigation of the "
    "CsPbCl3–CsPbI3 Epitaxial Interface', Supporting Information"
)
METHOD = ("CP2K 2024.1 PBE, GTH-PBE pseudopotentials, DZVP-MOLOPT-SR-GTH, 400 Ry, non-periodic "
          "52x68x52 Å box, relaxed to max force < 4.5e-4 Ha/Bohr")
UNIT = "kcal/mol"


@dataclass(frozen=True)
class S1Row:
    """Table S1: Cl→I in N perovskite layers, kcal/mol per exchanged halide."""

    n_layers: int
    from_interface: float
    from_bottom: float
    interface_minus_bottom: float


@dataclass(frozen=True)
class S2Row:
    """Table S2: Cl→I in the two interfacial chalcohalide layers (from model d).

    step: I/Cl fraction before → after (%); de: kcal/mol per exchanged halide;
    de_minus_first: ΔE − ΔE(0→20 %); strain_before/after: interfacial strain, %."""

    step: tuple[int, int]
    de: float
    de_minus_first: float
    strain_before: float
    strain_after: float


@dataclass(frozen=True)
class S3Row:
    """Table S3: ≈20 % Cl→I in the CsPbCl3 domain; total ΔE and ΔE − ΔE(random), kcal/mol."""

    distribution: str
    de: float
    de_minus_random: float


TABLE_S1: tuple[S1Row, ...] = (
    S1Row(1, 4.32, 0.53, 3.78),
    S1Row(2, 3.79, 3.39, 0.40),
    S1Row(3, 4.11, 3.58, 0.53),
    S1Row(4, 3.80, 3.54, 0.26),
    S1Row(5, 3.95, 3.71, 0.25),
)

TABLE_S2: tuple[S2Row, ...] = (
    S2Row((0, 20), 1.72, 0.00, 1.80, 1.58),
    S2Row((20, 40), 2.78, 1.05, 1.58, 1.44),
    S2Row((40, 60), 2.56, 0.83, 1.44, 1.45),
    S2Row((60, 80), 2.58, 0.85, 1.45, 1.40),
    S2Row((80, 100), 2.82, 1.09, 1.40, 1.51),
)

TABLE_S3: tuple[S3Row, ...] = (
    S3Row("random", 87.13, 0.0),
    S3Row("CsI layer perpendicular", 83.91, -3.22),
    S3Row("CsI layer parallel", 86.95, -0.18),
    S3Row("PbI2 layer perpendicular", 70.38, -16.75),
)

#: interfacial strain (mean |strain| of the interfacial perovskite layer), %, main text
INTERFACIAL_STRAIN: dict[str, float] = {
    "pristine": 1.66,
    "bottom-first (Fig. 5c)": 1.57,
    "interface-first (Fig. 5b)": 2.04,
}

#: measured lattice parameters / interfacial spacings, Å (main text)
LATTICE: dict[str, float] = {
    "CsPbI3": 6.26,
    "I:CsPbCl3": 5.93,
    "Pb4S3Cl2": 5.73,
    "interface pristine": 5.69,
    "interface partial": 5.82,
    "interface fully exchanged": 5.92,
}

#: reported lattice mismatches, % (approximate, main text)
MISMATCH: dict[str, float] = {
    "pristine CsPbCl3–Pb4S3Cl2": 0.4,
    "CsPbCl3–CsPbI3": 5.6,
    "perovskite–chalcohalide (partial)": 3.4,
    "fully exchanged": 8.5,
}


def s1_series() -> dict[str, list[float]]:
    """Table S1 as plot series: {"from interface": [...], "from bottom": [...]} (kcal/mol), N = 1…5."""
    return {"from interface": [r.from_interface for r in TABLE_S1],
            "from bottom": [r.from_bottom for r in TABLE_S1]}
