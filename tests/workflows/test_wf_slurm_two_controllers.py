"""Two controllers submitting one workflow to a real Slurm at once: every task gets one job.

A controller adopts a live job it finds in ``job.json``; the task claim also closes the
window between claiming a task and recording its job id, so two controllers started at the
same moment never both sbatch it.  The FakeCalculator keeps the jobs cheap (orchestration only).
"""

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slurm

WF = """name: two
spec: {backend: fake, method: LJ, settings: {sleep: 3}}
structures:
  - {builder: molecule, params: {names: [H2O, CH4, NH3]}}
  - {name: CH4_relax, from: CH4, spec: {task: relax}}
executor: {type: slurm, walltime: 5, poll: 0.5}
"""


def test_two_submit_controllers_one_job_per_task(tmp_path, slurm_env):
    (tmp_path / "wf.yaml").write_text(WF)
    cmd = [sys.executable, "-m", "hetflow.cli", "submit", "wf.yaml", "--wait"]
    a = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    b = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    outs = [p.communicate(timeout=600) for p in (a, b)]
    for p, (out, err) in zip((a, b), outs):
        assert p.returncode == 0, out + err
    jobs = {}
    for d in (tmp_path / "wf-work" / "tasks").iterdir():
        info = json.loads((d / "job.json").read_text())
        jobs[d.name] = [h["job_id"] for h in info["history"]]
        assert not (d / "claim.json").exists()
    assert sorted(jobs) == ["CH4", "CH4_relax", "H2O", "NH3"]
    assert all(len(j) == 1 for j in jobs.values()), jobs  # one sbatch per task in total
    from hetflow.workflows.store import ResultStore

    assert ResultStore(tmp_path / "wf-work" / "results.db").count() == 4
