#!/usr/bin/env bash
# Install hetflow and the engines it drives.  The apt-get step needs root (or sudo).
# Usage: ./setup.sh            install system packages + hetflow[dev]
#        SKIP_APT=1 ./setup.sh  skip the apt-get step (no root; xTB via tblite still works)
set -euo pipefail
cd "$(dirname "$0")"
if [ "${SKIP_APT:-0}" != 1 ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -q
  # cp2k (cp2k.psmp + mpirun), xtb binary, Debian OpenBLAS (fast BLAS for tblite), Slurm + munge and
  # PostgreSQL for the scheduler and store tests
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q \
      cp2k xtb libopenblas0 openmpi-bin slurm-wlm munge postgresql
fi
# Debian's own python3 is "externally managed" (PEP 668): on such an interpreter install anyway
# (a dedicated compute/CI machine) unless you run this script inside a virtualenv.
if python3 -c 'import sys, sysconfig, os; sys.exit(0 if sys.prefix == sys.base_prefix and os.path.exists(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")) else 1)'; then
  export PIP_BREAK_SYSTEM_PACKAGES=1
fi
# PyTorch CPU build first (the MLIP backends chgnet/sevennet need it): pinned, so pip takes the CPU
# wheel and not a CUDA build of several GB that an unpinned "torch" from chgnet/sevenn would pull
python3 -m pip install -q 'torch==2.13.0'
python3 -m pip install -q -e '.[dev]'
echo "hetflow installed: $(command -v hetflow)"
