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
      - {builder: nanocrystal, params: {phase: CsPbCl3, size: [2, 2, 2]}, name: nc}
      - {name: CH4_gfn2, from: CH4, spec: {method: GFN2-xTB}}  # start from CH4's final geometry
    executor: {type: local, workers: 2, threads: 1}
    # executor: {type: slurm, partition: debug, walltime: "00:30:00", threads: 2, max_retries: 2}

Builders come from an allow-list (:data:`BUILDERS`): ``molecule`` (ASE's G2 set, params
``names``) and the registered hetflow structure builders, by short name or by their
``module:function`` path; their parameters are checked against the builder's signature and
the validation layer (:mod:`hetflow.validate`) before it is called.  Nothing else in a
workflow file is ever imported or called.  Reading commands (``status``, ``results``,
``render-job``) load the file with ``structures=False``: no structure is read or built.

The file itself is read as a bounded regular file (a FIFO or a device is refused), must be
UTF-8 and a finite document (YAML aliases that expand to more than
:data:`hetflow.validate.MAX_DATA_NODES` values are refused).
"""

from __future__ import annotations

import importlib
import inspect
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from ase import Atoms

from hetflow import validate
from hetflow.calculators.base import CalcSpec
from hetflow.errors import HetflowError, InputError, WorkflowError
from hetflow.workflows.graph import Workflow

#: the structure builders a workflow file may call: short name → "module:function"
BUILDERS: dict[str, str] = {
    "nanocrystal": "hetflow.structures.nanocrystal:cut_nanocrystal",
    "heterostructure": "hetflow.structures.interface:build_heterostructure",
    "slab": "hetflow.structures.interface:build_slab",
    "phase": "hetflow.structures.phases:get_phase",
    "zif_fragment": "hetflow.structures.zif:zif_fragment",
    "perovskite_fragment": "hetflow.structures.zif:perovskite_fragment",
}
_BUILDER_PATHS = {v: k for k, v in BUILDERS.items()}
_MAX_BUILDER_INT = 10_000
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
    workflow: Workflow | None
    #: task names known without reading or building structures (file order)
    declared: list[str] = field(default_factory=list)

    @property
    def store_shown(self) -> str:
        """The store location with credentials hidden."""
        from hetflow.workflows.store import redact

        return redact(self.store)

    def make_store(self):
        from hetflow.workflows.store import ResultStore

        return ResultStore(self.store)

    def make_executor(self, **overrides: Any):
        from hetflow.workflows.executors import make_executor

        opts = dict(self.executor) | {k: v for k, v in overrides.items() if v is not None}
        return make_executor(opts.pop("type", "local"), **opts)

    def task_names(self) -> list[str]:
        """Task names in file order: the built graph's, else the declared ones, completed by
        the work directory's manifest (tasks whose names come from reading files or builders)."""
        if self.workflow is not None:
            return list(self.workflow.tasks)
        names = list(self.declared)
        from hetflow.workflows._engine import load_manifest

        man = load_manifest(self.workdir)
        tasks = man.get("tasks") if man else None
        if isinstance(tasks, dict):
            names += [n for n in tasks if isinstance(n, str) and n not in names]
        return names


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
    _check_programs(d.get("settings") or {}, where)
    try:
        return CalcSpec.from_dict(d)
    except HetflowError as exc:
        raise _err(where, str(exc)) from exc
    except (TypeError, ValueError) as exc:
        raise _err(where, f"spec: {validate.printable(exc)}") from None


_CP2K_PROGRAM = re.compile(r"cp2k(\.[a-z]+)?")
_BLAS_LIBRARY = re.compile(r"lib[A-Za-z0-9_]*blas[A-Za-z0-9_]*\.so(\.[0-9]+)*")


def _check_programs(settings: Any, where: str) -> None:
    """Settings that choose a program or a library to load may name only what they are for:
    a workflow file never runs an arbitrary program (``executable``) nor preloads an arbitrary
    library into a worker (``blas``).  Other choices: HETFLOW_CP2K / HETFLOW_BLAS."""
    if not isinstance(settings, dict):
        return
    exe = settings.get("executable")
    if exe is not None and (not isinstance(exe, str) or not _CP2K_PROGRAM.fullmatch(Path(exe).name)
                            or ("/" in exe and not exe.startswith("/"))):
        raise _err(where, f"settings.executable {validate.shown(exe)} must name a CP2K program (cp2k.psmp, "
                          "/opt/cp2k/bin/cp2k.popt …); set HETFLOW_CP2K for anything else")
    blas = settings.get("blas")
    if blas is not None and not (isinstance(blas, str) and (blas in ("auto", "openblas", "bundled") or (
            blas.startswith("/") and _BLAS_LIBRARY.fullmatch(Path(blas).name)))):
        raise _err(where, f"settings.blas {validate.shown(blas)} must be auto, openblas, bundled or the absolute "
                          "path of a BLAS library (lib…blas….so); set HETFLOW_BLAS for anything else")


def _builder_params(params: Any, where: str) -> dict[str, Any]:
    try:
        params = validate.mapping(params, "params")
        for k, v in params.items():
            validate.finite_data(v, f"params.{k}")
    except InputError as exc:
        raise _err(where, str(exc)) from None
    return params


def _check_builder_value(key: str, value: Any, where: str) -> None:
    """Size-like parameters (``size``, ``partner_cells``, ``inplane``, ``trials`` …) by their rule
    in :data:`hetflow.validate.SIZES` — whatever their type, before the builder allocates
    anything (also on load by reading commands); other integers bounded (no hang, no OOM)."""
    if key in validate.SIZES:
        try:
            validate.check_size(key, value, f"params.{key}")
        except InputError as exc:
            raise _err(where, str(exc)) from None
        return
    ints = [v for v in (value if isinstance(value, list) else [value]) if isinstance(v, int)
            and not isinstance(v, bool)]
    for v in ints:
        if abs(v) > _MAX_BUILDER_INT:
            raise _err(where, f"params.{key} = {v} is out of range (|value| <= {_MAX_BUILDER_INT})")


_ANNOTATION_TYPES = {"str": (str,), "int": (int,), "float": (int, float), "bool": (bool,), "None": (type(None),)}


def _check_annotation(builder: str, p: inspect.Parameter, value: Any, where: str) -> None:
    """A YAML value fits the builder parameter's annotation (``str``, ``int``, ``float``,
    ``bool``, ``None`` and ``tuple``/``list`` parts; other parts such as ``Atoms`` cannot come
    from YAML and are ignored)."""
    ann = p.annotation if isinstance(p.annotation, str) else getattr(p.annotation, "__name__", "")
    if not ann or ann is inspect.Parameter.empty:
        return
    parts = [x.strip() for x in re.split(r"\|", re.sub(r"\[.*\]", "", str(ann)))]
    allowed: tuple = ()
    for part in parts:
        if part in _ANNOTATION_TYPES:
            allowed += _ANNOTATION_TYPES[part]
        elif part in ("tuple", "list", "Sequence"):
            allowed += (list,)
    if not allowed:
        return
    if isinstance(value, bool) and bool not in allowed:
        ok = False
    else:
        ok = isinstance(value, allowed)
    if not ok:
        raise _err(where, f"builder {builder}: params.{p.name} must be {ann}, got {type(value).__name__} "
                          f"{validate.shown(value)}")


def _molecules(entry: dict, params: dict, where: str) -> list[tuple[str, Atoms]]:
    from ase.build import molecule

    names = params.get("names")
    if not isinstance(names, list) or not names or set(params) - {"names", "vacuum"}:
        raise _err(where, "builder molecule takes params {names: [..], vacuum: Å}")
    vacuum = params.get("vacuum")
    if vacuum is not None:
        try:
            vacuum = validate.number(vacuum, "params.vacuum", lo=0, hi=1000)
        except InputError as exc:
            raise _err(where, str(exc)) from None
    out = []
    for n in names:
        if not isinstance(n, str):
            raise _err(where, f"molecule names must be strings, got {validate.shown(n)}")
        try:
            a = molecule(n)
        except (KeyError, ValueError):
            raise _err(where, f"unknown molecule {validate.shown(n)} (ASE G2 set)") from None
        if vacuum:
            a.center(vacuum=float(vacuum))
        out.append((n, a))
    if entry.get("name"):
        base = entry["name"]
        out = [(base if len(out) == 1 else f"{base}_{i}", a) for i, (_, a) in enumerate(out)]
    return out


def _resolve_builder(builder: Any, where: str) -> tuple[str, str]:
    """(short name, "module:function") of an allowed builder, else a one-line error."""
    if isinstance(builder, str) and builder in BUILDERS:
        return builder, BUILDERS[builder]
    if isinstance(builder, str) and builder in _BUILDER_PATHS:
        return _BUILDER_PATHS[builder], builder
    allowed = ", ".join(["molecule", *BUILDERS])
    raise _err(where, f"unknown builder {validate.shown(builder)}: use one of {allowed}")


def _check_builder_entry(entry: dict, where: str) -> None:
    """Everything about a builder entry that can be checked without calling it."""
    params = _builder_params(entry.get("params"), where)
    if entry["builder"] == "molecule":
        names = params.get("names")
        if not isinstance(names, list) or not names or set(params) - {"names", "vacuum"}:
            raise _err(where, "builder molecule takes params {names: [..], vacuum: Å}")
        bad = [n for n in names if not isinstance(n, str)]
        if bad:
            raise _err(where, f"molecule names must be strings, got {validate.shown(bad[0])}")
        return
    _resolve_builder(entry["builder"], where)
    for k, v in params.items():
        _check_builder_value(k, v, where)


def _build(entry: dict, where: str) -> list[tuple[str, Atoms]]:
    builder = entry["builder"]
    params = _builder_params(entry.get("params"), where)
    if builder == "molecule":
        return _molecules(entry, params, where)
    short, target = _resolve_builder(builder, where)
    for k, v in params.items():
        _check_builder_value(k, v, where)
    mod, func = target.split(":", 1)
    fn = getattr(importlib.import_module(mod), func)
    sig = inspect.signature(fn)
    accepted = [p.name for p in sig.parameters.values()
                if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise _err(where, f"builder {short} takes no parameter(s) {', '.join(unknown)} "
                          f"(parameters: {', '.join(accepted)})")
    missing = [p.name for p in sig.parameters.values() if p.default is p.empty
               and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in params]
    if missing:
        raise _err(where, f"builder {short} needs parameter(s) {', '.join(missing)}")
    for p in sig.parameters.values():
        if p.name in params:
            _check_annotation(short, p, params[p.name], where)
    args = {k: tuple(v) if isinstance(v, list) and k in ("size", "inplane") else v for k, v in params.items()}
    try:
        res = fn(**args)
    except HetflowError as exc:
        raise _err(where, str(exc)) from exc
    except Exception as exc:  # noqa: BLE001 - a registered builder given parameters it cannot use
        raise _err(where, f"builder {short}: {type(exc).__name__}: {validate.printable(exc)}") from None
    items = res if isinstance(res, (list, tuple)) else [res]
    if not items or not all(isinstance(a, Atoms) for a in items):
        raise _err(where, f"builder {short} must return Atoms or a list of Atoms")
    base = entry.get("name") or short
    return [(base if len(items) == 1 else f"{base}_{i}", a) for i, a in enumerate(items)]


def _file_path(entry: dict, where: str, root: Path) -> Path:
    try:
        path = validate.user_path(entry["file"], "file")
    except InputError as exc:
        raise _err(where, str(exc)) from None
    return path if path.is_absolute() else root / path


def _index(entry: dict, where: str) -> str | int:
    index = entry.get("index", ":")
    if isinstance(index, bool) or not isinstance(index, (str, int)) or \
            (isinstance(index, str) and not re.fullmatch(r"-?\d*(:-?\d*){0,2}", index.strip())):
        raise _err(where, "index must be a string like ':' or '0:3' or an integer")
    return index


def _read(entry: dict, where: str, root: Path) -> list[tuple[str, Atoms]]:
    from ase.io import read

    path = _file_path(entry, where, root)
    index = _index(entry, where)
    try:
        validate.structure_file(path, "structure file")
    except InputError as exc:
        raise _err(where, str(exc)) from None
    try:
        frames = read(str(path), index=index)
    except KeyError as exc:
        raise _err(where, f"cannot read {path.name}: unknown element symbol {exc.args[0]!r}") from None
    except Exception as exc:  # noqa: BLE001 - any parse problem is a user problem
        raise _err(where, f"cannot read {path.name}: {validate.read_failure(exc)}") from exc
    frames = frames if isinstance(frames, list) else [frames]
    if not frames:
        raise _err(where, f"{path.name}: index {index!r} selects no frame")
    for a in frames:
        try:
            validate.ordered_occupancies(a, path.name)
            if path.suffix.lower() == ".cif":
                validate.crystal_cell(a, path.name)
        except InputError as exc:
            raise _err(where, str(exc)) from None
    base = entry.get("name") or validate.name_from_path(path)
    return [(base if len(frames) == 1 else f"{base}_{i}", a) for i, a in enumerate(frames)]


def _declared(entry: dict) -> list[str]:
    """Task names an entry certainly yields, without reading or building anything (a file or
    a hetflow builder may yield several frames: their names come from the manifest)."""
    if entry.get("builder") == "molecule":
        names = [n for n in (entry.get("params") or {}).get("names") or [] if isinstance(n, str)]
        if entry.get("name"):
            return [entry["name"]] if len(names) == 1 else [f"{entry['name']}_{i}" for i in range(len(names))]
        return names
    if "file" in entry or "builder" in entry:
        return []
    return [entry["name"]]


def load_workflow_file(path: str | Path, structures: bool = True) -> WorkflowFile:
    """Parse and validate a workflow YAML file; raises WorkflowError with a one-line message.

    ``structures=False`` (reading commands): validate everything that can be validated
    without reading a structure file or calling a builder, and return ``workflow=None``.
    """
    try:
        path = validate.user_path(path, "workflow file")
        text = validate.read_text(path, "workflow file", max_bytes=validate.MAX_TEXT_FILE_BYTES,
                                  missing=f"workflow file not found: {path}")
    except InputError as exc:
        raise WorkflowError(str(exc)) from None
    fname = validate.printable(path.name)
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise WorkflowError(f"{fname}: invalid YAML{where}: {validate.printable(getattr(exc, 'problem', None) or exc)}") from None
    except RecursionError:
        raise WorkflowError(f"{fname}: nested too deeply") from None
    if not isinstance(doc, dict):
        raise WorkflowError(f"{fname}: top level must be a mapping")
    try:
        validate.plain_data(doc, fname)
    except InputError as exc:
        raise WorkflowError(str(exc)) from None
    where = fname
    unknown = set(doc) - TOP_KEYS
    if unknown:
        raise _err(where, f"unknown key(s) {', '.join(sorted(map(validate.printable, map(str, unknown))))} "
                          f"(allowed: {', '.join(sorted(TOP_KEYS))})")
    root = path.parent
    name = doc.get("name", validate.name_from_path(path))
    if not isinstance(name, str) or not name:
        raise _err(where, "name must be a non-empty string")
    try:
        validate.name(name, "name")
        for key in ("workdir", "store"):
            if key in doc and not isinstance(doc[key], str):
                raise InputError(f"{key} must be a string, got {type(doc[key]).__name__}")
            if key in doc:
                validate.text(doc[key], key)
    except InputError as exc:
        raise _err(where, str(exc)) from None
    workdir = Path(doc.get("workdir", f"{validate.name_from_path(path)}-work")).expanduser()
    workdir = workdir if workdir.is_absolute() else root / workdir
    store = doc.get("store")
    if store is None:
        store = str(workdir / "results.db")
    elif not store.startswith(("postgresql://", "postgres://")):
        sp = Path(store).expanduser()
        store = str(sp if sp.is_absolute() else root / sp)
    base_spec = _check_spec(doc.get("spec", {}), f"{where}: spec")
    _make_spec(base_spec, f"{where}: spec")

    ex = doc.get("executor", {"type": "local"})
    if isinstance(ex, str):
        ex = {"type": ex}
    if not isinstance(ex, dict):
        raise _err(where, "executor must be a mapping like {type: local, workers: 2}")
    ex = dict(ex)
    ex.setdefault("type", "local")
    if not isinstance(ex["type"], str) or ex["type"] not in EXECUTORS:
        raise _err(where, f"executor.type {validate.shown(ex['type'])} unknown (choose {', '.join(EXECUTORS)})")
    bad_keys = [k for k in ex if not isinstance(k, str)]
    if bad_keys:
        raise _err(where, f"executor: option names must be strings, got {validate.shown(bad_keys[0])}")
    try:  # validate options now, not at run time
        from hetflow.workflows.executors import make_executor

        make_executor(ex["type"], **{k: v for k, v in ex.items() if k != "type"})
    except HetflowError as exc:
        raise _err(where, f"executor: {exc}") from None
    except (TypeError, ValueError) as exc:  # wrong option names or types (workers: many)
        raise _err(where, f"executor: {validate.printable(exc)}") from None

    entries = doc.get("structures")
    if not isinstance(entries, list) or not entries:
        raise _err(where, "structures must be a non-empty list")
    wf = Workflow(name) if structures else None
    seen: set[str] = set()
    declared: list[str] = []
    for i, e in enumerate(entries):
        w = f"{where}: structures[{i}]"
        if isinstance(e, str):
            e = {"file": e}
        if not isinstance(e, dict):
            raise _err(w, f"must be a file name or a mapping, got {type(e).__name__}")
        bad = set(e) - ENTRY_KEYS
        if bad:
            raise _err(w, f"unknown key(s) {', '.join(sorted(map(validate.printable, map(str, bad))))} "
                          f"(allowed: {', '.join(sorted(ENTRY_KEYS))})")
        sources = [k for k in ("file", "builder") if k in e]
        if len(sources) > 1:
            raise _err(w, "give either file or builder, not both")
        if not sources and "from" not in e:
            raise _err(w, "needs file, builder or from")
        if "name" in e and not isinstance(e["name"], str):
            raise _err(w, "name must be a string")
        try:
            if "name" in e:
                validate.name(e["name"], "name")
            if "file" in e and not isinstance(e["file"], str):
                raise InputError(f"file must be a string, got {type(e['file']).__name__}")
        except InputError as exc:
            raise _err(w, str(exc)) from None
        start = e.get("from")
        if start is not None and not isinstance(start, str):
            raise _err(w, "from must be a task name")
        spec = _make_spec(_merge_spec(base_spec, _check_spec(e.get("spec", {}), w)), w)
        if not sources and "name" not in e:
            raise _err(w, "an entry with from: needs a name")
        if not structures:
            if "builder" in e:
                _check_builder_entry(e, w)
            elif "file" in e:
                _file_path(e, w, root)
                _index(e, w)
            declared += [n for n in _declared(e) if n not in declared]
            continue
        if "file" in e:
            items = _read(e, w, root)
        elif "builder" in e:
            items = _build(e, w)
        else:
            items = [(e["name"], None)]
        for tname, atoms in items:
            if tname in seen:
                raise _err(w, f"duplicate task name {validate.shown(tname)}")
            seen.add(tname)
            try:
                wf.add_calc(tname, atoms, spec, start_from=start)
            except WorkflowError as exc:
                raise _err(w, str(exc)) from None
    if wf is not None:
        wf.validate()
        declared = list(wf.tasks)
    return WorkflowFile(path=path, name=name, workdir=workdir, store=store, executor=ex, workflow=wf,
                        declared=declared)
