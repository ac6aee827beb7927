"""The comparison trains the learnable selectors on the train blocks and ranks them on the held-out blocks."""

from __future__ import annotations

import numpy as np
import pytest

from bandselect.errors import ConfigError
from bandselect.evaluation.compare import (
    LEARNABLE_TRAIN_ROWS,
    SelectorSpec,
    StabilitySettings,
    compare_selections,
    default_selector_specs,
    fit_selector,
    learnable_training,
)
from bandselect.evaluation.metrics import rx_auroc
from bandselect.synthetic import make_scene

FAST = {"epochs": 4, "batches_per_epoch": 2}


@pytest.fixture(scope="module")
def scene():
    return make_scene(64, 64, n_bands=12, seed=3, anomaly_fraction=0.04)


def test_learnable_training_splits_every_train_tile_and_trains_on_its_whole_training_part() -> None:
    config = learnable_training((12, 25, 25, 102))
    assert config.train_rows == LEARNABLE_TRAIN_ROWS and config.val_rows == (0.75, 1.0)
    assert config.test_rows is None  # the comparison's held-out blocks are the test
    assert config.patch_size == (19, 12 * 25) and config.batch_size == 1
    assert config.epochs == 50 and config.monitor == "selection.rx_auroc"  # the recipe's
    assert learnable_training((12, 25, 25, 102), {"epochs": 7}).epochs == 7
    with pytest.raises(ConfigError, match="monitor_from_epoch 9 is not an epoch"):
        learnable_training((12, 25, 25, 102), {"epochs": 5, "monitor_from_epoch": 9})


def test_learnable_selectors_are_trained_and_ranked_on_the_same_held_out_blocks(scene) -> None:
    selectors = {
        "soft_trained": SelectorSpec(
            "SoftChannelSelector", {"n_select": 3, "init_method": "variance", "seed": 0}, training=FAST
        ),
        "concrete_trained": SelectorSpec(
            "ConcreteBandSelector", {"init_method": "variance", "seed": 0}, training=FAST
        ),
        "soft_variance": SelectorSpec(
            "SoftChannelSelector", {"n_select": 3, "init_method": "variance"}, train=False
        ),
        "separability": SelectorSpec("SupervisedFullSpectrumBandSelector", {"criterion": "separability"}),
    }
    board = compare_selections(
        scene.cube,
        scene.mask,
        scene.wavelengths_nm,
        selectors,
        measures=("rx_auroc",),
        n_random_draws=3,
        folds=2,
        stability=StabilitySettings(n_bootstrap=2),
    )
    rows = {row.name: row for row in board.selector_rows}
    for name in ("soft_trained", "concrete_trained"):
        row = rows[name]
        assert row.trained and [h.epoch for h in row.history] == [0, 1, 2, 3]
        assert row.stability is None  # a trained selector is not bootstrapped unless asked
        assert row.selection is not None and row.selection.k == 3
        # Scored like every other row: RX on its bands, background the train blocks' negatives, test blocks.
        expected = rx_auroc(
            scene.cube,
            scene.mask,
            np.asarray(row.indices),
            background=board.split.train & ~scene.mask,
            evaluate=board.split.test,
        )
        assert row.scores["rx_auroc"] == pytest.approx(expected, abs=1e-12)
    assert not rows["soft_variance"].trained and rows["soft_variance"].stability is not None
    assert rows["separability"].stability is not None
    ranked = [row.name for row in board.rows if row.applicable]
    assert ranked == sorted(ranked, key=lambda n: -board.row(n).scores["rx_auroc"])
    records = {r["name"]: r for r in board.records()}
    assert records["soft_trained"]["trained"] is True and records["soft_trained"]["epochs"] == 4
    assert records["separability"]["trained"] is False and records["separability"]["best_epoch"] is None


def test_training_sees_only_the_train_blocks(scene) -> None:
    """Fitting on the train tiles alone gives the very selection the comparison scored."""
    spec = SelectorSpec(
        "SoftChannelSelector", {"n_select": 3, "init_method": "variance", "seed": 1}, training=FAST
    )
    tiles = scene.cube[None, :32, :32], scene.mask[None, :32, :32]
    first, trained = fit_selector(spec, *tiles, scene.wavelengths_nm)
    again, _ = fit_selector(spec, *tiles, scene.wavelengths_nm)
    assert trained is not None and first == again == trained.selection_after


def test_the_default_set_trains_both_learnable_selectors_seeded() -> None:
    specs = default_selector_specs(3)
    assert specs["soft_trained"].type == "SoftChannelSelector" and specs["soft_trained"].train
    assert specs["soft_trained"].config["init_method"] == "uniform"  # the recipe's start
    assert (
        specs["concrete_trained"].type == "ConcreteBandSelector"
        and specs["concrete_trained"].config["seed"] == 0
    )
    assert not specs["soft_variance_topk"].train


def test_bad_learnable_specs_are_refused(scene) -> None:
    with pytest.raises(ConfigError, match=r"unknown fields \['epoch'\]"):
        SelectorSpec("SoftChannelSelector", {"n_select": 3}, training={"epoch": 3})
    with pytest.raises(ConfigError, match="untrained ConcreteBandSelector"):
        compare_selections(
            scene.cube,
            scene.mask,
            scene.wavelengths_nm,
            {"concrete": SelectorSpec("ConcreteBandSelector", {}, train=False)},
            measures=("rx_auroc",),
            folds=2,
        )
