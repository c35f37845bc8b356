"""YAML workflow files: one-line validation errors naming the entry and the problem."""

import pytest
from ase.io import write
from ase.build import molecule

from hetflow.errors import WorkflowError
from hetflow.workflows.wfile import load_workflow_file


def _load(tmp_path, text):
    p = tmp_path / "wf.yaml"
    p.write_text(text)
    return load_workflow_file(p)


def test_valid_file_builds_graph(tmp_path):
    write(tmp_path / "two.extxyz", [molecule("H2O"), molecule("NH3")])
    wf = _load(tmp_path, """
name: demo
store: out/r.db
spec: {backend: fake, method: LJ, settings: {sigma: 1.4}}
structures:
  - two.extxyz
  - {builder: molecule, params: {names: [CH4]}}
  - {name: CH4_r, from: CH4, spec: {task: relax, settings: {epsilon: 0.02}}}
executor: {type: slurm, partition: debug, walltime: 30, max_retries: 1}
""")
    assert wf.name == "demo" and wf.workflow.tasks == ["two_0", "two_1", "CH4", "CH4_r"]
    t = wf.workflow.task("CH4_r")
    assert t.start_from == "CH4" and t.spec.task == "relax"
    assert t.spec.settings_dict == {"sigma": 1.4, "epsilon": 0.02}
    assert wf.store == str(tmp_path / "out" / "r.db")
    assert wf.workdir == tmp_path / "wf-work"
    assert wf.executor["type"] == "slurm"


@pytest.mark.parametrize("text, message", [
    ("structures: [a.xyz]\nfoo: 1\n", r"wf.yaml: unknown key\(s\) foo \(allowed:"),
    ("spec: {backend: fake, method: LJ, charge: one}\nstructures: [a.xyz]\n",
     r"spec.charge must be int, got str 'one'"),
    ("spec: {backend: fake, method: LJ, colour: red}\nstructures: [a.xyz]\n", r"unknown spec key 'colour'"),
    ("spec: {backend: fake, method: B3LYP}\nstructures: [a.xyz]\n", r"unknown method 'B3LYP' for backend 'fake'"),
    ("structures: []\n", r"structures must be a non-empty list"),
    ("structures: [{fiel: a.xyz}]\n", r"structures\[0\]: unknown key\(s\) fiel"),
    ("structures: [missing.xyz]\n", r"structures\[0\]: structure file not found"),
    ("structures: [{builder: molecule, params: {names: [XYZ]}}]\n", r"unknown molecule 'XYZ'"),
    ("structures: [{builder: 'os:system', params: {}}]\n", r"unknown builder 'os:system'"),
    ("structures: [{from: x}]\n", r"an entry with from: needs a name"),
    ("structures: [{name: y, from: x}]\n", r"y depend on unknown task\(s\) x"),
    ("executor: {type: cloud}\nstructures: [a.xyz]\n", r"executor.type 'cloud' unknown"),
    ("executor: {type: local, cores: 3}\nstructures: [a.xyz]\n", r"unknown local executor option\(s\): cores"),
    ("executor: {type: slurm, walltime: '25:99:00'}\nstructures: [a.xyz]\n", r"invalid walltime '25:99:00'"),
    ("executor: {type: slurm, partition: 'a;b'}\nstructures: [a.xyz]\n", r"invalid partition 'a;b'"),
    ("structures: [a.xyz\n", r"invalid YAML \(line"),
])
def test_errors_are_one_line(tmp_path, text, message):
    write(tmp_path / "a.xyz", molecule("H2O"))
    with pytest.raises(WorkflowError, match=message) as exc:
        _load(tmp_path, text)
    assert "\n" not in str(exc.value)
