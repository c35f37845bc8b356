"""Start and stop a real single-node Slurm (slurmctld + slurmd + munge) for the tests.

Adapted from the reference recipe ../shared/slurm/start-local-slurm.sh: same configuration
(no accounting database, cons_tres, one partition ``debug``), but on free ports and in a
private state directory so it cannot collide with another cluster on the machine.  Needs
root and Debian's ``slurm-wlm`` + ``munge``.  Usable from the shell too:

    python tests/workflows/slurm_cluster.py start DIR   # prints `export SLURM_CONF=…`
    python tests/workflows/slurm_cluster.py stop DIR
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path


class SlurmUnavailable(RuntimeError):
    """Why a local Slurm cannot be started here (used as the skip reason)."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        return s.getsockname()[1]


def _ensure_munge() -> None:
    if subprocess.run("munge -n | unmunge", shell=True, capture_output=True).returncode == 0:
        return
    if not Path("/etc/munge/munge.key").exists() or Path("/etc/munge/munge.key").stat().st_size == 0:
        if shutil.which("mungekey"):
            subprocess.run(["mungekey", "-c"], capture_output=True)
        else:
            subprocess.run(["/usr/sbin/create-munge-key", "-f"], capture_output=True)
    Path("/run/munge").mkdir(parents=True, exist_ok=True)
    subprocess.run(["chown", "munge:munge", "/run/munge"], capture_output=True)
    subprocess.run(["munged", "--force"], capture_output=True)
    time.sleep(1)
    if subprocess.run("munge -n | unmunge", shell=True, capture_output=True).returncode != 0:
        raise SlurmUnavailable("munged could not be started")


def start(state_dir: str | Path, timeout: float = 40.0) -> dict[str, str]:
    """Start the cluster; returns the environment (``SLURM_CONF``) to use it."""
    if os.geteuid() != 0:
        raise SlurmUnavailable("starting a local Slurm needs root")
    for exe in ("slurmctld", "slurmd", "munged", "sbatch", "squeue"):
        if not shutil.which(exe):
            raise SlurmUnavailable(f"{exe} not installed (apt-get install slurm-wlm munge)")
    _ensure_munge()
    d = Path(state_dir).resolve()
    for sub in ("spool", "state"):
        (d / sub).mkdir(parents=True, exist_ok=True)
    host = socket.gethostname().split(".")[0]
    cpus = os.cpu_count() or 1
    mem_mb = int(open("/proc/meminfo").read().split()[1]) // 1024 - 1024
    conf = d / "slurm.conf"
    conf.write_text(f"""ClusterName=hetflowtest
SlurmctldHost={host}
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
ReturnToService=2
SlurmctldPidFile={d}/slurmctld.pid
SlurmdPidFile={d}/slurmd.pid
SlurmdSpoolDir={d}/spool
StateSaveLocation={d}/state
SlurmUser=root
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
MinJobAge=300
SlurmctldLogFile={d}/slurmctld.log
SlurmdLogFile={d}/slurmd.log
NodeName={host} CPUs={cpus} RealMemory={max(mem_mb, 512)} State=UNKNOWN
PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP
""")
    env = {"SLURM_CONF": str(conf)}
    full = os.environ | env
    for daemon in ("slurmctld", "slurmd"):
        p = subprocess.run([daemon, "-f", str(conf)], env=full, capture_output=True, text=True)
        if p.returncode != 0:
            stop(d)
            raise SlurmUnavailable(f"{daemon} failed to start: {p.stderr.strip()[:200]}")
    t0 = time.time()
    while time.time() - t0 < timeout:
        p = subprocess.run(["sinfo", "-h", "-o", "%T"], env=full, capture_output=True, text=True)
        if p.returncode == 0 and any(s.strip().rstrip("*") in ("idle", "mixed", "allocated")
                                     for s in p.stdout.split()):
            return env
        time.sleep(1)
    stop(d)
    raise SlurmUnavailable(f"local Slurm did not become ready; see {d}/slurmctld.log and {d}/slurmd.log")


def stop(state_dir: str | Path) -> None:
    """Stop the daemons this module started (by the pids they recorded)."""
    d = Path(state_dir)
    for name in ("slurmd.pid", "slurmctld.pid"):
        f = d / name
        try:
            os.kill(int(f.read_text().strip()), 15)
        except (OSError, ValueError):
            pass


if __name__ == "__main__":
    cmd, where = sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "/tmp/hetflow-test-slurm"
    if cmd == "start":
        print(f"export SLURM_CONF={start(where)['SLURM_CONF']}")
    else:
        stop(where)
