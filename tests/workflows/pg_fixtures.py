"""PostgreSQL fixtures (a real throw-away server), shared by tests/workflows and tests/hardening."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for d in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (d / name).exists():
            return str(d / name)
    return None


@pytest.fixture(scope="session")
def postgres_url():
    """postgresql:// URL of a throw-away server (initdb + pg_ctl as user postgres, free port)."""
    try:
        import ase_db_backends  # noqa: F401
        import psycopg2  # noqa: F401
    except ImportError as exc:
        pytest.skip(f"PostgreSQL store needs psycopg2-binary and ase-db-backends: {exc}")
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not initdb or not pg_ctl:
        pytest.skip("PostgreSQL server binaries not installed (apt-get install postgresql)")
    try:
        pw = pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("no 'postgres' system user to run the server as")
    root = Path(tempfile.mkdtemp(prefix="hetflow-pg-"))
    os.chown(root, pw.pw_uid, pw.pw_gid)
    data = root / "data"
    with socket.socket() as s:
        s.bind(("", 0))
        port = s.getsockname()[1]

    def as_pg(cmd):
        return subprocess.run(cmd, user="postgres" if os.geteuid() == 0 else None,
                              capture_output=True, text=True, cwd=root)

    p = as_pg([initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"])
    if p.returncode != 0:
        pytest.skip(f"initdb failed: {p.stderr.strip()[:200]}")
    p = as_pg([pg_ctl, "-D", str(data), "-l", str(root / "log"), "-w", "-t", "30", "-o",
               f"-p {port} -k {root} -c listen_addresses=localhost", "start"])
    if p.returncode != 0:
        pytest.skip(f"PostgreSQL server could not be started: {p.stderr.strip()[:200]}")
    time.sleep(0.5)
    url = f"postgresql://postgres@localhost:{port}/postgres"
    yield url
    as_pg([pg_ctl, "-D", str(data), "-m", "fast", "stop"])
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def pg_store_url(postgres_url):
    """A fresh database on the session server for one test."""
    import psycopg2

    name = f"t{os.getpid()}_{int(time.time() * 1e6) % 10**9}"
    con = psycopg2.connect(postgres_url)
    con.autocommit = True
    con.cursor().execute(f"CREATE DATABASE {name}")
    con.close()
    return postgres_url.rsplit("/", 1)[0] + f"/{name}"


