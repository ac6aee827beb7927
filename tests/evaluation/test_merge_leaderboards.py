"""A mapped comparison (one part per selector, one for the baselines) equals the comparison in one call."""

from __future__ import annotations

import numpy as np
import pytest

from bandselect.errors import ConfigError
from bandselect.evaluation.compare import SplitSettings, StabilitySettings, compare_selections
from bandselect.evaluation.leaderboard import merge_leaderboards
from bandselect.synthetic import make_scene

SELECTORS = {
    "full": {"type": "SupervisedFullSpectrumBandSelector", "config": {"criterion": "separability"}},
    "rgb": {"type": "BaselineFalseRGBSelector"},
    "full5": {"type": "SupervisedFullSpectrumBandSelector", "config": {"k": 5}},
}


def test_parts_merge_into_the_one_call_leaderboard() -> None:
    scene = make_scene(48, 48, n_bands=16, seed=5, anomaly_fraction=0.05)
    options = {
        "split": SplitSettings(seed=2),
        "stability": StabilitySettings(n_bootstrap=0),
        "n_random_draws": 3,
        "folds": 3,
    }
    whole = compare_selections(scene.cube, scene.mask, scene.wavelengths_nm, SELECTORS, **options)
    parts = [
        compare_selections(scene.cube, scene.mask, scene.wavelengths_nm, {n: s}, baselines=False, **options)
        for n, s in SELECTORS.items()
    ]
    assert all(len(part.rows) == 1 for part in parts)
    ks = sorted({row.selection.k for part in parts for row in part.rows if row.selection})
    assert ks == [3, 5]
    base = compare_selections(scene.cube, scene.mask, scene.wavelengths_nm, {}, random_ks=ks, **options)
    assert sorted(row.kind for row in base.rows) == ["all_bands", "random", "random"]
    merged = merge_leaderboards([*parts, base])
    assert [row.name for row in merged.rows] == [row.name for row in whole.rows]
    for mine, theirs in zip(merged.rows, whole.rows, strict=True):
        assert mine.scores == pytest.approx(theirs.scores) and mine.indices == theirs.indices
    assert merged.summary == whole.summary


def test_parts_of_other_comparisons_or_twice_the_same_row_are_refused() -> None:
    scene = make_scene(40, 40, n_bands=12, seed=1, anomaly_fraction=0.05)
    options = {"stability": StabilitySettings(n_bootstrap=0), "n_random_draws": 2, "folds": 3}
    one = compare_selections(
        scene.cube, scene.mask, scene.wavelengths_nm, {"rgb": SELECTORS["rgb"]}, baselines=False, **options
    )
    with pytest.raises(ConfigError, match=r"rows \['rgb'\] in several parts"):
        merge_leaderboards([one, one])
    other = compare_selections(
        scene.cube,
        scene.mask,
        scene.wavelengths_nm,
        {"full": SELECTORS["full"]},
        baselines=False,
        split=SplitSettings(seed=9),
        **options,
    )
    with pytest.raises(ConfigError, match="on another split"):
        merge_leaderboards([one, other])
    with pytest.raises(ConfigError, match="expected one or more"):
        merge_leaderboards([])
    assert np.array_equal(merge_leaderboards([one]).wavelengths_nm, scene.wavelengths_nm)
