"""ConcreteBandSelector: a reduction to n_select distinct bands, annealed and freezable like the soft one."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from bandselect.errors import ConfigError, NotFittedError, PipelineError, ShapeError
from bandselect.nodes import RXDetector
from bandselect.pipeline import Pipeline
from bandselect.pipeline.config import resolve_pipeline_band_counts
from bandselect.pipeline.node import Annealed, BandSelector, Freezable, WeightedSelector
from bandselect.pipeline.registry import get_node_class
from bandselect.selectors import ConcreteBandSelector, SelectorDiversityRegularizer
from bandselect.selectors.concrete import resolve_distinct_bands
from bandselect.stats import statistics_of

WAVELENGTHS = np.linspace(450.0, 900.0, 10)


def _cube(seed: int = 0, channels: int = 10) -> torch.Tensor:
    return torch.rand(2, 6, 5, channels, generator=torch.Generator().manual_seed(seed))


def _with_logits(rows: list[list[float]], **options: object) -> ConcreteBandSelector:
    selector = ConcreteBandSelector(input_channels=len(rows[0]), n_select=len(rows), seed=0, **options)
    with torch.no_grad():
        selector.logits.copy_(torch.tensor(rows))
    return selector


def test_capabilities_registration_and_defaults() -> None:
    selector = ConcreteBandSelector(input_channels=10)
    assert get_node_class("ConcreteBandSelector") is ConcreteBandSelector
    for protocol in (BandSelector, Annealed, Freezable, WeightedSelector):
        assert isinstance(selector, protocol)
    assert selector.n_select == 3 and selector.hard is True
    assert (selector.temperature_init, selector.temperature_min, selector.temperature_decay) == (
        5.0,
        0.1,
        0.9,
    )
    assert selector.logits.shape == (3, 10) and set(selector.state_dict()) == {
        "logits",
        "current_temperature",
    }


def test_bad_arguments_are_config_errors_naming_the_parameter() -> None:
    with pytest.raises(ConfigError, match=r"'n_select' parameter of ConcreteBandSelector.*\[1, 10\]"):
        ConcreteBandSelector(input_channels=10, n_select=11)
    with pytest.raises(ConfigError, match=r"temperature_min=6\.0 above temperature_init=5\.0"):
        ConcreteBandSelector(input_channels=10, temperature_min=6.0)
    with pytest.raises(ConfigError, match="'init_method'"):
        ConcreteBandSelector(input_channels=10, init_method="pca")


def test_training_forward_is_a_soft_reduction_with_one_noise_draw_per_output_and_band() -> None:
    selector = ConcreteBandSelector(input_channels=10, n_select=3, seed=1).train()
    data = _cube()
    out = selector.forward(data=data)
    assert out["selected"].shape == (2, 6, 5, 3) and out["weights"].shape == (3, 10)
    torch.testing.assert_close(out["weights"].sum(dim=1), torch.ones(3))
    torch.testing.assert_close(out["channel_weights"], out["weights"].sum(dim=0))
    torch.testing.assert_close(out["selected"], torch.einsum("bhwc,kc->bhwk", data, out["weights"]))
    assert not torch.allclose(out["weights"][0], out["weights"][1])  # each output draws its own noise
    again = ConcreteBandSelector(input_channels=10, n_select=3, seed=1).train().forward(data=data)
    assert torch.equal(again["weights"], out["weights"])  # seeded


def test_hard_evaluation_outputs_exactly_the_selected_bands_in_output_order() -> None:
    selector = _with_logits([[0, 0, 0, 0, 9, 0], [0, 9, 0, 0, 8, 0], [0, 0, 0, 0, 9.5, 0]])
    # Outputs 0 and 2 both prefer band 4; output 2 is the more confident and keeps it, output 0 takes its
    # next best (a tie among the zeros: the lowest band not taken).
    assert selector.get_selected_bands() == [0, 1, 4]
    data = _cube(channels=6)
    out = selector.eval().forward(data=data)
    torch.testing.assert_close(out["selected"], data[..., [0, 1, 4]], rtol=0, atol=0)
    assert selector.get_selection_weights(hard=True).tolist() == [1.0, 1.0, 0.0, 0.0, 1.0, 0.0]
    selection = selector.selection(WAVELENGTHS[:6])
    assert selection.output_indices == (0, 1, 4)  # channel j of `selected` is band output_indices[j]
    assert selection.indices == (4, 0, 1)  # in the order the outputs chose (most confident first)
    assert selection.selector_type == "ConcreteBandSelector"


def test_the_bands_do_not_depend_on_the_temperature_where_the_probabilities_saturate() -> None:
    # At the floor (T = 0.1) the float32 row maxima of outputs 0 and 2 are both exactly 1.0: the more
    # confident output 2 must still keep band 4 (compared in float64 log space).
    rows = [[0, 0, 0, 0, 9, 0], [0, 9, 0, 0, 8, 0], [0, 0, 0, 0, 9.5, 0]]
    for epoch in (0, 10, 40, 200):
        selector = _with_logits(rows)
        selector.update_temperature(epoch)
        assert selector.get_selected_bands() == [0, 1, 4], float(selector.temperature)
    assert float(selector.temperature) == pytest.approx(selector.temperature_min)
    # Saturated beyond float64 too (both largest log-probabilities 0.0): the wider gap wins.
    far = _with_logits([[0, 0, 900.0], [0, 0, 950.0]])
    far.update_temperature(200)
    assert far.get_selected_bands() == [0, 2]


def test_duplicate_resolution_rule() -> None:
    probabilities = torch.tensor([[0.1, 0.8, 0.1], [0.2, 0.7, 0.1], [0.5, 0.4, 0.1]])
    assert resolve_distinct_bands(probabilities) == ([1, 0, 2], [0, 1, 2])
    # Equal rows (e.g. the variance initialisation): outputs in order take the best bands in turn.
    same = torch.tensor([[0.1, 0.5, 0.4]] * 3)
    assert resolve_distinct_bands(same) == ([1, 2, 0], [0, 1, 2])
    assert resolve_distinct_bands(log_probabilities=probabilities.log()) == ([1, 0, 2], [0, 1, 2])
    # The matrix once: two that could disagree, or none, is a caller's mistake.
    with pytest.raises(ConfigError, match=r"exactly one of probabilities or log_probabilities.*both"):
        resolve_distinct_bands(probabilities, log_probabilities=same.log())
    with pytest.raises(ConfigError, match="neither"):
        resolve_distinct_bands()


def test_soft_evaluation_and_the_selection_weights_sum_to_n_select() -> None:
    selector = _with_logits([[0, 2, 0, 0], [1, 0, 0, 0]], hard=False).eval()
    out = selector.forward(data=_cube(channels=4))
    torch.testing.assert_close(out["weights"], torch.softmax(selector.logits / 5.0, dim=1))
    assert float(selector.get_selection_weights().sum()) == pytest.approx(2.0)


def test_annealing_freezing_and_state_dict_round_trip() -> None:
    selector = ConcreteBandSelector(input_channels=10, seed=0)
    assert selector.update_temperature(epoch=3) == pytest.approx(5.0 * 0.9**3)
    assert list(selector.parameters()) == []
    selector.unfreeze()
    assert [p.shape for p in selector.parameters()] == [torch.Size([3, 10])] and selector.is_trainable
    loss = selector.train().forward(data=_cube())["selected"][..., 1].mean()
    loss.backward()
    assert selector.logits.grad is not None and bool(torch.isfinite(selector.logits.grad).all())
    selector.freeze()
    buffer = io.BytesIO()
    torch.save(selector.state_dict(), buffer)
    buffer.seek(0)
    restored = ConcreteBandSelector(input_channels=10, seed=0)
    restored.load_state_dict(torch.load(buffer, weights_only=True))
    assert restored.temperature == pytest.approx(5.0 * 0.9**3)
    assert torch.equal(restored.logits, selector.logits)


def test_variance_initialisation_is_the_top_variance_bands() -> None:
    data = _cube() * torch.linspace(0.1, 2.0, 10)
    selector = ConcreteBandSelector(input_channels=10, init_method="variance")
    with pytest.raises(NotFittedError):
        selector.get_selected_bands()
    selector.fit(data)
    variance = data.reshape(-1, 10).double().var(dim=0, unbiased=False)
    expected = torch.log(variance + 1e-6).float()
    torch.testing.assert_close(selector.logits, expected.expand(3, 10))
    assert sorted(selector.get_selected_bands()) == sorted(torch.argsort(-variance)[:3].tolist())
    other = ConcreteBandSelector(input_channels=10, init_method="variance")
    other.fit_from_statistics(statistics_of(data.numpy(), n_bins=None))
    assert torch.equal(other.logits, selector.logits)


def test_selected_feeding_a_node_built_for_every_band_fails_when_connecting() -> None:
    pipeline = Pipeline()
    pipeline.add_node(ConcreteBandSelector(input_channels=10, n_select=3), name="concrete")
    pipeline.add_node(RXDetector(input_channels=10, background="batch"), name="rx")
    with pytest.raises(PipelineError) as info:
        pipeline.connect(("data.cube", "concrete.data"), ("concrete.selected", "rx.data"))
    message = str(info.value)
    assert "concrete.selected → rx.data" in message
    assert "('B', 'H', 'W', 10)" in message and "('B', 'H', 'W', 3)" in message
    assert "input_channels: 3" in message  # the fix says what to configure
    # The YAML form fails at build time with the same error, naming the connection.
    config = {
        "nodes": {
            "concrete": {"type": "ConcreteBandSelector", "config": {"input_channels": 10}},
            "rx": {"type": "RXDetector", "config": {"input_channels": 10, "background": "batch"}},
        },
        "connections": [["data.cube", "concrete.data"], ["concrete.selected", "rx.data"]],
    }
    with pytest.raises(PipelineError, match=r"concrete\.selected → rx\.data.*\('B', 'H', 'W', 3\)"):
        Pipeline.from_config(config)
    # Built for n_select channels, it connects; the per-output weights do not fit a (C,) regularizer.
    config["nodes"]["rx"]["config"]["input_channels"] = 3
    config["nodes"]["diversity"] = {"type": "SelectorDiversityRegularizer", "config": {}}
    Pipeline.from_config(
        {**config, "connections": [*config["connections"], ["concrete.channel_weights", "diversity.weights"]]}
    )
    with pytest.raises(PipelineError, match=r"concrete\.weights → diversity\.weights") as info:
        Pipeline.from_config(
            {**config, "connections": [*config["connections"], ["concrete.weights", "diversity.weights"]]}
        )
    # ... and the error names the output that fits.
    fix = "Fix: connect concrete.channel_weights (shape (10,)) to diversity.weights instead"
    assert fix in str(info.value)


def test_auto_behind_the_concrete_selector_is_the_channels_that_arrive() -> None:
    """The recipe with its selector swapped for Concrete: ``input_channels: auto`` on RX means the
    n_select channels that reach it (was: the sensor's 10 bands, and a shape error)."""
    config = {
        "nodes": {
            "concrete": {"type": "ConcreteBandSelector", "config": {"input_channels": "auto", "n_select": 4}},
            "rx": {"type": "RXDetector", "config": {"input_channels": "auto", "background": "batch"}},
            "rx_all": {"type": "RXDetector", "config": {"input_channels": "auto", "background": "batch"}},
        },
        "connections": [
            ["data.cube", "concrete.data"],
            ["concrete.selected", "rx.data"],
            ["data.cube", "rx_all.data"],
        ],
    }
    resolved = resolve_pipeline_band_counts(config, 10)
    counts = {name: node["config"]["input_channels"] for name, node in resolved["nodes"].items()}
    assert counts == {"concrete": 10, "rx": 4, "rx_all": 10}
    assert list(resolved["nodes"]) == ["concrete", "rx", "rx_all"]  # the file's order kept
    pipeline = Pipeline.from_config(resolved)
    out = pipeline.run(cube=_cube(channels=10))
    assert out["rx"]["scores"].shape == (*_cube(channels=10).shape[:3], 1)
    # An explicit count is the user's: still refused when it does not fit.
    config["nodes"]["rx"]["config"]["input_channels"] = 10
    with pytest.raises(PipelineError, match=r"concrete\.selected → rx\.data"):
        Pipeline.from_config(resolve_pipeline_band_counts(config, 10))


def test_diversity_on_channel_weights_penalises_two_outputs_on_one_band() -> None:
    duplicate = _with_logits([[9.0, 0, 0, 0], [9.0, 0, 0, 0]], hard=False).eval()
    distinct = _with_logits([[9.0, 0, 0, 0], [0, 9.0, 0, 0]], hard=False).eval()
    duplicate.temperature = distinct.temperature = 0.1
    regularizer = SelectorDiversityRegularizer(weight=1.0)
    assert float(regularizer(weights=duplicate(data=_cube(channels=4))["channel_weights"])["loss"]) > 0.9
    assert float(regularizer(weights=distinct(data=_cube(channels=4))["channel_weights"])["loss"]) < 1e-6


def test_input_with_the_wrong_channel_count_is_a_shape_error() -> None:
    with pytest.raises(ShapeError, match="10"):
        ConcreteBandSelector(input_channels=10).forward(data=_cube(channels=8))
