"""``ignore_label`` through the streamed path: datamodule batches carry a validity, the statistical trainer
leaves ignored pixels out of every statistic (their values never matter), the result equals ``fit()``, and
the gradient phase refuses ignored pixels where a loss or metric reads the mask."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr
from training_fixtures import rx_bce_pipeline, supervised_pipeline

from bandselect.errors import LabelError, TrainingError
from bandselect.names import PORT_LABELS, PORT_MASK, PORT_VALID
from bandselect.nodes import AnomalyBCELoss, RXDetector, ScoreToLogit
from bandselect.pipeline import Pipeline
from bandselect.selectors import (
    OrthogonalProjectionBandSelector,
    SelectorEntropyRegularizer,
    SoftChannelSelector,
    SupervisedFullSpectrumBandSelector,
)
from bandselect.stats import BandStatistics
from bandselect.store import open_campaign
from bandselect.training import (
    ArrayDataModule,
    CampaignDataModule,
    GradientTrainer,
    StatisticalTrainer,
    TrainingData,
    train_two_phase,
)
from bandselect.training.fitting import fit_node, statistics_for

N_BANDS = 12
WAVELENGTHS = np.linspace(450.0, 900.0, N_BANDS)
UNLABELLED, TARGET = 0, 2


def _scene(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two 16 × 20 frames of classes 0 (unlabelled), 1, 2, 3; class 2 stands out in band 7, 3 in band 2."""
    rng = np.random.default_rng(seed)
    cube = rng.normal(1.0, 0.2, size=(2, 16, 20, N_BANDS)).astype(np.float32)
    labels = rng.integers(0, 4, size=(2, 16, 20)).astype(np.int64)
    cube[labels == TARGET, 7] += 1.5
    cube[labels == 3, 2] += 1.0
    cube[labels == UNLABELLED, 4] += 3.0  # the unlabelled pixels would pull the selection to band 4
    return cube, labels


def _garbage(cube: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The cube with the unlabelled pixels' values replaced by huge, finite garbage."""
    rng = np.random.default_rng(99)
    spoiled = cube.copy()
    ignored = labels == UNLABELLED
    spoiled[ignored] = rng.uniform(-1e6, 1e6, size=(int(ignored.sum()), N_BANDS)).astype(np.float32)
    return spoiled


def _supervised() -> tuple[Pipeline, SupervisedFullSpectrumBandSelector]:
    selector = SupervisedFullSpectrumBandSelector(num_spectral_bands=N_BANDS, k=3)
    return supervised_pipeline(selector), selector


def _unsupervised() -> tuple[Pipeline, OrthogonalProjectionBandSelector]:
    selector = OrthogonalProjectionBandSelector(num_spectral_bands=N_BANDS, k=3)
    pipeline = Pipeline()
    pipeline.add_node(selector, name="selector")
    pipeline.connect(("data.cube", "selector.cube"), ("data.wavelengths", "selector.wavelengths"))
    return pipeline, selector


def _assert_same_statistics(a: BandStatistics, b: BandStatistics) -> None:
    """Array by array, exactly."""
    for field in ("classes", "counts", "class_means", "class_comoments", "class_minimum", "class_maximum"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field), err_msg=field)
    assert (a.histograms is None) == (b.histograms is None)
    if a.histograms is not None:
        np.testing.assert_array_equal(a.hist_edges, b.hist_edges)
        np.testing.assert_array_equal(a.histograms, b.histograms)
    assert a.n_invalid == b.n_invalid


def _streamed(datamodule: object, make: object = _supervised) -> tuple[object, BandStatistics]:
    pipeline, selector = make()  # type: ignore[operator]
    trainer = StatisticalTrainer(pipeline=pipeline, datamodule=datamodule)
    trainer.fit()
    return selector.selection(WAVELENGTHS), trainer.statistics_["selector"]


def test_batches_carry_a_validity_only_with_ignore_label() -> None:
    cube, labels = _scene()
    plain = next(
        iter(ArrayDataModule(cube, labels, wavelengths=WAVELENGTHS, batch_size=2).train_dataloader())
    )
    assert sorted(plain) == ["cube", "labels", "mask", "wavelengths"]  # no validity
    np.testing.assert_array_equal(plain[PORT_LABELS][..., 0].numpy(), labels)
    dm = ArrayDataModule(
        cube, labels, wavelengths=WAVELENGTHS, batch_size=2, positive_label=TARGET, ignore_label=0
    )
    batch = next(iter(dm.train_dataloader()))
    assert batch[PORT_VALID].dtype == torch.bool and batch[PORT_VALID].shape == (2, 16, 20, 1)
    np.testing.assert_array_equal(batch[PORT_VALID][..., 0].numpy(), labels != UNLABELLED)
    np.testing.assert_array_equal(batch[PORT_MASK][..., 0].numpy(), labels == TARGET)
    # positive_label makes the class ids binary too (that class against the rest), as in the flows.
    np.testing.assert_array_equal(batch[PORT_LABELS][..., 0].numpy(), labels == TARGET)
    np.testing.assert_array_equal(dm.valid, labels != UNLABELLED)


def test_array_datamodule_ignored_pixels_change_nothing_and_equal_fit() -> None:
    cube, labels = _scene()
    options = {"wavelengths": WAVELENGTHS, "batch_size": 1, "patch_size": (8, 8), "positive_label": TARGET}
    clean, clean_stats = _streamed(ArrayDataModule(cube, labels, ignore_label=UNLABELLED, **options))
    spoiled, spoiled_stats = _streamed(
        ArrayDataModule(_garbage(cube, labels), labels, ignore_label=UNLABELLED, **options)
    )
    assert spoiled == clean
    _assert_same_statistics(spoiled_stats, clean_stats)
    assert clean_stats.count == int((labels != UNLABELLED).sum())
    assert clean.indices[0] == 7  # the target's band, not the unlabelled pixels' band 4

    # The notebook path on the same pixels: the same selection, the same statistics (within rounding).
    node = SupervisedFullSpectrumBandSelector(num_spectral_bands=N_BANDS, k=3)
    node.fit(_garbage(cube, labels), labels, WAVELENGTHS, positive_label=TARGET, ignore_label=UNLABELLED)
    assert node.selection(WAVELENGTHS) == clean
    notebook = statistics_for(
        node.statistics_request(),
        _garbage(cube, labels),
        labels,
        positive_label=TARGET,
        ignore_label=UNLABELLED,
    )
    np.testing.assert_array_equal(notebook.hist_edges, clean_stats.hist_edges)
    np.testing.assert_array_equal(notebook.histograms, clean_stats.histograms)
    np.testing.assert_array_equal(notebook.counts, clean_stats.counts)
    np.testing.assert_allclose(notebook.class_means, clean_stats.class_means, rtol=1e-12)
    np.testing.assert_allclose(notebook.class_comoments, clean_stats.class_comoments, rtol=1e-9)

    # Without ignore_label the unlabelled pixels are negatives, and the garbage wins.
    unignored, _ = _streamed(ArrayDataModule(_garbage(cube, labels), labels, **options))
    assert unignored != clean


def test_unsupervised_nodes_leave_ignored_pixels_out_too() -> None:
    cube, labels = _scene()
    options = {"wavelengths": WAVELENGTHS, "batch_size": 2, "ignore_label": UNLABELLED}
    clean, clean_stats = _streamed(ArrayDataModule(cube, labels, **options), _unsupervised)
    spoiled, spoiled_stats = _streamed(
        ArrayDataModule(_garbage(cube, labels), labels, **options), _unsupervised
    )
    assert spoiled == clean
    _assert_same_statistics(spoiled_stats, clean_stats)
    node = OrthogonalProjectionBandSelector(num_spectral_bands=N_BANDS, k=3)
    fit_node(node, _garbage(cube, labels), labels, WAVELENGTHS, ignore_label=UNLABELLED)
    assert node.selection(WAVELENGTHS) == clean
    # A variance initialisation, too (SoftChannelSelector: the logits are the log variances).
    soft = SoftChannelSelector(n_select=3, input_channels=N_BANDS, init_method="variance")
    pipeline = Pipeline()
    pipeline.connect((pipeline.data.cube, soft.data))
    StatisticalTrainer(pipeline, ArrayDataModule(_garbage(cube, labels), labels, **options)).fit()
    kept = cube[labels != UNLABELLED].astype(np.float64)
    np.testing.assert_allclose(soft.channel_logits.numpy(), np.log(kept.var(axis=0) + soft.eps), rtol=1e-5)


def _write_store(path: Path, cube: np.ndarray, labels: np.ndarray) -> tuple[Path, list[str]]:
    """A campaign store of the frames; their acquisition ids in frame order (ids derive from content)."""
    campaign = open_campaign(path, create=True)
    ids = []
    for frame, frame_labels in zip(cube, labels, strict=True):
        dataset = xr.Dataset(
            {"cube": (("y", "x", "band"), frame), "mask": (("y", "x"), frame_labels.astype(np.int16))},
            coords={"wavelength": ("band", WAVELENGTHS)},
        )
        ids.append(campaign.append(dataset))
    return path, ids


def test_campaign_datamodule_on_a_store_ignored_pixels_change_nothing(tmp_path: Path) -> None:
    cube, labels = _scene()
    clean_store = _write_store(tmp_path / "clean.zarr", cube, labels)
    spoiled_store = _write_store(tmp_path / "spoiled.zarr", _garbage(cube, labels), labels)
    options = {"patch_size": (8, 8), "batch_size": 2, "positive_label": TARGET, "ignore_label": UNLABELLED}
    # The same frame order in both stores (the default order is by id), so the same merges.
    clean, clean_stats = _streamed(CampaignDataModule(*clean_store, **options))
    spoiled, spoiled_stats = _streamed(CampaignDataModule(*spoiled_store, **options))
    assert spoiled == clean
    _assert_same_statistics(spoiled_stats, clean_stats)
    in_memory, _ = _streamed(ArrayDataModule(cube, labels, wavelengths=WAVELENGTHS, **options))
    assert clean == in_memory


def test_label_role_errors_say_what_was_found() -> None:
    cube, labels = _scene()
    with pytest.raises(LabelError, match=r"positive_label and ignore_label.*both 2"):
        ArrayDataModule(cube, labels, wavelengths=WAVELENGTHS, positive_label=2, ignore_label=2)
    with pytest.raises(LabelError, match="every pixel would be ignored"):
        ArrayDataModule(cube, np.zeros_like(labels), wavelengths=WAVELENGTHS, ignore_label=0)
    with pytest.raises(LabelError, match="ignore_label=0 for data without masks"):
        ArrayDataModule(cube, wavelengths=WAVELENGTHS, ignore_label=0)
    # One class left after ignoring: accepted by the datamodule (an unsupervised node uses the validity),
    # refused by a supervised node's statistics, naming the node.
    binary = np.where(labels == UNLABELLED, 0, 1)
    dm = ArrayDataModule(cube, binary, wavelengths=WAVELENGTHS, ignore_label=0)
    with pytest.raises(LabelError, match=r"node 'selector'.*one class only \(class 1\)") as error:
        _streamed(dm)
    assert "expected" in str(error.value) and "fix:" in str(error.value).lower()
    _streamed(dm, _unsupervised)  # fine
    with pytest.raises(LabelError, match="positive_label=5"):
        CampaignDataModule(
            [
                xr.Dataset(
                    {"cube": (("y", "x", "band"), cube[0]), "mask": (("y", "x"), labels[0])},
                    coords={"wavelength": ("band", WAVELENGTHS)},
                )
            ],
            positive_label=5,
            ignore_label=0,
        )


def test_bool_masks_are_classes_zero_and_one() -> None:
    cube, labels = _scene()
    positives = labels == TARGET
    dm = ArrayDataModule(cube, positives, wavelengths=WAVELENGTHS, batch_size=2, ignore_label=0)
    batch = next(iter(dm.train_dataloader()))
    np.testing.assert_array_equal(batch[PORT_VALID][..., 0].numpy(), positives)  # False pixels ignored
    _, stats = _streamed(dm, _unsupervised)
    assert stats.count == int(positives.sum())
    with pytest.raises(LabelError, match="bool mask with ignore_label=3"):
        next(
            iter(ArrayDataModule(cube, positives, wavelengths=WAVELENGTHS, ignore_label=3).train_dataloader())
        )


def _learnable(valid: bool = False) -> Pipeline:
    return rx_bce_pipeline(N_BANDS, valid=valid)


def test_gradient_phase_refuses_ignored_pixels_where_the_loss_reads_the_mask(tmp_path: Path) -> None:
    cube, labels = _scene()
    pipeline = _learnable()
    dm = ArrayDataModule(
        cube, labels, wavelengths=WAVELENGTHS, positive_label=TARGET, ignore_label=UNLABELLED
    )
    StatisticalTrainer(pipeline, dm).fit()
    pipeline.nodes["soft"].unfreeze()
    trainer = GradientTrainer(pipeline, dm, max_epochs=1, progress=False, device="cpu")
    with pytest.raises(LabelError, match=r"would count them.*connect data.valid to rx.valid.*bce.valid"):
        trainer.fit()
    # Data without the ignored class trains (the batches' validity is all True and is not a data port).
    labelled = np.where(labels == UNLABELLED, 1, labels)
    clean = ArrayDataModule(
        cube, labelled, wavelengths=WAVELENGTHS, positive_label=TARGET, ignore_label=UNLABELLED
    )
    assert len(GradientTrainer(pipeline, clean, max_epochs=1, progress=False, device="cpu").fit()) == 1

    # train_two_phase refuses before its first phase: nothing initialised, no checkpoint written.
    fresh = _learnable()
    data = TrainingData.from_arrays(
        cube[0], labels[0], wavelengths_nm=WAVELENGTHS, positive_label=TARGET, ignore_label=UNLABELLED
    )
    training = {"epochs": 1, "patch_size": 8, "batches_per_epoch": 1}
    with pytest.raises(LabelError, match=r"ignore_label=0.*connect data.valid to rx.valid"):
        train_two_phase(fresh, data, training, checkpoint_dir=tmp_path / "ckpt")
    assert not fresh.nodes["soft"].is_initialized and not (tmp_path / "ckpt").exists()


def test_gradient_phase_with_data_valid_connected_ignores_what_ignored_pixels_hold() -> None:
    """With data.valid feeding RX, the head and the loss, the gradient phase trains on data with ignored
    pixels, and what they hold (the scene's values, ±1e6 garbage, zeros) changes nothing: the same
    losses and the same trained logits, bit for bit (NaN there:
    ``test_nan_in_ignored_pixels_of_in_memory_data_trains_as_zeros_there``)."""
    cube, labels = _scene()
    zeros = cube.copy()
    zeros[labels == UNLABELLED] = 0.0
    runs = []
    for values in (cube, _garbage(cube, labels), zeros):
        pipeline = _learnable(valid=True)
        dm = ArrayDataModule(
            values, labels, wavelengths=WAVELENGTHS, positive_label=TARGET, ignore_label=UNLABELLED
        )
        StatisticalTrainer(pipeline, dm).fit()
        pipeline.nodes["soft"].unfreeze()
        torch.manual_seed(0)
        history = GradientTrainer(pipeline, dm, max_epochs=3, progress=False, device="cpu", seed=0).fit()
        runs.append(
            ([record.loss for record in history], pipeline.nodes["soft"].channel_logits.detach().clone())
        )
    for losses, logits in runs[1:]:
        assert losses == runs[0][0] and all(np.isfinite(losses))
        assert torch.equal(logits, runs[0][1])
    # The loss over the valid pixels is the loss of the labelled pixels alone.
    logits = torch.randn(1, 4, 5, 1)
    mask = torch.rand(1, 4, 5, 1) > 0.7
    keep = torch.rand(1, 4, 5, 1) > 0.3
    both = AnomalyBCELoss()(logits=logits, mask=mask, valid=keep)["loss"]
    alone = AnomalyBCELoss()(logits=logits[keep].reshape(1, 1, -1, 1), mask=mask[keep].reshape(1, 1, -1, 1))[
        "loss"
    ]
    assert float(both) == pytest.approx(float(alone), abs=1e-7)


def test_the_recipe_trains_with_an_ignore_label_and_its_ignored_pixels_change_nothing() -> None:
    """The shipped recipe connects data.valid: train_two_phase with ignore_label gives the same selection
    and the same test AUROC whatever the ignored pixels hold, and finds the target's band."""
    cube, labels = _scene()
    training = {"epochs": 3, "patch_size": 8, "batches_per_epoch": 2, "device": "cpu"}
    results = []
    for values in (cube, _garbage(cube, labels)):
        data = TrainingData.from_arrays(
            values[0], labels[0], wavelengths_nm=WAVELENGTHS, positive_label=TARGET, ignore_label=UNLABELLED
        )
        results.append(train_two_phase(None, data, training))
    clean, spoiled = results
    assert clean.selection_after == spoiled.selection_after
    assert clean.test_auroc_after == spoiled.test_auroc_after and clean.test_auroc_after is not None
    assert 7 in clean.selection_after.indices  # the target's band (band 4 would be the unlabelled pixels')


def test_two_phase_statistical_phase_honours_ignore_label() -> None:
    """A pipeline whose loss reads no mask (a regularizer) trains with ignored pixels; its phase 1
    (variance initialisation over the training rows) does not see them."""
    cube, labels = _scene()
    training = {
        "epochs": 1,
        "patch_size": 8,
        "batches_per_epoch": 1,
        "val_rows": None,
        "test_rows": None,
        "monitor": None,
    }
    before = []
    for values in (cube, _garbage(cube, labels)):
        pipeline = Pipeline()
        soft = SoftChannelSelector(n_select=3, input_channels=N_BANDS, init_method="variance")
        pipeline.add_node(soft, name="soft")
        pipeline.add_node(SelectorEntropyRegularizer(), name="entropy")
        pipeline.connect(("data.cube", "soft.data"), ("soft.weights", "entropy.weights"))
        data = TrainingData.from_arrays(
            values[0], labels[0], wavelengths_nm=WAVELENGTHS, ignore_label=UNLABELLED
        )
        result = train_two_phase(pipeline, data, training, evaluate=False)
        before.append(result.selection_before)
    assert before[0] == before[1]
    rows = cube[0, :8][labels[0, :8] != UNLABELLED].astype(np.float64)  # the training rows, top half
    expected = np.argsort(-rows.var(axis=0), kind="stable")[:3]
    assert sorted(before[0].indices) == sorted(expected.tolist())


def test_batches_without_counted_background_are_skipped_and_an_all_ignored_part_is_an_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Patches drawn on a no-data region (every pixel ignored) have no background to estimate RX from:
    they are skipped, the training goes on; training rows that are all ignored are a TrainingError."""
    cube, labels = _scene()
    border = labels.copy()
    # No-data at the top left: 8 × 8 training patches that start left of x = 6 hold nothing else.
    border[:, :8, :13] = UNLABELLED
    training = {"epochs": 2, "patch_size": 8, "batches_per_epoch": 8, "batch_size": 1, "device": "cpu"}
    data = TrainingData.from_arrays(
        cube[0], border[0], wavelengths_nm=WAVELENGTHS, positive_label=TARGET, ignore_label=UNLABELLED
    )
    with caplog.at_level("WARNING", logger="bandselect.training.gradient"):
        result = train_two_phase(None, data, training)
    assert any("training batches skipped" in record.getMessage() for record in caplog.records)
    assert len(result.history) == 2 and np.isfinite([r.loss for r in result.history]).all()
    assert result.test_auroc_after is not None
    nothing = labels.copy()
    nothing[:, :8] = UNLABELLED  # the whole training half
    empty = TrainingData.from_arrays(
        cube[0], nothing[0], wavelengths_nm=WAVELENGTHS, positive_label=TARGET, ignore_label=UNLABELLED
    )
    with pytest.raises(
        TrainingError, match=r"0 batches trained \(\d+ skipped: fewer than 2 valid \(negative\)"
    ):
        train_two_phase(None, empty, training)


def test_nodes_that_do_not_read_their_valid_input_need_no_connection() -> None:
    from bandselect.training.gradient import validity_gaps

    pipeline = _learnable(valid=True)
    assert validity_gaps(pipeline, ["bce"]) == []
    plain = Pipeline()
    plain.add_node(SoftChannelSelector(n_select=3, input_channels=N_BANDS), name="soft")
    plain.add_node(RXDetector(input_channels=N_BANDS, background="fitted"), name="rx")
    plain.add_node(ScoreToLogit(standardize=False), name="head")
    plain.add_node(AnomalyBCELoss(), name="bce")
    plain.connect(
        ("data.cube", "soft.data"),
        ("soft.selected", "rx.data"),
        ("rx.scores", "head.scores"),
        ("head.logits", "bce.logits"),
        ("data.mask", "bce.mask"),
        ("data.valid", "bce.valid"),
    )
    # A fitted RX background and a head that does not standardise read no batch statistic.
    assert validity_gaps(plain, ["bce"]) == []
    standardising = _learnable(valid=False)
    assert [gap.split(" ")[0] for gap in validity_gaps(standardising, ["bce"])] == ["rx", "head", "bce"]


def test_nan_in_ignored_pixels_of_in_memory_data_trains_as_zeros_there() -> None:
    """In-memory data (``TrainingData.from_arrays``, the datamodules) with an ignore_label: its pixels
    may hold NaN, as ``fit(..., ignore_label=...)`` accepts (they read as 0); the recipe trains exactly
    as with zeros there. A NaN in a pixel that counts is still refused, saying how to mark it."""
    from bandselect.errors import NonFiniteError

    cube, labels = _scene()
    ignored = labels[0] == UNLABELLED
    nan, zeros = cube[0].copy(), cube[0].copy()
    nan[ignored] = np.nan
    zeros[ignored] = 0.0
    training = {"epochs": 3, "patch_size": 8, "batches_per_epoch": 2, "device": "cpu"}
    runs = []
    for values in (nan, zeros):
        data = TrainingData.from_arrays(
            values, labels[0], wavelengths_nm=WAVELENGTHS, positive_label=TARGET, ignore_label=UNLABELLED
        )
        runs.append(train_two_phase(None, data, training))
    assert [r.loss for r in runs[0].history] == [r.loss for r in runs[1].history]
    assert runs[0].selection_after == runs[1].selection_after
    assert runs[0].test_auroc_after == runs[1].test_auroc_after is not None
    dm = ArrayDataModule(
        nan, labels[0], wavelengths=WAVELENGTHS, positive_label=TARGET, ignore_label=UNLABELLED
    )
    assert np.isfinite(next(iter(dm.train_dataloader()))["cube"].numpy()).all()
    counted = nan.copy()
    counted[np.argwhere(~ignored)[0][0], np.argwhere(~ignored)[0][1], 3] = np.nan
    with pytest.raises(NonFiniteError, match="ignore_label"):
        ArrayDataModule(counted, labels[0], wavelengths=WAVELENGTHS, ignore_label=UNLABELLED)
    with pytest.raises(NonFiniteError):  # without the label every pixel counts
        ArrayDataModule(nan, labels[0], wavelengths=WAVELENGTHS)
