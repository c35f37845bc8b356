"""`hetflow reproduce` through a real single-node Slurm: detached submission, reruns collect
the finished jobs and submit the next steps, the table appears when everything is in."""

import subprocess
import sys
import time

import pytest

pytestmark = [pytest.mark.slurm, pytest.mark.slow]


def _reproduce(out, *extra):
    return subprocess.run([sys.executable, "-m", "hetflow.cli", "reproduce", "s1", "--quick", "--max-steps", "1",
                           "--size", "2", "2", "3", "--partner-cells", "1", "--registry", "continuity",
                           "--executor", "slurm", "--threads", "1", "-o", str(out), *extra],
                          capture_output=True, text=True, timeout=900)


def test_reproduce_s1_detached_on_slurm_then_collect(tmp_path, slurm_env):
    first = _reproduce(tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    assert "still queued" in first.stdout and "rerun the same command" in first.stdout
    assert not (tmp_path / "s1.md").exists()
    # keep rerunning (as a user would) until the table is written
    deadline = time.time() + 600
    while not (tmp_path / "s1.md").exists():
        assert time.time() < deadline, "S1 on Slurm did not finish in 10 min"
        time.sleep(5)
        r = _reproduce(tmp_path)
        assert r.returncode == 0, r.stderr[-2000:]
    md = (tmp_path / "s1.md").read_text()
    assert "| 5 |" in md and "junction chosen by continuity" in md
    # one optimiser step cannot converge: the gate prints no number and assesses no conclusion
    assert "bottom-first preferred at N = 1 (stepwise)? not assessed" in md
    assert "every relaxation converged? **no**" in md and "not converged: s1-interface-N1" in md
    # every calculation ran as a batch job: provenance says slurm
    import ase.db

    rows = list(ase.db.connect(str(tmp_path / "results.db")).select())
    assert len(rows) == 17  # 15 + the two NCs with the N = 5 exchanges (strain references)
    assert {r.data["provenance"]["executor"] for r in rows} == {"slurm"}
