"""Relaxations guided by a machine-learned potential: the potential walks, the target level checks.

The target level (GFN1-xTB, PBE …) is expensive per force call and its slow collective modes (a
pillar contracting to its own lattice constant, a face reconstructing) keep a plain optimiser at
fmax ≈ 0.1 eV/Å for hundreds of calls.  A machine-learned potential (MLIP) has nearly the same
soft modes at a few hundredths of the cost.  This module runs **L-BFGS at the target level with
the MLIP as its preconditioner**: where L-BFGS multiplies the gradient by a fixed initial inverse
Hessian H0, here H0·q is the displacement that relaxes the MLIP surface tilted so that its force
at x_k is −q (the surrogate S(y) = E_M(y) − (−q − F_M(x_k))·(y − x_k), relaxed by L-BFGS on
MLIP calls only, :mod:`hetflow.calculators.inner_lbfgs`) — the MLIP's own nonlinear inverse
Hessian, which takes the soft modes in one step.  Each *macro step* k

1. evaluates the target level at x_k: E_T, F_T (one target force call);
2. runs the L-BFGS two-loop recursion over the last ``memory`` target-level pairs (s, y) with that
   H0 (``memory = 0``: the plain force-corrected surrogate step H_M⁻¹ F_T) — the pairs learn where
   the two surfaces' curvatures differ;
3. caps the step at a trust radius r (largest atomic displacement) and evaluates the target there;
   the step is **accepted** when the target energy fell, else **refused** (the memory is cleared);
   r halves when the energy change was less than a quarter of the quadratic model's along the step
   (its minimum at the uncapped step) and doubles when a capped step got more than three quarters;
4. after ``max_refused`` refused steps in a row (the two surfaces disagree at the scale left), or
   once the last ``handover_window`` target calls together released less than ``handover`` (a
   fraction) of the energy released since the start (the guided steps stopped paying for their
   larger SCF and potential cost), the target level **finishes** alone with ``spec.optimizer``
   (``<workdir>/finish``), within the budget.

Near the minimum a memory-less step is a Newton step with the MLIP's Hessian, x_{k+1} − x_k =
H_M⁻¹ F_T(x_k): the error contracts by ‖I − H_M⁻¹ H_T‖ per target call, whatever the condition
number of H_T itself; the L-BFGS pairs correct the directions in which the MLIP is too stiff or too
soft.

**The Δ-correction** (``correction = 1``; off by default, BENCHMARKS §14b): the surface the inner relaxations walk is the
MLIP plus a pair term per element pair fitted by ridge least squares to F_T − F_M on every target
frame so far (:mod:`hetflow.calculators.delta_pair`; the MLIP is evaluated once more at each target
frame).  It carries what the two levels disagree on most — bond lengths (GFN1's CsPbCl3 lattice is
5.40 Å, CHGNet's ≈ 5.6 Å) and stiffnesses — into H0, refitted after every target call; the constant
tilt then only has to carry the rest.

The gate does not change: the result's energy and forces are the target level's own, at the final
geometry, and ``converged`` means the target's max |F| < ``spec.fmax``.  ``force_calls`` counts the
target's calls (guided and finishing; ``spec.max_steps`` bounds them); ``extra["accelerate"]`` records the MLIP calls, macro steps, refused steps, SCF
iterations and wall times of both parts.

Checkpoints (with a workdir): ``accelerated.json`` after every target call (geometry, target
energy and forces, trust radius, counts), replaced atomically; a rerun resumes there (the MLIP's
correction is rebuilt from the stored target forces, no target call is repeated).  A workdir
holding another structure's checkpoint is refused.

Units: eV, Å, eV/Å.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

from hetflow.atomic import write_atomic
from hetflow.calculators import mlip_models, registry
from hetflow.calculators.accelerate_options import accelerate_options
from hetflow.calculators.base import CalcResult, CalcSpec, structure_fingerprint
from hetflow.calculators.delta_pair import PairCorrection, PairFit
from hetflow.calculators.inner_lbfgs import InnerLBFGS
from hetflow.calculators.relax import freeze_mask, make_engine, max_force, read_checkpoint, relax
from hetflow.errors import CalculatorError, InputError

__all__ = ["surrogate_spec", "relax_accelerated"]

log = logging.getLogger("hetflow.calculators.accelerated")

class _SinglePoints:
    """The target level of a backend that relaxes natively (CP2K) as an engine: one single point per
    call, each in its own sub-directory ``target-NNN`` of the workdir (numbered on from a resumed run)."""

    def __init__(self, backend: Any, spec: CalcSpec, workdir: Path | None, done: int = 0) -> None:
        self.backend, self.workdir, self.n = backend, workdir, done
        self.spec = spec.replace(task="single_point", accelerate=None)

    def compute(self, atoms: Atoms) -> CalcResult:
        self.n += 1
        r = self.backend.run(atoms, self.spec, None if self.workdir is None else self.workdir / f"target-{self.n:03d}")
        if r.forces is None:
            raise CalculatorError(f"{self.spec.backend} returned no forces; a guided relaxation needs them")
        return r


def surrogate_spec(spec: CalcSpec) -> CalcSpec:
    """The MLIP single-point spec that guides ``spec`` (``spec.accelerate`` names the model)."""
    m = mlip_models.resolve(spec.accelerate or "")
    if m is None:
        raise InputError(f"unknown accelerate potential {spec.accelerate!r}; choose one of {', '.join(mlip_models.choices())}")
    threads = spec.settings_dict.get("threads")
    return CalcSpec(backend=m.backend, method=m.name, periodic=spec.periodic,
                    settings={} if threads is None else {"threads": threads})


def _finish(atoms: Atoms, x: np.ndarray, spec: CalcSpec, backend: Any, workdir: str | Path | None,
            budget: int) -> CalcResult:
    """The target level's own relaxation from ``x`` (``spec.optimizer``, at most ``budget`` steps),
    checkpointed in ``<workdir>/finish``."""
    start = atoms.copy()
    start.calc = None
    start.positions = x
    target = spec.replace(accelerate=None, max_steps=max(1, budget))
    wd = None if workdir is None else Path(workdir) / "finish"
    if backend.relaxes_with_ase:
        return relax(start, target, wd)
    return backend.run(start, target, wd)


def relax_accelerated(atoms: Atoms, spec: CalcSpec, workdir: str | Path | None = None) -> CalcResult:
    """Relax ``atoms`` at ``spec``'s level, guided by the MLIP ``spec.accelerate`` (module doc), in
    this process (:func:`hetflow.calculators.run_calculation` launches it where the target runs)."""
    backend = registry.backend(spec.backend)
    if spec.settings_dict.get("cell_filter"):
        raise InputError("accelerate relaxes the ions only; drop the cell filter or accelerate")
    opt = accelerate_options(spec.settings_dict)
    t0 = time.perf_counter()
    mlip = make_engine(surrogate_spec(spec))
    work = atoms.copy()
    work.calc = None
    mask = freeze_mask(work, spec.settings_dict.get("freeze"))
    free = ~mask
    fp = structure_fingerprint(atoms)
    ck = None if workdir is None else Path(workdir) / "accelerated.json"
    if ck is not None:
        ck.parent.mkdir(parents=True, exist_ok=True)
    st = read_checkpoint(ck, atoms) if ck is not None else None
    counts = {"target_calls": 0, "mlip_calls": 0, "macro_steps": 0, "refused": 0, "scf_steps": 0,
              "target_s": 0.0, "mlip_s": 0.0}
    if st is not None:
        counts.update(st["counts"])
    target = (make_engine(spec) if backend.relaxes_with_ase else
              _SinglePoints(backend, spec, None if workdir is None else Path(workdir), counts["target_calls"]))
    recovery: list[str] = []

    def call(engine: Any, pos: np.ndarray, who: str) -> Any:
        """One energy+force call of ``engine`` at ``pos``, counted and timed under ``who``."""
        a = work.copy()
        a.positions = pos
        t = time.perf_counter()
        r = engine.compute(a)
        counts[f"{who}_s"] += time.perf_counter() - t
        counts[f"{who}_calls"] += 1
        return r

    def evaluate(pos: np.ndarray) -> tuple[float, np.ndarray]:
        r = call(target, pos, "target")
        counts["scf_steps"] += r.scf_steps or 0
        recovery.extend(f"target call {counts['target_calls']}: {x}" for x in r.recovery)
        return float(r.energy), np.asarray(r.forces, float)

    def fmax_of(forces: np.ndarray) -> float:
        return max_force(forces[free])

    def mlip_at(pos: np.ndarray) -> np.ndarray:
        return np.asarray(call(mlip, pos, "mlip").forces, float)

    # the Δ-correction's data: every target frame with the MLIP's forces at the same geometry
    fit = PairFit(work, free, ridge=opt["ridge"]) if opt["correction"] else None
    frames: list[list[Any]] = list(st.get("frames", [])) if st else []
    if fit is not None:
        for pos, ft, fmf in frames:
            fit.add(np.asarray(pos, float), np.asarray(ft, float) - np.asarray(fmf, float))

    def observe(pos: np.ndarray, ft: np.ndarray) -> np.ndarray | None:
        """The MLIP's forces at a target frame, added to the correction's fit (None without one)."""
        if fit is None:
            return None
        fmf = mlip_at(pos)
        fit.add(pos, ft - fmf)
        frames.append([pos.tolist(), ft.tolist(), fmf.tolist()])
        return fmf

    if st is not None:
        x = np.asarray(st["positions"], float)
        e, f = float(st["energy"]), np.asarray(st["forces"], float)
        trust = float(st["trust"])
        fm = np.asarray(frames[-1][2], float) if frames and np.allclose(frames[-1][0], x) else None
        log.info("resuming accelerated relaxation in %s after %d target calls", workdir, counts["target_calls"])
    else:
        x = work.positions.copy()
        e, f = evaluate(x)
        fm = observe(x, f)
        trust = opt["trust"]
    history: list[dict[str, float]] = list(st.get("history", [])) if st else []
    e_start = float(st.get("e_start", e)) if st else e  # the target energy before the first step

    pairs: list[tuple[np.ndarray, np.ndarray]] = ([(np.asarray(p, float), np.asarray(q, float))
                                                   for p, q in st.get("pairs", [])] if st else [])

    inner = InnerLBFGS(memory=100, maxstep=0.2, scaled=bool(opt["inner_scaled"]))

    def h0(q: np.ndarray, fm: np.ndarray, corr: PairCorrection | None, reach: float) -> np.ndarray:
        """H0·q: the displacement that relaxes the (corrected) MLIP surface whose force at x is −q
        (at most ``reach`` Å for any atom), negated — the surrogate's inverse Hessian applied to q.
        The surface: F_S(y) = F_M(y) + F_Δ(y) + df with the constant df = −q − F_M(x) − F_Δ(x)."""
        s = work.copy()

        def forces(y: np.ndarray) -> np.ndarray:
            s.positions = y
            fc = corr.energy_forces(s)[1] if corr is not None else 0.0
            return np.asarray(mlip.compute(s).forces, float) + fc + df

        s.positions = x
        fc0 = corr.energy_forces(s)[1] if corr is not None else 0.0
        df = np.where(free[:, None], -q - fm - fc0, 0.0)
        t = time.perf_counter()
        inside, n = inner.minimise(forces, x, free, opt["inner_fmax_ratio"] * spec.fmax, int(opt["inner_steps"]),
                                  reach, f0=-q)
        counts["mlip_calls"] += n
        counts["mlip_s"] += time.perf_counter() - t
        return -(inside - x)

    def direction(fm: np.ndarray, corr: PairCorrection | None) -> np.ndarray:
        """The L-BFGS step −H·g with the MLIP as H0 (two-loop recursion over ``pairs``)."""
        q = np.where(free[:, None], -f, 0.0)
        alphas = []
        for sv, yv in reversed(pairs):
            a = float((sv * q).sum()) / float((yv * sv).sum())
            q = q - a * yv
            alphas.append(a)
        r = h0(q, fm, corr, 2.0 * opt["trust_max"])
        for (sv, yv), a in zip(pairs, reversed(alphas)):
            b = float((yv * r).sum()) / float((yv * sv).sum())
            r = r + sv * (a - b)
        return -r

    def save() -> None:
        if ck is None:
            return
        write_atomic(ck, json.dumps({"start_fingerprint": fp, "positions": x.tolist(), "energy": e,
                                     "forces": f.tolist(), "trust": trust, "counts": counts, "e_start": e_start,
                                     "history": history,
                                     "pairs": [[p.tolist(), q.tolist()] for p, q in pairs], "frames": frames,
                                     "fmax": fmax_of(f),
                                     "method": spec.method, "accelerate": spec.accelerate}), fsync=False)

    save()

    def stalled() -> bool:
        """The last ``handover_window`` macro steps released less than ``handover`` × the energy
        released since the start (the current point's energy is the history's ``current``)."""
        k = int(opt["handover_window"])
        cur = [h["current"] for h in history if "current" in h]
        if opt["handover"] <= 0 or len(cur) <= k:
            return False
        return cur[-1 - k] - cur[-1] < opt["handover"] * (e_start - cur[-1])

    while (fmax_of(f) >= spec.fmax and counts["target_calls"] < spec.max_steps
           and counts.get("refused_in_row", 0) < int(opt["max_refused"]) and not stalled()):
        if fm is None:
            fm = mlip_at(x)
        corr = fit.solve() if fit is not None else None
        step = direction(fm, corr)
        if float((step * f).sum()) <= 0.0 and pairs:  # not a descent direction: forget the pairs
            pairs.clear()
            step = direction(fm, corr)
        longest = float(np.sqrt((step ** 2).sum(axis=1)).max())
        if longest < 1e-9 or float((step * f).sum()) <= 0.0:
            # the surrogate did not move, or not downhill on the target: a steepest-descent step
            step, longest = np.where(free[:, None], f, 0.0), max(fmax_of(f), 1e-12)
            step, longest = step * (min(trust, 0.1) / longest), min(trust, 0.1)
            counts["descent_steps"] = counts.get("descent_steps", 0) + 1
        # the quadratic model along the step, its minimum at the full step: ΔE(t) = (F·d)(−t + t²/2)
        t_frac = min(1.0, trust / longest)
        predicted = float((f * step).sum()) * (-t_frac + 0.5 * t_frac ** 2)
        step, longest = step * t_frac, longest * t_frac
        e_new, f_new = evaluate(x + step)
        fm_new = observe(x + step, f_new)
        counts["macro_steps"] += 1
        actual = e_new - e
        ratio = actual / predicted if predicted < 0 else -1.0
        accepted = actual <= opt["accept_rise"] and (actual < 0 or ratio > 0)
        history.append({"energy": e_new, "fmax": fmax_of(f_new), "step": longest, "trust": trust,
                        "predicted": predicted, "actual": actual, "memory": len(pairs), "accepted": bool(accepted),
                        **({"delta_rms": corr.residual["rms_after"], "raw_rms": corr.residual["rms_before"]}
                           if corr is not None else {})})
        log.info("accelerated step %d: E %.5f eV (%+.4f, model %+.4f), fmax %.3f eV/Å, step %.3f Å, trust %.3f Å, %s",
                 counts["macro_steps"], e_new, actual, predicted, fmax_of(f_new), longest, trust,
                 "accepted" if accepted else "refused")
        if not accepted or ratio < 0.25:
            trust = max(opt["trust_min"], 0.5 * longest)
        elif ratio > 0.75 and t_frac < 1.0:
            trust = min(opt["trust_max"], 2.0 * trust)
        if accepted:
            yv = np.where(free[:, None], -(f_new - f), 0.0)
            if float((yv * step).sum()) > 1e-10 and opt["memory"] > 0:  # curvature condition
                pairs.append((step, yv))
                del pairs[:-int(opt["memory"])]
            x, e, f, fm = x + step, e_new, f_new, fm_new
            counts["refused_in_row"] = 0
        else:
            pairs.clear()
            counts["refused"] += 1
            counts["refused_in_row"] = counts.get("refused_in_row", 0) + 1
        history[-1]["current"] = e
        save()  # refused steps in a row or stalled progress end the loop: the target level finishes alone

    # why the guided phase ended: converged, the call budget, refused steps, or stalled progress
    ended = ("converged" if fmax_of(f) < spec.fmax else "budget" if counts["target_calls"] >= spec.max_steps
             else "refused" if counts.get("refused_in_row", 0) >= int(opt["max_refused"]) else "stalled")
    if ended in ("refused", "stalled"):
        log.info("accelerated: the target level finishes alone after %d target calls (%s)", counts["target_calls"], ended)
        finish = _finish(atoms, x, spec, backend, workdir, spec.max_steps - counts["target_calls"])
        counts["finish_calls"] = int(finish.force_calls or 0)
        counts["target_calls"] += counts["finish_calls"]
        counts["target_s"] += float(finish.wall_time)
        counts["scf_steps"] += int(finish.scf_steps or 0)
        x, e, f = finish.atoms.positions.copy(), float(finish.energy), np.asarray(finish.forces, float)
        save()

    fmax_reached = fmax_of(f)
    out = atoms.copy()
    out.calc = None
    out.positions = x
    extra: dict[str, Any] = {"fmax_reached": fmax_reached, "force_calls": counts["target_calls"],
                             "optimizer": "accelerated", "accelerate": {"potential": surrogate_spec(spec).method,
                                                                        **counts, "guided_phase_ended": ended,
                                                                        "history": history}}
    if workdir is not None:
        extra["checkpoint"] = str(ck)
    return CalcResult(energy=e, forces=f, atoms=out, converged=fmax_reached < spec.fmax, spec=spec,
                      scf_steps=counts["scf_steps"] or None, opt_steps=counts["macro_steps"],
                      wall_time=time.perf_counter() - t0, recovery=recovery, mo=None,
                      versions=backend.versions(spec), extra=extra, force_calls=counts["target_calls"])
