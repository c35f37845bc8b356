"""Job scripts for Slurm/PBS/LSF: fields, walltime formats, and hostile values rendered inert."""

import subprocess
from pathlib import Path

import pytest

from hetflow.errors import WorkflowError
from hetflow.workflows._jobscript import JobResources, parse_walltime, render_job


@pytest.mark.parametrize("value, secs", [
    ("01:30:00", 5400), ("1-00:00:00", 86400), ("2-03:04:05", 2 * 86400 + 3 * 3600 + 4 * 60 + 5),
    (90, 5400), ("90", 5400), ("10:30", 630), (0.5, 30),
])
def test_walltime_formats(value, secs):
    assert parse_walltime(value) == secs


@pytest.mark.parametrize("bad", ["1:60:00", "abc", "1h", "-5", 0, "00:00:00", True, "1-2:3:4:5"])
def test_walltime_invalid(bad):
    with pytest.raises(WorkflowError, match="walltime"):
        parse_walltime(bad)


RES = dict(partition="debug", account="proj42", nodes=2, ntasks=8, threads=4, walltime="1-02:03:04",
           memory="16G", modules=["cp2k/2023.1"], env={"OMP_PLACES": "cores"}, launcher=["srun"])


def test_slurm_fields():
    txt = render_job("slurm", JobResources(**RES), "hs_S1", "/scratch/run 1")
    for line in ["#SBATCH --job-name=hs_S1", "#SBATCH --partition=debug", "#SBATCH --account=proj42",
                 "#SBATCH --nodes=2", "#SBATCH --ntasks=8", "#SBATCH --cpus-per-task=4",
                 "#SBATCH --time=1-02:03:04", "#SBATCH --mem=16G", "cd -- '/scratch/run 1'",
                 "module load cp2k/2023.1", "export OMP_PLACES=cores", "export OMP_NUM_THREADS=4"]:
        assert line in txt.splitlines(), line
    assert txt.splitlines()[-1].startswith("srun ") and "hetflow.workflows._worker '/scratch/run 1'" in txt


def test_pbs_fields():
    txt = render_job("pbs", JobResources(**RES), "hs_S1", "/scratch/x")
    lines = txt.splitlines()
    assert "#PBS -N hs_S1" in lines and "#PBS -q debug" in lines and "#PBS -A proj42" in lines
    assert "#PBS -l select=2:ncpus=16:mpiprocs=4:ompthreads=4:mem=16G" in lines
    assert "#PBS -l walltime=26:03:04" in lines


def test_lsf_fields():
    txt = render_job("lsf", JobResources(**RES), "hs_S1", "/scratch/x")
    lines = txt.splitlines()
    assert "#BSUB -J hs_S1" in lines and "#BSUB -q debug" in lines and "#BSUB -P proj42" in lines
    assert "#BSUB -n 32" in lines and '#BSUB -R "span[ptile=16]"' in lines
    assert "#BSUB -W 26:04" in lines  # hours:minutes, rounded up


@pytest.mark.parametrize("sched", ["slurm", "pbs", "lsf"])
def test_hostile_values_render_inert(tmp_path, sched):
    """A job name `x; rm -rf ~` and `$(…)`/`;` in paths, env values and command words stay data."""
    work = tmp_path / "w $(touch pwned1); touch pwned2"
    work.mkdir()
    res = JobResources(env={"EVIL": "$(touch pwned3)`touch pwned4`"})
    txt = render_job(sched, res, "x; rm -rf ~", work, command=["echo", "a; touch pwned5", "$(touch pwned6)"])
    directive = {"slurm": "#SBATCH --job-name=", "pbs": "#PBS -N ", "lsf": "#BSUB -J "}[sched]
    assert f"{directive}x_rm_-rf" in txt.splitlines()
    assert "rm -rf ~" not in txt
    assert subprocess.run(["bash", "-n"], input=txt, text=True).returncode == 0
    script = tmp_path / "job.sh"
    script.write_text(txt)
    p = subprocess.run(["bash", str(script)], cwd=tmp_path, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "a; touch pwned5 $(touch pwned6)"
    created = [f.name for f in list(tmp_path.rglob("pwned*")) + list(Path.cwd().glob("pwned*"))]
    assert created == []


@pytest.mark.parametrize("kw, message", [
    ({"partition": "debug\n#SBATCH --uid=0"}, "invalid partition"),
    ({"account": "a b"}, "invalid account"),
    ({"memory": "lots"}, "invalid memory"),
    ({"env": {"BAD-NAME": "1"}}, "invalid environment variable name"),
    ({"extra_directives": ["--x=1; rm"]}, "invalid scheduler directive"),
    ({"threads": 0}, "threads must be a positive integer"),
    ({"nodes": 2, "ntasks": 1}, r"ntasks \(1\) must be >= nodes \(2\)"),
])
def test_invalid_resources(kw, message):
    with pytest.raises(WorkflowError, match=message):
        JobResources(**kw)


def test_unknown_scheduler():
    with pytest.raises(WorkflowError, match="unknown scheduler 'sge'"):
        render_job("sge", JobResources(), "x", "/tmp")
