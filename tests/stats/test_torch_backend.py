"""The torch backend computes the partials NumPy computes, on the CPU here (CUDA where a GPU is present)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bandselect.errors import ConfigError
from bandselect.stats import (
    BandStatistics,
    compute_statistics,
    histogram_edges,
    histograms_from_arrays,
    statistics_of,
)
from bandselect.stats.torch_backend import resolve_device
from bandselect.store import make_acquisition, open_campaign

DEVICES = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]


def _data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, size=6000)
    # A large offset (raw counts) and ties on edges (integer values) in some bands.
    x = np.column_stack(
        [
            rng.normal(1e4, 30.0, size=(6000, 3)),
            rng.integers(0, 64, size=(6000, 2)),
            rng.normal(size=(6000, 3)),
        ]
    ).astype(np.float32)
    x[labels == 2, 5] += 2.0
    return x, labels


def _assert_same(ours: BandStatistics, numpy: BandStatistics) -> None:
    np.testing.assert_array_equal(ours.classes, numpy.classes)
    np.testing.assert_array_equal(ours.counts, numpy.counts)
    np.testing.assert_allclose(ours.class_means, numpy.class_means, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ours.class_comoments, numpy.class_comoments, rtol=1e-10, atol=1e-8)
    np.testing.assert_array_equal(ours.class_minimum, numpy.class_minimum)
    np.testing.assert_array_equal(ours.class_maximum, numpy.class_maximum)
    if numpy.histograms is not None:
        np.testing.assert_array_equal(ours.histograms, numpy.histograms)
        np.testing.assert_array_equal(ours.n_clipped, numpy.n_clipped)


@pytest.mark.parametrize("device", DEVICES)
def test_partials_equal_numpy(device: str) -> None:
    x, labels = _data()
    _assert_same(BandStatistics.from_arrays(x, labels, device=device), BandStatistics.from_arrays(x, labels))
    for edges in (
        histogram_edges(x.min(0), x.max(0), 512),  # values exactly on edges in the integer bands
        histogram_edges(np.full(8, 0.0), np.full(8, 32.0), 32),  # most values clipped, both ends
    ):
        ours = BandStatistics.from_arrays(x, labels, hist_edges=edges, device=device)
        _assert_same(ours, BandStatistics.from_arrays(x, labels, hist_edges=edges))
        for a, b in zip(
            histograms_from_arrays(x, labels, hist_edges=edges, device=device),
            histograms_from_arrays(x, labels, hist_edges=edges),
            strict=True,
        ):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", ["uint16", "uint32", "int16", "uint8", ">f4", "float16", "float64"])
def test_raw_dtypes_equal_numpy(device: str, dtype: str) -> None:
    # uint16 is the usual raw sensor format; torch has no uint16/uint32 reductions and no big-endian
    # tensors: the backend converts as the CPU kernels do.
    rng = np.random.default_rng(3)
    cube = (rng.random((40, 50, 4)) * 1000).astype(dtype)
    mask = rng.random((40, 50)) > 0.5
    _assert_same(statistics_of(cube, mask, n_bins=64, device=device), statistics_of(cube, mask, n_bins=64))


@pytest.mark.parametrize("device", DEVICES)
# torch warns when it shares a read-only array (the engine's edges are read-only): not any more
@pytest.mark.filterwarnings("error:The given NumPy array is not writable:UserWarning")
def test_scores_equal_numpy_in_memory_and_over_a_store(device: str, tmp_path) -> None:
    x, labels = _data(1)
    cube, mask = x.reshape(60, 100, 8), (labels == 2).reshape(60, 100)
    ours, numpy = statistics_of(cube, mask, device=device), statistics_of(cube, mask)
    np.testing.assert_array_equal(ours.histograms, numpy.histograms)
    np.testing.assert_allclose(ours.auc, numpy.auc, rtol=1e-12)
    np.testing.assert_allclose(ours.fisher, numpy.fisher, rtol=1e-9)
    np.testing.assert_allclose(ours.correlation, numpy.correlation, rtol=0, atol=1e-9)
    campaign = open_campaign(tmp_path / "c.zarr", create=True)
    campaign.append(make_acquisition(cube, np.linspace(400.0, 900.0, 8), mask.astype(np.uint8)), chunk_yx=16)
    _assert_same(
        compute_statistics(campaign, n_bins=256, device=device), compute_statistics(campaign, n_bins=256)
    )
    empty = BandStatistics.from_arrays(
        np.zeros((0, 8), np.float32), hist_edges=histogram_edges(np.zeros(8), np.ones(8), 4), device=device
    )
    assert empty.count == 0 and empty.histograms.shape == (0, 8, 4)


def test_device_names() -> None:
    assert resolve_device(None) is None and resolve_device("cpu") == "cpu"
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else None)
    with pytest.raises(ConfigError, match="torch device"):
        resolve_device("gpu-please")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA device this machine has"):
            resolve_device("cuda")
        with pytest.raises(ConfigError, match="CUDA device this machine has"):
            BandStatistics.from_arrays(np.zeros((3, 2)), device="cuda:0")
    # "auto" without CUDA is the NumPy path, not torch on the CPU.
    x, labels = _data(2)
    _assert_same(BandStatistics.from_arrays(x, labels, device="auto"), BandStatistics.from_arrays(x, labels))


@pytest.mark.parametrize("device", DEVICES)
def test_fit_and_statistical_trainer_take_the_device(device: str) -> None:
    from bandselect.pipeline import Pipeline
    from bandselect.selectors import SupervisedWindowedFalseRGBSelector
    from bandselect.synthetic import make_scene
    from bandselect.training import ArrayDataModule, StatisticalTrainer

    scene = make_scene(48, 64, seed=3, anomaly_fraction=0.05)
    cube, mask, wavelengths = scene.cube[None], scene.mask[None], scene.wavelengths_nm
    n_bands = cube.shape[-1]
    reference = SupervisedWindowedFalseRGBSelector(num_spectral_bands=n_bands).fit(cube, mask, wavelengths)
    on_device = SupervisedWindowedFalseRGBSelector(num_spectral_bands=n_bands).fit(
        cube, mask, wavelengths, device=device
    )
    expected = reference.selection(wavelengths)
    assert on_device.selection(wavelengths) == expected
    for name in ("fisher", "auc", "mi"):
        np.testing.assert_allclose(
            on_device.selection(wavelengths).score(name), expected.score(name), rtol=1e-6
        )

    pipeline = Pipeline.from_config(
        {
            "nodes": {
                "selector": {
                    "type": "SupervisedWindowedFalseRGBSelector",
                    "config": {"num_spectral_bands": n_bands},
                }
            },
            "connections": [
                ["data.cube", "selector.cube"],
                ["data.wavelengths", "selector.wavelengths"],
                ["data.mask", "selector.mask"],
            ],
        }
    )
    datamodule = ArrayDataModule(cube, mask, wavelengths=wavelengths)
    trainer = StatisticalTrainer(pipeline=pipeline, datamodule=datamodule, device=device)
    assert trainer.fit() == ["selector"]
    assert pipeline.nodes["selector"].selection(wavelengths) == expected
