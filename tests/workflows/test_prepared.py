"""The prepared models shipped with hetflow: provenance, keys that still match, no engine call.

The default pair's preparation (16 GFN1-xTB probe single points, the junction's relaxation, the
relaxation of the chalcohalide's faces in the quick and full models) ships as cache entries under
the builders' own content keys.  If a change to the builders or to the calculation specs changed a
key, the build below would ask the engine — and fail here, instead of costing a new user minutes of
GFN1-xTB; regenerate with ``python -m hetflow.recipes.prepare``.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest

import hetflow.calculators.run as run_mod
from hetflow.structures.interface import build_heterostructure
from hetflow.recipes.prepare import PREPARED_MODELS
from hetflow.workflows.registry import energy_relaxer, energy_scorer, prepared_dir, record_cache_use

MANIFEST = json.loads((prepared_dir() / "manifest.json").read_text())["entries"]


def _refuse(*a, **k):
    raise AssertionError("the engine was called: a shipped prepared-model key no longer matches")


def test_manifest_lists_every_shipped_entry_with_provenance():
    files = {p.name for p in prepared_dir().glob("*.json")} - {"manifest.json"}
    assert set(MANIFEST) == files
    whats = [e["what"] for e in MANIFEST.values()]
    assert whats.count("junction probe single point (periodic 168-atom probe slab)") == 16
    assert whats.count("junction relaxation") == 1
    assert whats.count("partner faces relaxation (quick model)") == 1
    assert whats.count("partner faces relaxation (full model)") == 1
    for name, e in MANIFEST.items():
        assert e["key"] == name[: -len(".json")] and e["method"] == "GFN1-xTB" and e["converged"] is True
        assert e["pair"] == "CsPbCl3/Pb4S3Cl2" and set(e["models"]) <= set(PREPARED_MODELS)
        dt.date.fromisoformat(e["date"])
        data = json.loads((prepared_dir() / name).read_text())
        assert ("energy" in data) != ("positions" in data)
        if "positions" in data:
            assert data["converged"] and data["fmax"] <= data["fmax_target"] == 0.05


@pytest.mark.parametrize("name", list(PREPARED_MODELS))
def test_prepared_models_build_from_the_shipped_entries(name, tmp_path, monkeypatch):
    """A fresh machine (empty cache) builds the quick and full models from the shipped entries:
    no engine call, nothing written to the user's cache, the relaxed junction and faces applied."""
    monkeypatch.setenv("HETFLOW_CACHE", str(tmp_path))
    monkeypatch.setattr(run_mod, "run_calculation", _refuse)
    perov, partner, size, cells = PREPARED_MODELS[name]
    with record_cache_use() as used:
        hs = build_heterostructure(perov, partner, size=size, partner_cells=cells, scorer=energy_scorer(),
                                   relaxer=energy_relaxer())
    assert {p.name for p in used} == {f for f, e in MANIFEST.items() if name in e["models"]}
    assert len(hs) == {"quick": 244, "full": 501}[name]
    assert hs.info["registry"]["relaxation"]["converged"] and hs.info["partner_faces"]["converged"]
    assert hs.info["registry"]["column_offset_max"] <= 0.5
    assert not list(tmp_path.rglob("*.json"))


def test_recipe_models_use_the_shipped_entries(tmp_path, monkeypatch):
    from hetflow.recipes.exchange_scan import ScanModel

    monkeypatch.setenv("HETFLOW_CACHE", str(tmp_path))
    monkeypatch.setattr(run_mod, "run_calculation", _refuse)
    hs = ScanModel().build("s1", True)
    assert len(hs) == 244 and hs.info["partner_faces"]["converged"]


def test_prepared_models_can_be_turned_off(tmp_path, monkeypatch):
    monkeypatch.setenv("HETFLOW_CACHE", str(tmp_path))
    monkeypatch.setenv("HETFLOW_PREPARED", "0")
    monkeypatch.setattr(run_mod, "run_calculation", _refuse)
    with pytest.raises(AssertionError, match="the engine was called"):
        build_heterostructure("CsPbCl3", "Pb4S3Cl2", size=(2, 2, 5), scorer=energy_scorer())
