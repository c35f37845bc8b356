"""Issue 14, item 4: a PostgreSQL password is never printed or written by hetflow.

On main the run summary printed the store URL with its password and ``workflow.json``
(mode 0644) held it in clear.  The server here uses trust authentication, so the password in
the URL is accepted (and ignored) — which is all the test needs.
"""

from __future__ import annotations


import pytest

from hardening_helpers import assert_one_line_error, fake_yaml, run_cli, run_marked

SECRET = "s3cr3t-PW-9f4e"


def _with_password(url: str) -> str:
    scheme, rest = url.split("://", 1)
    user, host = rest.split("@", 1)
    return f"{scheme}://{user}:{SECRET}@{host}"


def _all_files_text(root):
    out = []
    for p in root.rglob("*"):
        if p.is_file():
            out.append(p.read_bytes())
    return b"\n".join(out)


def test_password_never_printed_nor_written(tmp_path, pg_store_url):
    url = _with_password(pg_store_url)
    wfy = tmp_path / "wf.yaml"
    wfy.write_text(fake_yaml(["H2O", "CH4"], extra=f"store: '{url}'\n"))
    runs = [run_marked("run", str(wfy), "--no-progress", timeout=180, cwd=tmp_path)]
    assert runs[0].returncode == 0, runs[0].stderr
    assert runs[0].stdout.startswith("t: 0 cached, 2 run")
    assert "store: postgresql://…@" in runs[0].stdout
    runs.append(run_marked("run", str(wfy), "--no-progress", timeout=180, cwd=tmp_path))
    runs.append(run_marked("status", str(wfy), timeout=60, cwd=tmp_path))
    runs.append(run_marked("results", str(wfy), timeout=60, cwd=tmp_path))
    runs.append(run_marked("results", "--store", url, "--all", timeout=60, cwd=tmp_path))
    runs.append(run_marked("render-job", str(wfy), "--task", "H2O", timeout=60, cwd=tmp_path))
    for p in runs:
        assert p.returncode == 0, p.stderr
        assert SECRET not in p.stdout + p.stderr
    assert "2 result(s)" in runs[3].stdout
    manifest = tmp_path / "wf-work" / "workflow.json"
    assert SECRET.encode() not in manifest.read_bytes()
    assert SECRET.encode() not in _all_files_text(tmp_path / "wf-work")


def test_password_not_echoed_when_the_server_is_unreachable(tmp_path):
    pytest.importorskip("psycopg2")
    wfy = tmp_path / "wf.yaml"
    wfy.write_text(fake_yaml(["H2O"], extra=f"store: 'postgresql://bob:{SECRET}@127.0.0.1:1/db?password={SECRET}'\n"))
    line = assert_one_line_error(run_cli("run", str(wfy), cwd=tmp_path), "cannot open result store", "127.0.0.1:1")
    assert SECRET not in line and "bob" not in line


def test_redaction_of_store_locations():
    from hetflow.workflows.store import redact

    assert redact(f"postgresql://u:{SECRET}@h:5432/db") == "postgresql://…@h:5432/db"
    assert SECRET not in redact(f"postgres://h/db?sslmode=require&password={SECRET}")
    assert redact("/data/results.db") == "/data/results.db"
