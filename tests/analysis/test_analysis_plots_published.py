"""Plots are written as real PNGs; the published tables are internally consistent."""

import numpy as np
import pytest

from hetflow.analysis import published as pub
from hetflow.analysis.plotting import plot_bars, plot_layer_energies, plot_levels, plot_s2
from hetflow.errors import InputError

PNG = b"\x89PNG\r\n\x1a\n"


def is_png(p):
    data = p.read_bytes()
    return data[:8] == PNG and len(data) > 2000


def test_plots_written(tmp_path):
    s1 = pub.s1_series()
    p = plot_layer_energies([1, 2, 3, 4, 5], {k: np.array(v) + 0.3 for k, v in s1.items()}, tmp_path / "s1.png",
                            published=s1)
    assert is_png(p)
    steps = [f"{a}→{b} %" for a, b in (r.step for r in pub.TABLE_S2)]
    strain = [pub.TABLE_S2[0].strain_before] + [r.strain_after for r in pub.TABLE_S2]
    assert is_png(plot_s2(steps, [r.de for r in pub.TABLE_S2], strain, tmp_path / "s2.png"))
    assert is_png(plot_bars([r.distribution for r in pub.TABLE_S3], [r.de_minus_random for r in pub.TABLE_S3],
                            tmp_path / "sub" / "s3.png", published=[r.de_minus_random for r in pub.TABLE_S3]))
    e = np.linspace(-6, -2, 8)
    fr = {"chalcohalide": np.linspace(0, 1, 8), "CsPbCl3": np.linspace(1, 0, 8) * 0.5,
          "CsPbI3": np.linspace(1, 0, 8) * 0.5}
    fr["CsPbI3"][0] = -0.01  # a small negative Mulliken fraction must not break the plot
    assert is_png(plot_levels(e, fr, tmp_path / "levels.png", homo=4))


def test_plot_input_errors(tmp_path):
    with pytest.raises(InputError, match="has 2 values for 3 layers"):
        plot_layer_energies([1, 2, 3], {"x": [1, 2]}, tmp_path / "x.png")
    with pytest.raises(InputError, match="4 strain values for 2 steps"):
        plot_s2(["a", "b"], [1, 2], [1, 2, 3, 4], tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_published_tables_internally_consistent():
    # derived columns agree with the primary ones to rounding (catches transcription errors)
    for r in pub.TABLE_S1:
        assert r.from_interface - r.from_bottom == pytest.approx(r.interface_minus_bottom, abs=0.015)
    first = pub.TABLE_S2[0].de
    for r in pub.TABLE_S2:
        assert r.de - first == pytest.approx(r.de_minus_first, abs=0.015)
    for prev, nxt in zip(pub.TABLE_S2, pub.TABLE_S2[1:]):
        assert prev.strain_after == nxt.strain_before and prev.step[1] == nxt.step[0]
    rnd = pub.TABLE_S3[0].de
    for r in pub.TABLE_S3:
        assert r.de - rnd == pytest.approx(r.de_minus_random, abs=0.015)
    # the paper's conclusions hold in its own numbers
    assert pub.TABLE_S1[0].from_bottom < pub.TABLE_S1[0].from_interface
    assert min(pub.TABLE_S2, key=lambda r: r.de) is pub.TABLE_S2[0]
    assert all(r.de_minus_random < 0 for r in pub.TABLE_S3[1:])
    assert "Livakas" in pub.SOURCE
