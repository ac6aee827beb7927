"""StatisticalTrainer and initialize_from_statistics: data-set-wide statistics, two passes, errors."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from bandselect.errors import ConfigError, LabelError, PipelineError, TrainingError
from bandselect.pipeline import Node, Pipeline, PortSpec, StatisticsRequest
from bandselect.stats import BandStatistics, data_edges
from bandselect.training import ArrayDataModule, StatisticalTrainer, initialize_from_statistics

CUBE = ("B", "H", "W", "C")
N_BANDS = 4
WAVELENGTHS = [450.0, 550.0, 650.0, 750.0]


class Scale(Node):
    INPUT_PORTS = (PortSpec("cube", torch.float32, CUBE),)
    OUTPUT_PORTS = (PortSpec("cube", torch.float32, CUBE),)

    def __init__(self, factor: float = 2.0) -> None:
        super().__init__(factor=factor)
        self.factor = factor
        self.calls_in_training_mode = 0

    def forward(self, cube: torch.Tensor) -> dict[str, torch.Tensor]:
        self.calls_in_training_mode += int(self.training)
        return {"cube": cube * self.factor}


class Center(Node):
    """Subtracts the data-set mean it was initialised with (a fitted node upstream of another)."""

    INPUT_PORTS = (PortSpec("cube", torch.float32, CUBE),)
    OUTPUT_PORTS = (PortSpec("cube", torch.float32, CUBE),)
    requires_initial_fit = True

    def __init__(self, n_bands: int) -> None:
        super().__init__(n_bands=n_bands)
        self.register_buffer("mean", torch.zeros(n_bands, dtype=torch.float64))

    def statistics_request(self) -> StatisticsRequest:
        return StatisticsRequest(cube_port="cube")

    def fit_from_statistics(self, stats: Any, *, wavelengths: Any = None) -> None:
        self.mean.copy_(torch.from_numpy(stats.mean))
        self._mark_initialized()

    def forward(self, cube: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"cube": cube - self.mean.to(cube.dtype)}


class VarianceProbe(Node):
    """Keeps the variance, mean and wavelengths it was initialised with."""

    INPUT_PORTS = (
        PortSpec("cube", torch.float32, CUBE),
        PortSpec("wavelengths", torch.float32, ("C",)),
    )
    OUTPUT_PORTS = (PortSpec("variance", torch.float64, ("C",)),)
    requires_initial_fit = True

    def __init__(self, n_bands: int) -> None:
        super().__init__(n_bands=n_bands)
        self.register_buffer("fitted_variance", torch.zeros(n_bands, dtype=torch.float64))
        self.register_buffer("mean", torch.zeros(n_bands, dtype=torch.float64))
        self.wavelengths_seen: Any = None

    def statistics_request(self) -> StatisticsRequest:
        return StatisticsRequest(cube_port="cube", wavelengths_port="wavelengths")

    def fit_from_statistics(self, stats: Any, *, wavelengths: Any = None) -> None:
        self.fitted_variance.copy_(torch.from_numpy(stats.variance))
        self.mean.copy_(torch.from_numpy(stats.mean))
        self.wavelengths_seen = wavelengths
        self._mark_initialized()

    def forward(self, cube: torch.Tensor, wavelengths: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        return {"variance": self.fitted_variance}


class HistogramProbe(Node):
    """A supervised node: labels and histograms requested."""

    INPUT_PORTS = (
        PortSpec("cube", torch.float32, CUBE),
        PortSpec("mask", torch.bool, ("B", "H", "W", 1), optional=True),
    )
    OUTPUT_PORTS = ()
    requires_initial_fit = True

    def __init__(self, n_bins: int = 16) -> None:
        super().__init__(n_bins=n_bins)
        self.n_bins = n_bins
        self.stats: BandStatistics | None = None

    def statistics_request(self) -> StatisticsRequest:
        return StatisticsRequest(cube_port="cube", mask_port="mask", histograms=True, n_bins=self.n_bins)

    def fit_from_statistics(self, stats: Any, *, wavelengths: Any = None) -> None:
        self.stats = stats

    def forward(self, cube: torch.Tensor, mask: torch.Tensor | None = None) -> dict[str, Any]:
        return {}


def _frames(n: int = 3, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    # Each frame has its own offset and scale, so one batch's variance is far from the data set's.
    offsets = np.array([0.0, 5.0, -3.0, 10.0][:n], dtype=np.float32)[:, None, None, None]
    scales = np.array([1.0, 3.0, 0.5, 2.0][:n], dtype=np.float32)[:, None, None, None]
    return (rng.normal(size=(n, 6, 5, N_BANDS)).astype(np.float32) * scales + offsets).astype(np.float32)


def _probe_pipeline(*, scale: float | None = 2.0) -> tuple[Pipeline, VarianceProbe]:
    pipeline = Pipeline()
    probe = VarianceProbe(N_BANDS)
    if scale is None:
        pipeline.connect(("data.cube", probe.cube))
    else:
        upstream = Scale(scale)
        pipeline.connect(("data.cube", upstream.cube), (upstream.cube, probe.cube))
    pipeline.connect(("data.wavelengths", probe.wavelengths))
    return pipeline, probe


def test_variance_is_data_set_wide_through_upstream_node() -> None:
    frames = _frames()
    pipeline, probe = _probe_pipeline(scale=2.0)
    pipeline.train()
    trainer = StatisticalTrainer(
        pipeline=pipeline, datamodule=ArrayDataModule(frames, wavelengths=WAVELENGTHS)
    )
    assert trainer.fit() == ["variance_probe"]
    pixels = (2.0 * frames.astype(np.float64)).reshape(-1, N_BANDS)
    np.testing.assert_allclose(probe.fitted_variance.numpy(), pixels.var(axis=0), rtol=1e-6)
    np.testing.assert_allclose(probe.mean.numpy(), pixels.mean(axis=0), rtol=1e-6)
    one_batch = (2.0 * frames[0].astype(np.float64)).reshape(-1, N_BANDS).var(axis=0)
    assert not np.allclose(probe.fitted_variance.numpy(), one_batch, rtol=0.1)
    assert probe.is_initialized
    assert trainer.statistics_["variance_probe"].count == frames.size // N_BANDS
    np.testing.assert_array_equal(probe.wavelengths_seen.numpy(), np.float32(WAVELENGTHS))
    # upstream ran in eval mode; the pipeline's mode is restored
    assert pipeline.nodes["scale"].calls_in_training_mode == 0
    assert pipeline.training


def test_fitted_node_upstream_is_initialised_first() -> None:
    frames = _frames()
    pipeline = Pipeline()
    center, probe = Center(N_BANDS), VarianceProbe(N_BANDS)
    pipeline.add_node(probe, name="probe")  # added first: the order must come from the graph
    pipeline.add_node(center, name="center")
    pipeline.connect(
        ("data.cube", center.cube), (center.cube, probe.cube), ("data.wavelengths", probe.wavelengths)
    )
    done = StatisticalTrainer(
        pipeline=pipeline, datamodule=ArrayDataModule(frames, wavelengths=WAVELENGTHS)
    ).fit()
    assert done == ["center", "probe"]
    pixels = frames.astype(np.float64).reshape(-1, N_BANDS)
    np.testing.assert_allclose(center.mean.numpy(), pixels.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(probe.mean.numpy(), 0.0, atol=1e-5)  # it saw centred data
    np.testing.assert_allclose(probe.fitted_variance.numpy(), pixels.var(axis=0), rtol=1e-5)


def test_only_the_listed_nodes_are_initialised() -> None:
    """nodes=[...]: train_two_phase passes the nodes not yet initialised (e.g. by Dask statistics)."""
    frames = _frames()
    pipeline = Pipeline()
    center, probe = Center(N_BANDS), VarianceProbe(N_BANDS)
    pipeline.add_node(center, name="center")
    pipeline.add_node(probe, name="probe")
    pipeline.connect(
        ("data.cube", center.cube), (center.cube, probe.cube), ("data.wavelengths", probe.wavelengths)
    )
    center.mean.fill_(1.0)  # initialised elsewhere: must stay as it is
    center._mark_initialized()
    dm = ArrayDataModule(frames, wavelengths=WAVELENGTHS)
    assert StatisticalTrainer(pipeline=pipeline, datamodule=dm, nodes=["probe"]).fit() == ["probe"]
    np.testing.assert_array_equal(center.mean.numpy(), 1.0)
    pixels = frames.astype(np.float64).reshape(-1, N_BANDS)
    np.testing.assert_allclose(probe.mean.numpy(), pixels.mean(axis=0) - 1.0, rtol=1e-5, atol=1e-6)
    with pytest.raises(PipelineError, match=r"cannot initialise nodes \['nope'\]"):
        StatisticalTrainer(pipeline=pipeline, datamodule=dm, nodes=["nope"])
    pipeline.add_node(Scale(), name="scale")
    with pytest.raises(ConfigError, match=r"nodes \['scale'\] need no statistical initialisation"):
        StatisticalTrainer(pipeline=pipeline, datamodule=dm, nodes=["scale"])


def test_max_batches_and_batching_do_not_change_the_answer() -> None:
    frames = _frames(4)
    pixels = frames.astype(np.float64).reshape(-1, N_BANDS)
    for batch_size, patch in ((1, None), (3, (4, 2)), (4, None)):
        pipeline, probe = _probe_pipeline(scale=None)
        dm = ArrayDataModule(
            frames, wavelengths=WAVELENGTHS, batch_size=batch_size, patch_size=patch, shuffle=True
        )
        StatisticalTrainer(pipeline=pipeline, datamodule=dm).fit()
        np.testing.assert_allclose(probe.fitted_variance.numpy(), pixels.var(axis=0), rtol=1e-6)
    pipeline, probe = _probe_pipeline(scale=None)
    StatisticalTrainer(
        pipeline=pipeline, datamodule=ArrayDataModule(frames, wavelengths=WAVELENGTHS), max_batches=2
    ).fit()
    np.testing.assert_allclose(probe.fitted_variance.numpy(), pixels[: 2 * 30].var(axis=0), rtol=1e-6)


def test_histogram_two_pass() -> None:
    frames = _frames()
    labels = frames[..., 0] > 1.0
    pipeline = Pipeline()
    probe = HistogramProbe(n_bins=16)
    pipeline.connect(("data.cube", probe.cube), ("data.mask", probe.mask))
    dm = ArrayDataModule(frames, mask=labels, wavelengths=WAVELENGTHS, batch_size=2)
    StatisticalTrainer(pipeline=pipeline, datamodule=dm, progress=True).fit()
    stats = probe.stats
    assert stats is not None and stats.has_histograms
    pixels = frames.astype(np.float64).reshape(-1, N_BANDS)
    flat_labels = labels.reshape(-1)
    edges = data_edges(pixels.min(axis=0), pixels.max(axis=0), 16)  # the engine's binning rule
    np.testing.assert_allclose(stats.hist_edges, edges)
    assert stats.classes.tolist() == [0, 1]
    for k, positive in enumerate((False, True)):
        for band in range(N_BANDS):
            expected, _ = np.histogram(pixels[flat_labels == positive, band], bins=edges[band])
            np.testing.assert_array_equal(stats.histograms[k, band], expected)
    assert stats.class_count(1) == int(labels.sum())
    np.testing.assert_allclose(stats.variance, pixels.var(axis=0), rtol=1e-6)


class CountingDataModule(ArrayDataModule):
    """An ArrayDataModule that counts the passes over its batches (the reads of the data)."""

    passes = 0

    def train_dataloader(self) -> Any:
        self.passes += 1
        return super().train_dataloader()


@pytest.mark.parametrize("replay_bytes", [None, 0, 700])
def test_histograms_come_from_one_read_when_the_inputs_fit_the_budget(replay_bytes: int | None) -> None:
    # The first pass keeps the binned node's inputs (the upstream Scale's output) while they fit
    # replay_bytes: one pass over the batches. Past the budget (700 bytes: one of the three ~510-byte
    # batches) or at 0, a second pass bins; the histograms are the same.
    frames = _frames()
    labels = frames[..., 0] > 1.0
    pipeline = Pipeline()
    scale, probe = Scale(factor=3.0), HistogramProbe(n_bins=16)
    pipeline.connect(("data.cube", scale.cube), (scale.cube, probe.cube), ("data.mask", probe.mask))
    dm = CountingDataModule(frames, mask=labels, wavelengths=WAVELENGTHS, batch_size=1)
    options = {} if replay_bytes is None else {"replay_bytes": replay_bytes}
    StatisticalTrainer(pipeline=pipeline, datamodule=dm, **options).fit()
    assert dm.passes == (1 if replay_bytes is None else 2)
    stats = probe.stats
    assert stats is not None and stats.has_histograms
    pixels = 3.0 * frames.astype(np.float64).reshape(-1, N_BANDS)
    flat_labels = labels.reshape(-1)
    edges = data_edges(pixels.min(axis=0), pixels.max(axis=0), 16)
    np.testing.assert_allclose(stats.hist_edges, edges)
    for k, positive in enumerate((False, True)):
        for band in range(N_BANDS):
            expected, _ = np.histogram(pixels[flat_labels == positive, band], bins=edges[band])
            np.testing.assert_array_equal(stats.histograms[k, band], expected)


def test_a_negative_replay_budget_is_a_config_error() -> None:
    pipeline = Pipeline()
    probe = HistogramProbe()
    pipeline.connect(("data.cube", probe.cube), ("data.mask", probe.mask))
    with pytest.raises(ConfigError, match="replay_bytes"):
        StatisticalTrainer(
            pipeline=pipeline, datamodule=ArrayDataModule(_frames(), wavelengths=WAVELENGTHS), replay_bytes=-1
        )


def test_missing_mask_is_a_label_error_naming_the_node() -> None:
    pipeline = Pipeline()
    probe = HistogramProbe()
    pipeline.add_node(probe, name="supervised")
    pipeline.connect(("data.cube", probe.cube), ("data.mask", probe.mask))
    trainer = StatisticalTrainer(
        pipeline=pipeline, datamodule=ArrayDataModule(_frames(), wavelengths=WAVELENGTHS)
    )
    with pytest.raises(
        LabelError, match=r"node 'supervised' \(HistogramProbe\) needs labels.*yields no mask"
    ):
        trainer.fit()
    unconnected = Pipeline()
    other = HistogramProbe()
    unconnected.add_node(other, name="supervised")
    unconnected.connect(("data.cube", other.cube))
    with pytest.raises(
        LabelError, match=r"connect the labels: pipeline.connect\(\('data.mask', 'supervised.mask'"
    ):
        StatisticalTrainer(
            pipeline=unconnected, datamodule=ArrayDataModule(_frames(), wavelengths=WAVELENGTHS)
        ).fit()


def test_a_multiclass_node_is_fitted_from_the_batches_class_ids() -> None:
    # The batches' bool mask is the binary rule (label > 0); a multi-class node's statistics compare the
    # class ids the batches carry beside it ('labels'), with the ignored class left out by 'valid'.
    from multiclass_scenes import UNLABELLED, planted_pair_scene
    from training_fixtures import supervised_pipeline

    from bandselect.selectors import SupervisedFullSpectrumBandSelector

    scene = planted_pair_scene(size=24)

    def node() -> SupervisedFullSpectrumBandSelector:
        return SupervisedFullSpectrumBandSelector(
            scene.cube.shape[-1], criterion="separability", k=len(scene.planted), multiclass=True
        )

    streamed = node()
    data = ArrayDataModule(
        scene.cube[None],
        scene.labels[None],
        wavelengths=scene.wavelengths_nm,
        patch_size=8,
        batch_size=3,
        ignore_label=UNLABELLED,
    )
    trainer = StatisticalTrainer(pipeline=supervised_pipeline(streamed), datamodule=data)
    trainer.fit()
    assert sorted(streamed.selected_indices.tolist()) == sorted(scene.planted)
    stats = next(iter(trainer.statistics_.values()))
    assert stats.classes.tolist() == sorted(set(scene.labels.ravel().tolist()) - {UNLABELLED})
    # The same scores as the in-memory fit from the class ids.
    memory = node()
    memory.fit(scene.cube[None], scene.labels[None], scene.wavelengths_nm, ignore_label=UNLABELLED)
    assert streamed.selected_indices.tolist() == memory.selected_indices.tolist()
    np.testing.assert_allclose(streamed.band_scores, memory.band_scores, rtol=1e-6, atol=1e-9)


def test_a_multiclass_node_refuses_a_bool_mask_without_class_ids() -> None:
    # A datamodule of the user's own that yields only the bool mask: the node would compare
    # "label > 0" against the rest; refused, naming the batch key that carries the ids.
    from multiclass_scenes import planted_pair_scene
    from training_fixtures import supervised_pipeline

    from bandselect.names import PORT_LABELS
    from bandselect.selectors import SupervisedFullSpectrumBandSelector

    scene = planted_pair_scene(size=24)
    node = SupervisedFullSpectrumBandSelector(
        scene.cube.shape[-1], criterion="separability", k=len(scene.planted), multiclass=True
    )
    batches = [
        {key: value for key, value in batch.items() if key != PORT_LABELS}
        for batch in ArrayDataModule(
            scene.cube[None], scene.labels[None], wavelengths=scene.wavelengths_nm
        ).train_dataloader()
    ]

    class MaskOnly:
        def train_dataloader(self) -> list[dict[str, Any]]:
            return batches

    with pytest.raises(LabelError, match=r"multiclass=True.*bool mask from data\.mask.*yield 'labels'"):
        StatisticalTrainer(pipeline=supervised_pipeline(node), datamodule=MaskOnly()).fit()
    assert not node.is_initialized


def test_trainer_argument_errors() -> None:
    pipeline, _ = _probe_pipeline()
    dm = ArrayDataModule(_frames(), wavelengths=WAVELENGTHS)
    with pytest.raises(ConfigError, match="max_batches"):
        StatisticalTrainer(pipeline=pipeline, datamodule=dm, max_batches=0)
    with pytest.raises(ConfigError, match="train_dataloader"):
        StatisticalTrainer(pipeline=pipeline, datamodule=object())  # type: ignore[arg-type]

    class Empty:
        def train_dataloader(self) -> list[dict[str, Any]]:
            return []

    with pytest.raises(TrainingError, match="yielded none"):
        StatisticalTrainer(pipeline=pipeline, datamodule=Empty()).fit()


def test_initialize_from_precomputed_statistics() -> None:
    frames = _frames()
    stats = BandStatistics.from_arrays(frames[:2]).merge(BandStatistics.from_arrays(frames[2:]))
    pipeline, probe = _probe_pipeline(scale=None)
    assert initialize_from_statistics(pipeline, stats, WAVELENGTHS) == ["variance_probe"]
    np.testing.assert_allclose(
        probe.fitted_variance.numpy(), frames.astype(np.float64).reshape(-1, N_BANDS).var(axis=0)
    )
    assert probe.wavelengths_seen == WAVELENGTHS
    # behind a transforming node: refused with the way out
    behind, _ = _probe_pipeline(scale=2.0)
    with pytest.raises(PipelineError, match=r"fed by scale.cube.*StatisticalTrainer"):
        initialize_from_statistics(behind, stats, WAVELENGTHS)
    # supervised node, statistics without labels
    supervised = Pipeline()
    node = HistogramProbe()
    supervised.connect(("data.cube", node.cube), ("data.mask", node.mask))
    with pytest.raises(LabelError, match=r"needs labelled statistics.*classes \[0\]"):
        initialize_from_statistics(supervised, stats)
    labelled = BandStatistics.from_arrays(frames, frames[..., 0] > 1.0)
    with pytest.raises(ConfigError, match="needs per-class histograms"):
        initialize_from_statistics(supervised, labelled)


def test_soft_channel_selector_variance_init_uses_all_batches() -> None:
    selectors = pytest.importorskip("bandselect.selectors")
    frames = _frames()
    selector = selectors.SoftChannelSelector(n_select=2, input_channels=N_BANDS, init_method="variance")
    pipeline = Pipeline()
    pipeline.add_node(selector)
    pipeline.connect(("data.cube", selector.data))
    StatisticalTrainer(pipeline=pipeline, datamodule=ArrayDataModule(frames, wavelengths=WAVELENGTHS)).fit()
    variance = frames.astype(np.float64).reshape(-1, N_BANDS).var(axis=0)
    np.testing.assert_allclose(selector.channel_logits.numpy(), np.log(variance + selector.eps), rtol=1e-5)
