"""`hetflow reproduce` trial-model options: validated once, at the edge, in one line."""

import subprocess
import sys

import pytest


def _run(*args):
    return subprocess.run([sys.executable, "-m", "hetflow.cli", "reproduce", "s1", *args],
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("args, message", [
    (("--size", "0", "2", "3"), "--size needs three integers ≥ 1, got 0 2 3"),
    (("--partner-cells", "0"), "hetflow reproduce: --partner-cells must be positive and <= 32, got 0"),
])
def test_trial_model_options_are_validated(tmp_path, args, message):
    r = _run(*args, "-o", str(tmp_path))
    assert r.returncode != 0
    lines = [x for x in r.stderr.strip().splitlines() if x]
    assert lines[-1].lower() == f"error: {message}".lower() and "Traceback" not in r.stderr
    assert not (tmp_path / "results.db").exists()  # refused before anything ran
