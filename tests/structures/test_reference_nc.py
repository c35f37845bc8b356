"""The strain reference of an exchanged model: the standalone NC with the same halides exchanged."""

from __future__ import annotations

import numpy as np
import pytest

from hetflow.errors import StructureError
from hetflow.structures.exchange import layer_series, model_d
from hetflow.structures.interface import build_heterostructure
from hetflow.structures.nanocrystal import cut_nanocrystal
from hetflow.structures.reference_nc import exchanged_reference_sites, matching_reference_nc, perovskite_site_map


@pytest.fixture(scope="module")
def hs_nc():
    hs = build_heterostructure("CsPbCl3", "Pb4S3Cl2", size=(2, 2, 5), partner_cells=1)
    return hs, cut_nanocrystal("CsPbCl3", tuple(hs.info["size"]), max_face_fraction=0.25)


def test_site_map_is_one_to_one_and_keeps_elements(hs_nc):
    hs, nc = hs_nc
    site = perovskite_site_map(hs, nc)
    assert len(set(site.tolist())) == len(nc)
    assert (hs.arrays["domain"][site] == "perovskite").all()
    assert hs.get_chemical_symbols() and [hs.get_chemical_symbols()[i] for i in site] == nc.get_chemical_symbols()
    assert (hs.arrays["layer"][site] == nc.arrays["layer"]).all()
    # same cut: after the centroid shift every site sits on its partner
    d = nc.positions - (hs.positions[site] - hs.positions[site].mean(0) + nc.positions.mean(0))
    assert np.abs(d).max() < 1e-6


@pytest.mark.parametrize("start", ["interface", "bottom"])
def test_reference_carries_the_same_exchanged_layers(hs_nc, start):
    hs, nc = hs_nc
    n5 = layer_series(hs, start, 5)[-1]
    ref = matching_reference_nc(n5, nc)
    pv = n5.arrays["domain"] == "perovskite"
    n_i = int(np.sum(np.array(n5.get_chemical_symbols())[pv] == "I"))
    assert ref.get_chemical_symbols().count("I") == n_i == ref.info["exchanged_sites"] > 0
    assert ref.info["name"] == f"nc-s1-{start}-N5" and len(ref) == len(nc)
    exchanged_layers = set(ref.arrays["layer"][np.array(ref.get_chemical_symbols()) == "I"].tolist())
    assert exchanged_layers == set(n5.info["layers_exchanged"])
    assert np.allclose(ref.positions, nc.positions)  # only the elements change


def test_pristine_and_chalcohalide_exchange_give_the_plain_nc(hs_nc):
    hs, nc = hs_nc
    assert len(exchanged_reference_sites(hs, nc)) == 0
    d = model_d(hs)
    # model (d) exchanges the bottom five layers and layer 0 of the perovskite
    ref = matching_reference_nc(d, nc)
    assert set(ref.arrays["layer"][np.array(ref.get_chemical_symbols()) == "I"].tolist()) == {0, 6, 7, 8, 9, 10}


def test_another_cut_is_refused(hs_nc):
    hs, _ = hs_nc
    other = cut_nanocrystal("CsPbCl3", (2, 2, 3), max_face_fraction=0.25)
    with pytest.raises(StructureError, match="not the same cut"):
        perovskite_site_map(hs, other)
