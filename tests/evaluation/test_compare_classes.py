"""The multi-class comparison: selectors fitted inside block folds, accuracy and kappa, baselines, scenes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from multiclass_scenes import planted_pair_scene

from bandselect.errors import ConfigError, LabelError
from bandselect.evaluation.compare import SplitSettings, StabilitySettings
from bandselect.evaluation.compare_classes import (
    compare_classes,
    compare_scene,
    default_multiclass_selector_specs,
)
from bandselect.evaluation.scene import load_labelled_scene

SCENE = planted_pair_scene(size=50)
SELECTORS = {
    "separability": {
        "type": "SupervisedFullSpectrumBandSelector",
        "config": {"criterion": "separability", "k": 6, "multiclass": True},
    },
    "projection": {"type": "OrthogonalProjectionBandSelector", "config": {"k": 6}},
    "variance": {
        "type": "SoftChannelSelector",
        "config": {"n_select": 6, "init_method": "variance"},
        "train": False,
    },
    "cir": {"type": "CIRFalseColorSelector"},
}


@pytest.fixture(scope="module")
def leaderboard():  # type: ignore[no-untyped-def]
    return compare_classes(
        SCENE.cube,
        SCENE.labels,
        SCENE.wavelengths_nm,
        SELECTORS,
        ignore_label=0,
        split=SplitSettings(n_blocks=(5, 5), seed=0),
        folds=5,
        n_random_draws=4,
        stability=StabilitySettings(n_bootstrap=3),
    )


def test_selectors_are_scored_by_accuracy_and_kappa_beside_the_baselines(leaderboard) -> None:  # type: ignore[no-untyped-def]
    assert leaderboard.measures == ("overall_accuracy", "kappa")
    rows = {row.name: row for row in leaderboard.rows}
    assert set(rows) == {*SELECTORS, "all bands (24)", "random 6 bands (4 draws)", "random 3 bands (4 draws)"}
    best = rows["separability"]
    assert sorted(best.indices) == sorted(SCENE.planted)
    assert best.scores["overall_accuracy"] > 0.97 and best.scores["kappa"] > 0.96
    assert best.stability is not None and best.stability.score > 0.9
    random6 = rows["random 6 bands (4 draws)"]
    assert best.scores["kappa"] > random6.scores["kappa"] + random6.scores_std["kappa"]
    assert rows["projection"].scores["kappa"] > 0.9  # the planted bands carry the variance too
    assert rows["cir"].status == "ok" and rows["cir"].scores["kappa"] < 0.8  # 3 fixed bands, 2 of them noise
    assert leaderboard.rows[0].scores["overall_accuracy"] >= leaderboard.rows[1].scores["overall_accuracy"]
    assert leaderboard.summary["classes"] == [3, 7, 12, 40] and leaderboard.summary["ignore_label"] == 0
    records = leaderboard.records()
    assert {"overall_accuracy", "kappa", "kappa_std"} <= set(records[-2]) | set(records[-1])


def test_default_multiclass_specs_cover_every_k() -> None:
    specs = default_multiclass_selector_specs((3, 10))
    for k in (3, 10):
        assert specs[f"supervised_separability_k{k}"].config == {
            "criterion": "separability",
            "k": k,
            "multiclass": True,
        }
        assert specs[f"orthogonal_projection_k{k}"].type == "OrthogonalProjectionBandSelector"
        assert specs[f"soft_variance_topk_k{k}"].config["n_select"] == k


def test_scenes_load_as_multiclass_and_compare_by_their_task(tmp_path: Path) -> None:
    path = tmp_path / "scene.npz"
    np.savez(path, cube=SCENE.cube, wavelengths_nm=SCENE.wavelengths_nm, gt=SCENE.labels.astype(np.int32))
    scene = load_labelled_scene(path, multiclass=True, ignore_label=0)
    assert scene.multiclass and scene.labels is not None and scene.name == "scene, 4 classes"
    np.testing.assert_array_equal(scene.positive, SCENE.labels != 0)
    board = compare_scene(
        scene,
        {"projection": SELECTORS["projection"]},
        n_random_draws=2,
        folds=4,
        split=SplitSettings(n_blocks=(4, 4)),
    )
    assert board.measures == ("overall_accuracy", "kappa") and board.summary["folds"] == 4
    kappa_first = compare_scene(
        scene, {"projection": SELECTORS["projection"]}, measures=["kappa"], n_random_draws=2, folds=4
    )
    assert kappa_first.measures == ("kappa",)
    with pytest.raises(LabelError, match=r"scene\.label"):
        load_labelled_scene(path, multiclass=True, label=3)
    with pytest.raises(LabelError, match="one class only"):
        np.savez(
            path, cube=SCENE.cube, wavelengths_nm=SCENE.wavelengths_nm, gt=np.where(SCENE.labels == 3, 3, 0)
        )
        load_labelled_scene(path, multiclass=True, ignore_label=0)


def test_bad_multiclass_comparisons() -> None:
    binary_rule = {"type": "SupervisedFullSpectrumBandSelector", "config": {"criterion": "mrmr"}}
    with pytest.raises(ConfigError, match="multiclass: true"):
        compare_classes(SCENE.cube, SCENE.labels, SCENE.wavelengths_nm, {"binary": binary_rule})
    with pytest.raises(ConfigError, match="measures"):
        compare_classes(SCENE.cube, SCENE.labels, SCENE.wavelengths_nm, SELECTORS, measures=["rx_auroc"])
    with pytest.raises(ConfigError, match="classifier"):
        compare_classes(SCENE.cube, SCENE.labels, SCENE.wavelengths_nm, SELECTORS, classifier="svm")
    with pytest.raises(LabelError, match="at least two classes"):
        compare_classes(
            SCENE.cube, np.where(SCENE.labels == 3, 3, 0), SCENE.wavelengths_nm, SELECTORS, ignore_label=0
        )
