"""Electron counts for xTB methods and the charge/multiplicity checks every backend shares.

xTB (GFN1/GFN2) treats valence electrons only: electrons outside the noble-gas core and,
from period 4 on for the p-block, outside the filled (n−1)d¹⁰ (and 4f¹⁴ from period 6) shells;
transition metals keep their (n−1)d electrons.  Examples: Cs 1, Pb 4, Cl 7, I 7, S 6, Zn 12.
"""

from __future__ import annotations

from collections.abc import Iterable

from ase.data import chemical_symbols

from hetflow.errors import InputError

_NOBLE = (0, 2, 10, 18, 36, 54, 86, 118)


def xtb_valence_electrons(z: int) -> int:
    """Valence electrons of element ``z`` as counted by GFN1/GFN2-xTB (Z ≤ 86)."""
    if z <= 2:
        return z
    core = max(n for n in _NOBLE if n < z)
    v = z - core
    if z in _NOBLE:
        return 8
    if 57 <= z <= 71:  # lanthanides: 4f in the core
        return 3
    if z > 71:  # period 6 after the lanthanides: 4f14 in the core
        v -= 14
    # filled (n-1)d10 moves into the core for the p-block of periods 4-6
    if (31 <= z <= 36) or (49 <= z <= 54) or (81 <= z <= 86):
        v -= 10
    return v


def check_charge_multiplicity(
    numbers: Iterable[int], charge: int, multiplicity: int, valence: bool = True
) -> int:
    """Number of electrons for ``charge``; raise InputError when the state is impossible.

    ``valence`` counts xTB valence electrons (else all electrons, as for all-electron codes;
    the parity, which is what the multiplicity check needs, is the same either way).
    Impossible: fewer than zero electrons, fewer electrons than unpaired ones, or a parity
    of the electron count that does not match the multiplicity (odd electrons need an even
    multiplicity and vice versa).
    """
    numbers = [int(z) for z in numbers]
    if charge != int(charge):
        raise InputError(f"charge must be an integer, got {charge}")
    charge, multiplicity = int(charge), int(multiplicity)
    total = sum(xtb_valence_electrons(z) if valence else z for z in numbers)
    nel = total - charge
    unpaired = multiplicity - 1
    formula = _formula(numbers)
    if nel < 0:
        raise InputError(
            f"charge {charge:+d} leaves {nel} electrons for {formula} "
            f"({total} {'valence ' if valence else ''}electrons when neutral)"
        )
    if unpaired > nel:
        raise InputError(
            f"multiplicity {multiplicity} needs {unpaired} unpaired electrons but {formula} "
            f"with charge {charge:+d} has only {nel}"
        )
    if (nel - unpaired) % 2:
        raise InputError(
            f"{formula} with charge {charge:+d} has {'an odd' if nel % 2 else 'an even'} number "
            f"of electrons ({nel}); multiplicity {multiplicity} is impossible — use "
            f"{'an even' if nel % 2 else 'an odd'} multiplicity"
        )
    return nel


def _formula(numbers: list[int]) -> str:
    from collections import Counter

    c = Counter(chemical_symbols[z] for z in numbers)
    return "".join(f"{s}{n if n > 1 else ''}" for s, n in sorted(c.items()))
