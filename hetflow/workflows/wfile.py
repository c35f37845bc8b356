"""Workflow files (YAML): validated with one-line errors naming the offending entry.

Example::

    name: molecules
    workdir: runs/molecules        # relative to this file; default <stem>-work
    store: results.db              # SQLite path (relative to this file) or postgresql://…
    spec: {backend: tblite, method: GFN1-xTB, task: single_point}
    structures:
      - water.xyz                          # a file: every frame becomes a task
      - {file: ions.extxyz, index: "0:2", name: ion}
      - {builder: molecule, params: {names: [CH4, NH3]}}       # ase.build.molecule
      - {builder: "hetflow.structures.nanocrystal:build_nanocrystal", params: {...}, name: nc}
      - {name: CH4_gfn2, from: CH4, spec: {method: GFN2-xTB}}  # start from CH4's final geometry
    executor: {type: local, workers: 2, threads: 1}
    # executor: {type: slurm, partition: debug, walltime: "00:30:00", threads: 2, max_retries: 2}

Builders: ``molecule`` (ASE's G2 set, params ``names``) or ``"module:function"`` inside the
``hetflow`` package returning an Atoms or a list of Atoms.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from ase import Atoms

from hetflow.calculators.base import CalcSpec
from hetflow.errors import HetflowError, WorkflowError
from hetflow.workflows.graph import Workflow

TOP_KEYS = {"name", "workdir", "store", "spec", "structures", "executor"}
ENTRY_KEYS = {"file", "index", "name", "spec", "from", "builder", "params"}
EXECUTORS = ("local", "dask", "slurm", "pbs", "lsf")
_SPEC_TYPES = {"backend": str, "method": str, "task": str, "charge": int, "multiplicity": int,
               "periodic": bool, "fmax": (int, float), "max_steps": int, "optimizer": str,
               "want_mo": bool, "settings": dict, "prerelax": str}


@dataclass
class WorkflowFile:
    """A loaded workflow file: the graph plus where and how to run it."""

    path: Path
    name: str
    workdir: Path
    store: str
    executor: dict[str, Any]
    workflow: Workflow

    def make_store(self):
        from hetflow.workflows.store import ResultStore

        return ResultStore(self.store)

    def make_executor(self, **overrides: Any):
        from hetflow.workflows.executors import make_executor

        opts = dict(self.executor) | {k: v for k, v in overrides.items() if v is not None}
        return make_executor(opts.pop("type", "local"), **opts)


def _err(where: str, msg: str) -> WorkflowError:
    return WorkflowError(f"{where}: {msg}")


def _check_spec(d: Any, where: str) -> dict[str, Any]:
    if not isinstance(d, dict):
        raise _err(where, f"spec must be a mapping, got {type(d).__name__}")
    for k, v in d.items():
        if k not in _SPEC_TYPES:
            raise _err(where, f"unknown spec key {k!r} (allowed: {', '.join(_SPEC_TYPES)})")
        want = _SPEC_TYPES[k]
        if (isinstance(v, bool) and want is not bool and want != (int, float)) or not isinstance(v, want) \
                or (want == (int, float) and isinstance(v, bool)):
            tname = want.__name__ if isinstance(want, type) else "number"
            raise _err(where, f"spec.{k} must be {tname}, got {type(v).__name__} {v!r}")
    return d


def _merge_spec(base: dict, over: dict) -> dict:
    out = dict(base) | {k: v for k, v in over.items() if k != "settings"}
    if "settings" in base or "settings" in over:
        out["settings"] = dict(base.get("settings") or {}) | dict(over.get("settings") or {})
    return out


def _make_spec(d: dict, where: str) -> CalcSpec:
    try:
        return CalcSpec.from_dict(d)
    except HetflowError as exc:
        raise _err(where, str(exc)) from exc


def _build(entry: dict, where: str) -> list[tuple[str, Atoms]]:
    builder, params = entry["builder"], entry.get("params") or {}
    if not isinstance(params, dict):
        raise _err(where, "params must be a mapping")
    if builder == "molecule":
        from ase.build import molecule

        names = params.get("names")
        if not isinstance(names, list) or not names or set(params) - {"names", "vacuum"}:
            raise _err(where, "builder molecule takes params {names: [..], vacuum: Å}")
        out = []
        for n in names:
            try:
                a = molecule(str(n))
            except KeyError:
                raise _err(where, f"unknown molecule {n!r} (ASE G2 set)") from None
            if params.get("vacuum"):
                a.center(vacuum=float(params["vacuum"]))
            out.append((str(n), a))
        if entry.get("name"):
            base = entry["name"]
            out = [(base if len(out) == 1 else f"{base}_{i}", a) for i, (_, a) in enumerate(out)]
        return out
    if not isinstance(builder, str) or ":" not in builder or not builder.startswith("hetflow."):
        raise _err(where, f"unknown builder {builder!r}: use 'molecule' or 'hetflow.<module>:<function>'")
    mod, func = builder.split(":", 1)
    try:
        fn = getattr(importlib.import_module(mod), func)
    except (ImportError, AttributeError):
        raise _err(where, f"builder {builder!r} not found") from None
    try:
        res = fn(**params)
    except HetflowError as exc:
        raise _err(where, str(exc)) from exc
    except TypeError as exc:
        raise _err(where, f"builder {builder!r}: {exc}") from exc
    items = res if isinstance(res, (list, tuple)) else [res]
    if not all(isinstance(a, Atoms) for a in items):
        raise _err(where, f"builder {builder!r} must return Atoms or a list of Atoms")
    base = entry.get("name") or func
    return [(base if len(items) == 1 else f"{base}_{i}", a) for i, a in enumerate(items)]


def _read(entry: dict, where: str, root: Path) -> list[tuple[str, Atoms]]:
    from ase.io import read

    path = Path(entry["file"])
    path = path if path.is_absolute() else root / path
    if not path.exists():
        raise _err(where, f"structure file not found: {path}")
    index = entry.get("index", ":")
    if not isinstance(index, (str, int)):
        raise _err(where, "index must be a string like ':' or '0:3' or an integer")
    try:
        frames = read(str(path), index=index)
    except KeyError as exc:
        raise _err(where, f"cannot read {path.name}: unknown element symbol {exc.args[0]!r}") from None
    except Exception as exc:  # noqa: BLE001 - any parse problem is a user problem
        raise _err(where, f"cannot read {path.name}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from exc
    frames = frames if isinstance(frames, list) else [frames]
    base = entry.get("name") or path.stem
    return [(base if len(frames) == 1 else f"{base}_{i}", a) for i, a in enumerate(frames)]


def load_workflow_file(path: str | Path) -> WorkflowFile:
    """Parse and validate a workflow YAML file; raises WorkflowError with a one-line message."""
    path = Path(path)
    if not path.exists():
        raise WorkflowError(f"workflow file not found: {path}")
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise WorkflowError(f"{path.name}: invalid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(doc, dict):
        raise WorkflowError(f"{path.name}: top level must be a mapping")
    where = path.name
    unknown = set(doc) - TOP_KEYS
    if unknown:
        raise _err(where, f"unknown key(s) {', '.join(sorted(map(str, unknown)))} (allowed: {', '.join(sorted(TOP_KEYS))})")
    root = path.parent
    name = doc.get("name", path.stem)
    if not isinstance(name, str) or not name:
        raise _err(where, "name must be a non-empty string")
    for key in ("workdir", "store"):
        if key in doc and not isinstance(doc[key], str):
            raise _err(where, f"{key} must be a string, got {type(doc[key]).__name__}")
    workdir = Path(doc.get("workdir", f"{path.stem}-work"))
    workdir = workdir if workdir.is_absolute() else root / workdir
    store = doc.get("store")
    if store is None:
        store = str(workdir / "results.db")
    elif not store.startswith(("postgresql://", "postgres://")) and not Path(store).is_absolute():
        store = str(root / store)
    base_spec = _check_spec(doc.get("spec", {}), f"{where}: spec")
    _make_spec(base_spec, f"{where}: spec")

    ex = doc.get("executor", {"type": "local"})
    if isinstance(ex, str):
        ex = {"type": ex}
    if not isinstance(ex, dict):
        raise _err(where, "executor must be a mapping like {type: local, workers: 2}")
    ex = dict(ex)
    ex.setdefault("type", "local")
    if ex["type"] not in EXECUTORS:
        raise _err(where, f"executor.type {ex['type']!r} unknown (choose {', '.join(EXECUTORS)})")
    try:  # validate options now, not at run time
        from hetflow.workflows.executors import make_executor

        make_executor(ex["type"], **{k: v for k, v in ex.items() if k != "type"})
    except (TypeError, ValueError) as exc:  # wrong option names or types (workers: many)
        raise _err(where, f"executor: {exc}") from None
    except WorkflowError as exc:
        raise _err(where, f"executor: {exc}") from None

    entries = doc.get("structures")
    if not isinstance(entries, list) or not entries:
        raise _err(where, "structures must be a non-empty list")
    wf = Workflow(name)
    seen: set[str] = set()
    for i, e in enumerate(entries):
        w = f"{where}: structures[{i}]"
        if isinstance(e, str):
            e = {"file": e}
        if not isinstance(e, dict):
            raise _err(w, f"must be a file name or a mapping, got {type(e).__name__}")
        bad = set(e) - ENTRY_KEYS
        if bad:
            raise _err(w, f"unknown key(s) {', '.join(sorted(map(str, bad)))} (allowed: {', '.join(sorted(ENTRY_KEYS))})")
        sources = [k for k in ("file", "builder") if k in e]
        if len(sources) > 1:
            raise _err(w, "give either file or builder, not both")
        if not sources and "from" not in e:
            raise _err(w, "needs file, builder or from")
        if "name" in e and not isinstance(e["name"], str):
            raise _err(w, "name must be a string")
        spec = _make_spec(_merge_spec(base_spec, _check_spec(e.get("spec", {}), w)), w)
        if "file" in e:
            items = _read(e, w, root)
        elif "builder" in e:
            items = _build(e, w)
        else:
            if "name" not in e:
                raise _err(w, "an entry with from: needs a name")
            items = [(e["name"], None)]
        start = e.get("from")
        if start is not None and not isinstance(start, str):
            raise _err(w, "from must be a task name")
        for tname, atoms in items:
            if tname in seen:
                raise _err(w, f"duplicate task name {tname!r}")
            seen.add(tname)
            wf.add_calc(tname, atoms, spec, start_from=start)
    wf.validate()
    return WorkflowFile(path=path, name=name, workdir=workdir, store=store, executor=ex, workflow=wf)
