"""Benchmark — wall time of ``hetflow reproduce zif`` (full mode) on this machine.

Runs the real command in a fresh output directory (no cache) with the default local executor
(2 workers × 1 thread), records wall time, load average before and after (`uptime`), and the
headline numbers of the report.  Target: ≤ 1 h on 2 idle cores.  Run it under the heavy lock
so no other heavy job shares the cores:

    flock /tmp/hetflow-heavy.lock python3 bench/bench_zif.py [--outdir DIR] [--quick]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import header, save


def _uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--outdir", default=None)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    m = header("hetflow reproduce zif" + (" --quick" if args.quick else ""))
    out = Path(args.outdir or tempfile.mkdtemp(prefix="bench-zif-"))
    cmd = [sys.executable, "-m", "hetflow.cli", "reproduce", "zif", "-o", str(out)] + (["--quick"] if args.quick else [])
    before = _uptime()
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"))
    wall = time.perf_counter() - t0
    after = _uptime()
    (out / "bench-stdout.txt").write_text(proc.stdout + "\n--- stderr ---\n" + proc.stderr)
    md = (out / "zif.md").read_text() if (out / "zif.md").exists() else ""
    head = [line for line in md.splitlines() if line.startswith("| ") and ("E(" in line or "ΔE" in line or "n ×" in line)]
    print(f"   exit {proc.returncode}; wall {wall:.0f} s ({wall / 60:.1f} min); target ≤ 3600 s")
    print(f"   uptime before: {before}\n   uptime after:  {after}")
    print("\n".join("   " + h for h in head[:8]))
    path = save("zif" + ("_quick" if args.quick else ""), {
        "command": " ".join(cmd[1:]), "exit": proc.returncode, "wall_s": wall, "target_s": 3600,
        "uptime_before": before, "uptime_after": after, "outdir": str(out), "report_rows": head[:8]})
    print(f"   wrote {path}")
    return 0 if proc.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
