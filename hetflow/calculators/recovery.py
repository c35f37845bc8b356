"""SCF recovery ladders: what to try, in order, when an SCF does not converge.

Only SCF non-convergence climbs a ladder.  Deterministic input errors (unknown element or
basis, impossible charge/multiplicity, missing executable, unknown method) are raised at
once and never retried.  Every step taken is recorded in ``CalcResult.recovery``.

xTB (tblite), after the requested settings fail:

1. ``mixer_damping`` — Broyden damping lowered to 0.2, iteration limit ``recovery_max_iter``.
2. ``hot_then_cold`` — converge at a high electronic temperature (``max(10·T, 3000 K)``),
   then re-converge at the *requested* temperature starting from that density, so the final
   energy is at the requested temperature.
3. ``other_guess`` — the other initial guess (SAD ↔ EEQ charges), damping 0.2.

xtb-python has no mixer/guess setters: ``more_iterations`` then ``hot_then_cold``.

CP2K (see :mod:`hetflow.calculators.cp2k`), each step starting from the last attempt's
``-RESTART.wfn`` and none of them changing the energy functional (an SCF handler may change how
the minimum is found, never which minimum): ``diagonalization`` (OT → standard diagonalisation
with Broyden mixing, α = 0.2, no smearing), ``more_steps`` (the same with 3× MAX_SCF).  Also
accepted when listed explicitly: ``restart_wfn`` (the requested settings again, from the last
wavefunction) and ``smearing`` — diagonalisation with Fermi–Dirac smearing at 300 K, which
**does** change the functional (a free energy); it is recorded as energy-affecting
(:data:`ENERGY_AFFECTING`) so a table can say which rows used it.

``settings["recovery"]``: ``True`` (default ladder), ``False`` (none: fail at once), or a list of
step names to try in that order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hetflow.errors import InputError

XTB_LADDER: tuple[str, ...] = ("mixer_damping", "hot_then_cold", "other_guess")
XTB_PYTHON_LADDER: tuple[str, ...] = ("more_iterations", "hot_then_cold")
CP2K_LADDER: tuple[str, ...] = ("diagonalization", "more_steps")
CP2K_STEPS: tuple[str, ...] = ("diagonalization", "more_steps", "restart_wfn", "smearing")
#: recovery steps that change a setting entering energy differences
ENERGY_AFFECTING: frozenset[str] = frozenset({"smearing"})


@dataclass(frozen=True)
class XTBAttempt:
    """Settings of one SCF attempt (temperatures in K)."""

    name: str
    max_iter: int
    mixer_damping: float
    temperature: float
    guess: str
    hot_temperature: float | None = None

    def describe(self) -> str:
        txt = f"{self.name}: damping {self.mixer_damping:g}, max {self.max_iter} it., {self.guess} guess"
        if self.hot_temperature is not None:
            txt += f", {self.hot_temperature:g} K then {self.temperature:g} K"
        else:
            txt += f", {self.temperature:g} K"
        return txt


def ladder_steps(setting: Any, default: tuple[str, ...], allowed: tuple[str, ...] | None = None) -> list[str]:
    """Resolve ``settings["recovery"]`` against the ``default`` ladder (``allowed``: also
    accepted when listed explicitly; default = ``default``)."""
    if setting is True or setting is None:
        return list(default)
    if setting is False:
        return []
    allowed = allowed or default
    steps = [setting] if isinstance(setting, str) else list(setting)
    bad = [s for s in steps if s not in allowed]
    if bad:
        raise InputError(f"unknown recovery step(s) {', '.join(map(str, bad))}; choose from {', '.join(allowed)}")
    return steps


def energy_settings_differ(settings: dict[str, dict[str, Any]]) -> dict[str, str]:
    """Rows whose energy-relevant settings differ from the most common ones.

    ``settings``: row name → ``CalcResult.extra["energy_settings"]`` (or the stored ``extra``
    of a row).  Returns row name → ``"key: value (others: value)"`` for every row that differs,
    so a table built from these rows can say which rows were computed differently.
    """
    from collections import Counter

    import json

    if not settings:
        return {}
    blobs = {n: json.dumps(v, sort_keys=True, default=str) for n, v in settings.items()}
    common = json.loads(Counter(blobs.values()).most_common(1)[0][0])
    out = {}
    for name, v in settings.items():
        diffs = [f"{k}: {v.get(k)!r} (others: {common.get(k)!r})" for k in sorted(set(v) | set(common))
                 if v.get(k) != common.get(k)]
        if diffs:
            out[name] = "; ".join(diffs)
    return out


def xtb_attempts(s: dict[str, Any], ladder: tuple[str, ...] | list[str] | None = None) -> list[XTBAttempt]:
    """The requested attempt followed by the ladder's attempts, from merged xTB settings.

    ``ladder``: the backend's default ladder (:data:`XTB_LADDER` when None; xtb-python passes
    :data:`XTB_PYTHON_LADDER`), used when ``s["recovery"]`` is True."""
    T = float(s["electronic_temperature"])
    guess = str(s["guess"]).lower()
    first = XTBAttempt("requested", int(s["scf_max_iter"]), float(s["mixer_damping"]), T, guess)
    n = int(s["recovery_max_iter"])
    damp = min(0.2, float(s["mixer_damping"]))
    other = "eeq" if guess == "sad" else "sad"
    hot = max(10.0 * T, 3000.0)
    table = {
        "mixer_damping": XTBAttempt("mixer_damping", n, damp, T, guess),
        "hot_then_cold": XTBAttempt("hot_then_cold", n, damp, T, guess, hot_temperature=hot),
        "other_guess": XTBAttempt("other_guess", n, damp, T, other),
        "more_iterations": XTBAttempt("more_iterations", n, float(s["mixer_damping"]), T, guess),
    }
    default = XTB_LADDER if ladder is None else ladder
    return [first] + [table[name] for name in ladder_steps(s.get("recovery", True), default)]
