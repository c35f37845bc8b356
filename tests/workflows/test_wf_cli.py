"""CLI: run / status / results --csv / render-job / submit, and one-line errors (exit 2)."""

import csv
import io
import subprocess
import sys

import pytest


def hf(*args, cwd):
    return subprocess.run([sys.executable, "-m", "hetflow.cli", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300)


WF = """
name: mols
spec: {backend: fake, method: LJ}
structures:
  - {builder: molecule, params: {names: [H2O, CH4, NH3]}}
  - {name: CH4_relax, from: CH4, spec: {task: relax}}
executor: {type: local, workers: 2}
"""


def test_run_status_results(tmp_path):
    (tmp_path / "wf.yaml").write_text(WF)
    p = hf("run", "wf.yaml", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    # not a terminal: a plain progress line per task, then the summary
    assert "\nmols: 0 cached, 4 run" in p.stdout and "mols [0:00:0" in p.stdout and "CH4_relax done" in p.stdout
    p = hf("run", "wf.yaml", "--no-progress", cwd=tmp_path)
    assert p.stdout.startswith("mols: 4 cached, 0 run")
    p = hf("status", "wf.yaml", cwd=tmp_path)
    assert p.returncode == 0 and "CH4_relax" in p.stdout and p.stdout.count("cached") >= 4
    p = hf("results", "wf.yaml", "--csv", "-", cwd=tmp_path)
    rows = list(csv.DictReader(io.StringIO(p.stdout)))
    assert [r["task"] for r in rows] == ["H2O", "CH4", "NH3", "CH4_relax"]
    e = {r["task"]: float(r["energy_eV"]) for r in rows}
    assert e["CH4_relax"] < e["CH4"]
    assert float(rows[3]["fmax_eV_per_A"]) < 0.05  # relaxed to the spec's fmax
    p = hf("results", "--store", "wf-work/results.db", cwd=tmp_path)
    assert p.returncode == 0 and "4 result(s)" in p.stdout


def test_failed_task_exit_status_and_status_tail(tmp_path):
    (tmp_path / "wf.yaml").write_text(WF.replace("executor:", "  - {name: boom, builder: molecule, params: {names: [CO]}, spec: {settings: {fail: kaboom}}}\nexecutor:"))
    p = hf("run", "wf.yaml", cwd=tmp_path)
    assert p.returncode == 1 and "failed boom: CalculatorError: FakeCalculator: kaboom" in p.stdout
    p = hf("status", "wf.yaml", cwd=tmp_path)
    assert "--- boom (failed)" in p.stdout and "error: CalculatorError: FakeCalculator: kaboom" in p.stdout


def test_render_job_and_errors(tmp_path):
    (tmp_path / "wf.yaml").write_text(WF)
    p = hf("render-job", "wf.yaml", "--task", "CH4", "--scheduler", "pbs", "--walltime", "2-00:00:00",
           "--partition", "short", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert "#PBS -l walltime=48:00:00" in p.stdout and "#PBS -q short" in p.stdout
    assert str(tmp_path / "wf-work" / "tasks" / "CH4") in p.stdout
    p = hf("render-job", "--job-name", "x; rm -rf ~", cwd=tmp_path)
    assert "#SBATCH --job-name=x_rm_-rf" in p.stdout and "rm -rf" not in p.stdout
    for args, msg in [(("render-job", "--walltime", "soon"), "error: invalid walltime 'soon'"),
                      (("run", "nope.yaml"), "error: workflow file not found: nope.yaml"),
                      (("submit", "wf.yaml"), "error: no scheduler"),
                      (("status",), "error: give a workflow file or --workdir"),
                      (("status", "--workdir", "."), "error: no workflow state in .")]:
        p = hf(*args, cwd=tmp_path)
        assert p.returncode == 2 and p.stderr.strip().startswith(msg), (args, p.stderr)
        assert "Traceback" not in p.stderr


@pytest.mark.slurm
def test_submit_wait_with_real_slurm(tmp_path, slurm_env):
    (tmp_path / "wf.yaml").write_text(WF.replace("executor: {type: local, workers: 2}",
                                                 "executor: {type: slurm, walltime: 10, poll: 0.5}"))
    p = hf("submit", "wf.yaml", "--wait", cwd=tmp_path)
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.startswith("mols: 0 cached, 4 run")
    p = hf("status", "wf.yaml", cwd=tmp_path)
    assert "workflow mols (slurm)" in p.stdout and p.stdout.count(" done ") == 4
