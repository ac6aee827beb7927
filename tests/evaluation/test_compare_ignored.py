"""The binary comparison with pixels that count nowhere: ``scene.ignore_label`` (unlabelled ground truth)
and a store's invalid pixels. They are in no fit, no training, no bootstrap and no measure, so what
they hold changes no score; the same pixels given as invalid in a store or as an ignored class in a file
give the same leaderboard."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from bandselect.errors import LabelError, NonFiniteError
from bandselect.evaluation.compare import SelectorSpec, StabilitySettings
from bandselect.evaluation.compare_classes import compare_scene
from bandselect.evaluation.metrics import rx_auroc
from bandselect.evaluation.scene import load_labelled_scene
from bandselect.store import ingest

N_BANDS = 12
WAVELENGTHS = np.linspace(450.0, 900.0, N_BANDS)
UNLABELLED, BACKGROUND, TARGET = 0, 1, 2
TARGET_BAND, UNLABELLED_BAND = 7, 4
SELECTORS = {
    "separability": SelectorSpec("SupervisedFullSpectrumBandSelector", {"criterion": "separability", "k": 3}),
    "mrmr": SelectorSpec("SupervisedFullSpectrumBandSelector", {"criterion": "mrmr", "k": 3}),
    "soft_trained": SelectorSpec(
        "SoftChannelSelector",
        {"n_select": 3, "init_method": "uniform", "seed": 0},
        training={"epochs": 4, "batches_per_epoch": 2},
    ),
}
OPTIONS = {
    "measures": ("rx_auroc", "logistic_holdout_auroc"),
    "n_random_draws": 3,
    "folds": 2,
    "stability": StabilitySettings(n_bootstrap=2),
}


def _scene() -> tuple[np.ndarray, np.ndarray]:
    """64 × 64 pixels: 30 % unlabelled (bright in band 4, which would win without ignoring them),
    targets (4 %) bright in band 7, the rest background."""
    rng = np.random.default_rng(5)
    cube = rng.normal(1.0, 0.1, size=(64, 64, N_BANDS)).astype(np.float32)
    gt = np.full((64, 64), BACKGROUND, np.int32)
    gt[rng.random((64, 64)) < 0.3] = UNLABELLED
    gt[(rng.random((64, 64)) < 0.06) & (gt == BACKGROUND)] = TARGET
    cube[gt == TARGET, TARGET_BAND] += 0.5
    cube[gt == UNLABELLED, UNLABELLED_BAND] += 2.0
    return cube, gt


def _file(tmp_path: Path, name: str, cube: np.ndarray, gt: np.ndarray) -> Path:
    path = tmp_path / f"{name}.npz"
    np.savez(path, cube=cube, gt=gt, wavelengths_nm=WAVELENGTHS)
    return path


def _scores(board: object) -> dict[str, dict[str, float]]:
    return {row.name: dict(row.scores) for row in board.rows}  # type: ignore[attr-defined]


def test_ignored_pixels_count_nowhere_in_a_binary_comparison(tmp_path: Path) -> None:
    cube, gt = _scene()
    spoiled = cube.copy()
    ignored = gt == UNLABELLED
    spoiled[ignored] = np.random.default_rng(9).uniform(-1e5, 1e5, (int(ignored.sum()), N_BANDS))
    ys, xs = np.nonzero(ignored)
    spoiled[ys[:5], xs[:5]] = np.nan  # NaN there too
    boards = []
    for name, values in (("clean", cube), ("spoiled", spoiled)):
        scene = load_labelled_scene(_file(tmp_path, name, values, gt), label=TARGET, ignore_label=UNLABELLED)
        assert scene.valid is not None and np.array_equal(scene.valid, ~ignored)
        assert not scene.positive[ignored].any()
        if name == "clean":  # unlabelled pixels hold data: kept (the previews show it), not "no data"
            assert scene.nodata is None and np.array_equal(scene.cube, cube)
        boards.append(compare_scene(scene, SELECTORS, **OPTIONS))
    clean, garbage = boards
    assert _scores(garbage) == _scores(clean)  # what the ignored pixels hold changes no score
    rows = {row.name: row for row in clean.selector_rows}
    assert TARGET_BAND in rows["separability"].indices and UNLABELLED_BAND not in rows["separability"].indices
    assert rows["soft_trained"].trained and TARGET_BAND in rows["soft_trained"].indices
    # Measured on the counted pixels only: RX's background is the train blocks' counted negatives.
    counted = ~ignored
    expected = rx_auroc(
        cube,
        gt == TARGET,
        np.asarray(rows["separability"].indices),
        background=clean.split.train & counted & (gt != TARGET),
        evaluate=clean.split.test & counted,
    )
    assert rows["separability"].scores["rx_auroc"] == pytest.approx(expected, abs=1e-12)
    assert clean.summary["ignored_pixels"] == int(ignored.sum())
    # Counted as the rest (no ignore_label), the unlabelled pixels change the comparison.
    as_rest = compare_scene(
        load_labelled_scene(_file(tmp_path, "clean", cube, gt), label=TARGET), SELECTORS, **OPTIONS
    )
    assert _scores(as_rest) != _scores(clean)


def test_a_stores_invalid_pixels_count_as_an_ignored_class(tmp_path: Path) -> None:
    cube, gt = _scene()
    nodata = np.zeros(gt.shape, bool)
    nodata[:3] = True
    nodata[40:48, 10:30] = True
    holes = cube.copy()
    holes[nodata] = np.nan
    labels = np.where(nodata, BACKGROUND, gt)  # the store's labels there say background: it must not matter
    store = tmp_path / "scene.zarr"
    ingest(_file(tmp_path, "holes", holes, labels), store, mask_nonfinite=True)
    from_store = load_labelled_scene(store, label=TARGET, ignore_label=UNLABELLED)
    assert from_store.valid is not None and np.array_equal(from_store.valid, ~nodata & (gt != UNLABELLED))
    # The same pixels as an ignored class of a file.
    as_ignored = np.where(nodata, UNLABELLED, gt)
    from_file = load_labelled_scene(
        _file(tmp_path, "ignored", cube, as_ignored), label=TARGET, ignore_label=0
    )
    counted = from_store.valid
    assert counted is not None and from_store.nodata is not None and from_file.nodata is None
    np.testing.assert_array_equal(from_store.cube[counted], from_file.cube[counted])
    assert (from_store.cube[from_store.nodata] == 0).all()  # no data, as the store holds it
    assert _scores(compare_scene(from_store, SELECTORS, **OPTIONS)) == _scores(
        compare_scene(from_file, SELECTORS, **OPTIONS)
    )


def test_scene_errors_about_pixels_that_count(tmp_path: Path) -> None:
    cube, gt = _scene()
    broken = cube.copy()
    y, x = np.argwhere(gt == BACKGROUND)[0]
    broken[y, x, 3] = np.nan  # a background pixel, which counts
    with pytest.raises(NonFiniteError, match="1 pixels with NaN/Inf outside the ignored"):
        load_labelled_scene(_file(tmp_path, "broken", broken, gt), label=TARGET, ignore_label=UNLABELLED)
    with pytest.raises(LabelError, match="positive_label"):
        load_labelled_scene(_file(tmp_path, "clean", cube, gt), label=TARGET, ignore_label=TARGET)
    holes = cube.copy()
    holes[:2] = np.nan
    store = tmp_path / "holes.zarr"
    ingest(_file(tmp_path, "holes", holes, gt), store, mask_nonfinite=True)
    # Without an ignore_label the pixels without data get one no class uses (classes 0, 1, 2 here).
    unset = load_labelled_scene(store, multiclass=True)
    assert unset.ignore_label == 3 and unset.labels is not None and (unset.labels[:2] == 3).all()
    assert set(np.unique(unset.labels[2:])) == {UNLABELLED, BACKGROUND, TARGET}  # 0 counts as a class
    spec = {"projection": SelectorSpec("OrthogonalProjectionBandSelector", {"k": 3})}
    options = {"n_random_draws": 2, "folds": 2, "stability": StabilitySettings(n_bootstrap=2)}
    given = load_labelled_scene(store, multiclass=True, ignore_label=255)
    assert _scores(compare_scene(unset, spec, **options)) == _scores(compare_scene(given, spec, **options))
    multi = load_labelled_scene(store, multiclass=True, ignore_label=UNLABELLED)
    assert multi.labels is not None and (multi.labels[:2] == UNLABELLED).all()
    assert multi.nodata is not None and multi.nodata[:2].all() and not multi.nodata[2:].any()
    unlabelled = gt[2:] == UNLABELLED  # ignored pixels with data keep their values
    np.testing.assert_array_equal(multi.cube[2:][unlabelled], cube[2:][unlabelled])
    # A binary scene with one class left among the pixels that count: said at once, with the cause.
    binary = (gt == TARGET).astype(np.int32)
    with pytest.raises(LabelError, match=r"0 negative pixels after leaving out ignore_label=0"):
        load_labelled_scene(_file(tmp_path, "binary", cube, binary), ignore_label=0)


def test_compare_selections_takes_anything_in_the_pixels_that_do_not_count() -> None:
    """Called directly (no scene loader), with NaN where ``valid`` is False: the scores of zeros there."""
    from bandselect.evaluation.compare import compare_selections

    cube, gt = _scene()
    valid = gt != UNLABELLED
    boards = []
    for fill in (np.nan, 0.0):
        values = cube.copy()
        values[~valid] = fill
        boards.append(
            compare_selections(values, gt == TARGET, WAVELENGTHS, SELECTORS, valid=valid, **OPTIONS)
        )
    assert _scores(boards[0]) == _scores(boards[1])
    # What a notebook shows for a leaderboard: the ranking, one line per row, best first (the dataclass
    # repr printed the split masks and every row's training history and bootstrap selections).
    shown = repr(boards[0]).splitlines()
    assert shown[0] == "Leaderboard by rx_auroc (5 rows)" and shown[1].split()[:3] == ["rank", "name", "kind"]
    assert [line.split()[1] for line in shown[2:5]] == [row.name for row in boards[0].rows[:3]]
    assert len(shown) == 2 + len(boards[0].rows)
    html = boards[0]._repr_html_()
    assert "<table>" in html and html.count("<tr>") == 1 + len(boards[0].rows)
    # As markdown (the comparison's MLflow description): one line per row, whatever a cell holds.
    table = boards[0].to_markdown().splitlines()
    assert table[0].startswith("| rank | name | kind |") and len(table) == 2 + len(boards[0].rows)
    first, *rest = boards[0].rows
    odd = dataclasses.replace(boards[0], rows=(dataclasses.replace(first, name="a|b\nc"), *rest))
    assert "| a\\|b c |" in odd.to_markdown().splitlines()[2]


def test_a_file_with_bands_out_of_wavelength_order_is_read_sorted_when_asked(tmp_path: Path) -> None:
    # AVIRIS (jasper) lists its overlapping spectrometers' bands out of order: scene.sort_bands.
    from bandselect.errors import WavelengthError
    from bandselect.flows.compare_selectors import SceneConfig

    cube, gt = _scene()
    order = np.arange(N_BANDS)
    order[[5, 6]] = order[[6, 5]]
    path = tmp_path / "aviris.npz"
    np.savez(path, cube=cube[..., order], gt=gt, wavelengths_nm=WAVELENGTHS[order])
    with pytest.raises(WavelengthError, match=r"scene: \{sort_bands: true\}"):
        load_labelled_scene(path, label=TARGET, ignore_label=UNLABELLED)
    scene = load_labelled_scene(path, label=TARGET, ignore_label=UNLABELLED, sort_bands=True)
    np.testing.assert_array_equal(scene.wavelengths_nm, WAVELENGTHS)
    np.testing.assert_array_equal(
        scene.cube,
        load_labelled_scene(_file(tmp_path, "sorted", cube, gt), label=TARGET, ignore_label=UNLABELLED).cube,
    )
    assert SceneConfig(path=path, sort_bands=True).sort_bands
