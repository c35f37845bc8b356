"""Issue 14, item 2: a workflow file never executes anything but registered structure builders,
and the reading commands (status, results, render-job) never build a structure.

On main the ``builder:`` guard only checked the ``hetflow.`` prefix, so any function of the
package could be called with YAML parameters — ``hetflow.workflows.executors:_run`` runs a
subprocess, ``hetflow.workflows._taskdir:write_json_atomic`` writes a file — under every
command, ``status`` included.
"""

from __future__ import annotations

import os

import pytest

from hardening_helpers import assert_one_line_error, fake_yaml, run_cli, run_marked

EVIL = [
    ("hetflow.workflows.executors:_run", "{cmd: [touch, PWNED]}"),
    ("hetflow.workflows._taskdir:write_json_atomic", "{path: PWNED, obj: {x: 1}}"),
    ("hetflow.cli:main", "{argv: [build, nc, -o, PWNED.extxyz]}"),
    ("hetflow.workflows.wfile:importlib", "{}"),
    ("os:system", "{command: touch PWNED}"),
    ("molecule:__import__", "{}"),
]


@pytest.mark.parametrize("command", ["run", "status", "results", "render-job", "submit"])
@pytest.mark.parametrize("builder, params", EVIL, ids=[b for b, _ in EVIL])
def test_unregistered_builder_is_never_called(tmp_path, command, builder, params):
    wfy = tmp_path / "wf.yaml"
    wfy.write_text("spec: {backend: fake, method: LJ}\n"
                   f"structures: [{{builder: '{builder}', params: {params}}}]\n")
    p = run_cli(command, str(wfy), cwd=tmp_path, env={"PATH": os.environ["PATH"]})
    assert_one_line_error(p, "unknown builder", builder)
    assert not list(tmp_path.glob("PWNED*")), "the workflow file executed code"
    assert sorted(x.name for x in tmp_path.iterdir()) == ["wf.yaml"]


def test_registered_builder_params_are_checked_against_its_signature(tmp_path):
    wfy = tmp_path / "wf.yaml"
    wfy.write_text("spec: {backend: fake, method: LJ}\n"
                   "structures: [{builder: nanocrystal, params: {phase: CsPbCl3, size: [1, 1, 1], evil: 1}}]\n")
    assert_one_line_error(run_cli("run", str(wfy), cwd=tmp_path), "builder nanocrystal takes no parameter", "evil")


def test_builder_size_that_would_exhaust_memory_is_refused(tmp_path):
    wfy = tmp_path / "wf.yaml"
    wfy.write_text("spec: {backend: fake, method: LJ}\n"
                   "structures: [{builder: nanocrystal, params: {phase: CsPbCl3, size: [16, 16, 16]}}]\n")
    p = run_marked("run", str(wfy), timeout=60, cwd=tmp_path)
    assert_one_line_error(p, "4096 octahedra", "at most 512")


def test_reading_commands_never_build_or_read_structures(tmp_path):
    """Entries that would fail (an unknown phase) or block (a FIFO) if built or read: run and
    submit refuse them, status/results/render-job work from the manifest and store alone."""
    wfy = tmp_path / "wf.yaml"
    wfy.write_text(fake_yaml(["H2O", "CH4"]))
    p = run_marked("run", str(wfy), "--no-progress", timeout=120, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    os.mkfifo(tmp_path / "pipe.xyz")
    wfy.write_text(fake_yaml(["H2O", "CH4"]) +
                   "  - {builder: nanocrystal, params: {phase: NoSuchPhase}, name: never}\n"
                   "  - pipe.xyz\n")
    p = run_marked("status", str(wfy), timeout=60, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert "H2O" in p.stdout and "CH4" in p.stdout and "NoSuchPhase" not in p.stdout + p.stderr
    p = run_marked("results", str(wfy), "--csv", "-", timeout=60, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert [ln.split(",")[0] for ln in p.stdout.splitlines()] == ["task", "H2O", "CH4"]
    p = run_marked("render-job", str(wfy), "--task", "CH4", "--walltime", "10", timeout=60, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert str(tmp_path / "wf-work" / "tasks" / "CH4") in p.stdout
    # run does build: the unknown phase is named (the FIFO comes later and never blocks)
    p = run_marked("run", str(wfy), timeout=60, cwd=tmp_path)
    assert_one_line_error(p, "structures[1]", "NoSuchPhase")


@pytest.mark.parametrize("settings, words", [
    ("{backend: cp2k, method: PBE, settings: {executable: /tmp/evil.sh}}", ("settings.executable", "CP2K program")),
    ("{backend: cp2k, method: PBE, settings: {executable: 'sh -c touch'}}", ("settings.executable",)),
    ("{backend: tblite, method: GFN1-xTB, settings: {blas: /tmp/evil.so}}", ("settings.blas",)),
    ("{backend: tblite, method: GFN1-xTB, settings: {blas: ./libopenblas.so}}", ("settings.blas",)),
])
def test_settings_cannot_name_an_arbitrary_program_or_library(tmp_path, settings, words):
    """Neighbour: a CP2K ``executable`` or a ``blas`` library path in a workflow file would be
    run / LD_PRELOADed by the worker."""
    wfy = tmp_path / "wf.yaml"
    wfy.write_text(f"spec: {settings}\nstructures: [{{builder: molecule, params: {{names: [H2O]}}}}]\n")
    for cmd in ("run", "status"):
        assert_one_line_error(run_cli(cmd, str(wfy), cwd=tmp_path), "wf.yaml", *words)
    assert sorted(x.name for x in tmp_path.iterdir()) == ["wf.yaml"]
