"""Deferred task inputs: chain links submitted before their parent has finished.

A task that starts from another task's final geometry (``start_from``) has a content key that
is only known once the parent is done.  To let a warm-started chain run on the cluster with
the controller detached, the batch executor submits the link at once with a scheduler-side
dependency (``sbatch --dependency=afterok:<parent job>``) and writes a *deferred*
``input.json``::

    {"name": …, "key": null, "deferred": {"parent": "<parent task>", "parent_dir": "../<dir>"},
     "spec": {…}, "atoms": <own structure or null>}

When the job starts, the worker calls :func:`resolve_deferred`: it reads the parent's
``result.json``, builds the start structure exactly as the controller would
(:meth:`hetflow.workflows.graph.CalcTask.start_atoms`: own labels, parent's positions and cell),
computes the content key and replaces ``input.json`` by the ordinary, resolved input (atomic
rename).  The controller, once the parent is ingested, computes the same key, finds that input
(or the finished result) in place and adopts the running job or ingests the result.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

from ase import Atoms

from hetflow.calculators.base import CalcSpec, calc_key
from hetflow.workflows._taskdir import TaskDir, decode_atoms, encode_atoms, read_json, write_json_atomic


def write_deferred(td: TaskDir, name: str, spec: CalcSpec, atoms: Atoms | None, parent: str,
                   parent_dir: Path) -> None:
    """Write the deferred ``input.json`` of chain link ``name`` (parent's task dir ``parent_dir``)."""
    td.root.mkdir(parents=True, exist_ok=True)
    for stale in (td.result, td.error, td.root / "stopped.json"):
        stale.unlink(missing_ok=True)
    write_json_atomic(td.input, {
        "name": name, "key": None, "spec": spec.to_dict(),
        "atoms": None if atoms is None else encode_atoms(atoms),
        "deferred": {"parent": parent, "parent_dir": os.path.relpath(parent_dir, td.root)},
    })


def is_deferred(td: TaskDir) -> bool:
    d = read_json(td.input)
    return bool(d and d.get("deferred"))


def resolve_deferred(td: TaskDir) -> str:
    """``"resolved"``, ``"plain"`` (nothing to do) or ``"failed"`` (parent has no result:
    ``error.json`` says so; the controller resubmits once the parent is done)."""
    from hetflow.workflows._tasks import CalcTask

    d = read_json(td.input)
    if not d or not d.get("deferred"):
        return "plain"
    info = d["deferred"]
    pdir = (td.root / info["parent_dir"]).resolve()
    parent = read_json(pdir / "result.json")
    if not parent or "atoms" not in parent:
        write_json_atomic(td.error, {
            "name": d["name"], "key": None, "deferred": True, "host": socket.gethostname(),
            "message": f"parent task {info['parent']!r} has no result in {pdir} (failed or lost); "
                       "the controller resubmits this task once the parent is done",
            "start": time.time(), "end": time.time()})
        return "failed"
    spec = CalcSpec.from_dict(d["spec"])
    own = None if d.get("atoms") is None else decode_atoms(d["atoms"])
    atoms = CalcTask(d["name"], own, spec, start_from=info["parent"]).start_atoms(decode_atoms(parent["atoms"]))
    key = calc_key(atoms, spec)
    write_json_atomic(td.input, {"name": d["name"], "key": key, "spec": spec.to_dict(),
                                 "atoms": encode_atoms(atoms),
                                 "resolved_from": {"parent": info["parent"], "parent_key": parent.get("key"),
                                                   "at": time.time()}})
    return "resolved"
