"""SoftChannelSelector and TopKIndices: the behaviour the spec decides, with known answers."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from bandselect.errors import ConfigError, ShapeError
from bandselect.selectors import SoftChannelSelector, TopKIndices
from bandselect.stats import BandStatistics


def _cube(seed: int = 0, c: int = 12) -> torch.Tensor:
    return torch.rand(2, 5, 5, c, generator=torch.Generator().manual_seed(seed))


def test_temperature_schedule_matches_the_seed_example() -> None:
    selector = SoftChannelSelector(n_select=3, input_channels=61, init_method="uniform", temperature_init=5.0)
    selector.temperature = 5.0
    assert selector.temperature == 5.0
    assert selector.update_temperature(epoch=0) == pytest.approx(5.0)
    assert selector.update_temperature(epoch=1) == pytest.approx(4.5)
    assert selector.temperature == pytest.approx(4.5)
    assert selector.update_temperature(epoch=20) == pytest.approx(5.0 * 0.9**20)
    assert selector.temperature == pytest.approx(0.608, abs=5e-4)
    assert selector.update_temperature(epoch=50) == pytest.approx(0.1)  # 5·0.9^50 ≈ 0.026 < floor
    assert selector.update_temperature(epoch=200) == pytest.approx(0.1)


def test_temperature_is_saved_so_a_resumed_run_continues() -> None:
    selector = SoftChannelSelector(n_select=3, input_channels=8)
    selector.update_temperature(epoch=12)
    buffer = io.BytesIO()
    torch.save(selector.state_dict(), buffer)
    buffer.seek(0)
    resumed = SoftChannelSelector(n_select=3, input_channels=8)
    assert resumed.temperature == pytest.approx(5.0)
    resumed.load_state_dict(torch.load(buffer, weights_only=True))
    assert resumed.temperature == pytest.approx(5.0 * 0.9**12)


def test_temperature_must_be_positive() -> None:
    selector = SoftChannelSelector(n_select=3, input_channels=8)
    with pytest.raises(ConfigError):
        selector.temperature = 0.0


@pytest.mark.parametrize("mode", ["train", "eval", "eval-hard"])
def test_weights_always_sum_to_n_select(mode: str) -> None:
    selector = SoftChannelSelector(n_select=4, input_channels=12, hard=mode == "eval-hard", seed=0)
    with torch.no_grad():
        selector.channel_logits.copy_(torch.randn(12, generator=torch.Generator().manual_seed(2)))
    selector.train(mode == "train")
    for epoch in range(0, 60, 7):
        selector.update_temperature(epoch)
        weights = selector.forward(data=_cube())["weights"]
        assert weights.shape == (12,) and weights.dtype == torch.float32
        assert float(weights.sum()) == pytest.approx(4.0, abs=1e-5)
        assert bool((weights >= 0).all())


def test_selected_is_data_times_weights_with_one_draw_for_the_whole_batch() -> None:
    selector = SoftChannelSelector(n_select=3, input_channels=12, seed=0).train()
    data = _cube()
    out = selector.forward(data=data)
    torch.testing.assert_close(out["selected"], data * out["weights"], rtol=0, atol=0)


def test_gumbel_noise_in_training_mode_only() -> None:
    selector = SoftChannelSelector(n_select=3, input_channels=12, seed=0)
    data = _cube()
    selector.train()
    first, second = (selector.forward(data=data)["weights"] for _ in range(2))
    assert not torch.allclose(first, second)
    # Without noise the weights are uniform (zero logits); with noise they are not.
    assert float(first.std()) > 1e-3
    selector.eval()
    third, fourth = (selector.forward(data=data)["weights"] for _ in range(2))
    assert torch.equal(third, fourth)
    torch.testing.assert_close(third, torch.full((12,), 0.25))
    torch.testing.assert_close(third, selector.get_selection_weights(hard=False))


def test_seeded_noise_is_reproducible() -> None:
    data = _cube()
    runs = []
    for _ in range(2):
        selector = SoftChannelSelector(n_select=3, input_channels=12, seed=123).train()
        runs.append(torch.stack([selector.forward(data=data)["weights"] for _ in range(3)]))
    assert torch.equal(runs[0], runs[1])
    other = SoftChannelSelector(n_select=3, input_channels=12, seed=124).train()
    assert not torch.equal(runs[0][0], other.forward(data=data)["weights"])
    # reseed restarts the sequence; seed=None follows torch's global generator.
    selector = SoftChannelSelector(n_select=3, input_channels=12, seed=123).train()
    selector.forward(data=data)
    selector.reseed(123)
    assert torch.equal(selector.forward(data=data)["weights"], runs[0][0])
    global_runs = []
    for _ in range(2):
        torch.manual_seed(7)
        unseeded = SoftChannelSelector(n_select=3, input_channels=12).train()
        global_runs.append(unseeded.forward(data=data)["weights"])
    assert torch.equal(global_runs[0], global_runs[1])


def test_hard_selection_gives_exactly_n_select_ones() -> None:
    selector = SoftChannelSelector(n_select=3, input_channels=10, hard=True)
    with torch.no_grad():
        selector.channel_logits.copy_(torch.tensor([0.0, 5.0, 1.0, 9.0, 2.0, 5.0, 0.0, -1.0, 3.0, 4.0]))
    selector.eval()
    weights = selector.forward(data=_cube(c=10))["weights"]
    assert torch.equal(weights, torch.tensor([0, 1, 0, 1, 0, 1, 0, 0, 0, 0], dtype=torch.float32))
    assert torch.equal(selector.get_selection_weights(hard=True), weights)
    assert torch.where(weights > 0)[0].tolist() == [1, 3, 5]  # tie 5.0/5.0: both kept; next is 4.0 < 5.0
    # Ties at the cut go to the lower index.
    tied = SoftChannelSelector(n_select=2, input_channels=4, hard=True).eval()
    assert tied.get_selection_weights(hard=True).tolist() == [1.0, 1.0, 0.0, 0.0]


def test_variance_init_is_log_of_the_dataset_variance_over_all_batches() -> None:
    batches = [_cube(seed=s) * (1 + s) for s in range(3)]  # different scales per batch
    stats = BandStatistics.from_arrays(batches[0].numpy())
    for batch in batches[1:]:
        stats = stats.merge(BandStatistics.from_arrays(batch.numpy()))
    selector = SoftChannelSelector(n_select=3, input_channels=12, init_method="variance")
    assert selector.requires_initial_fit and not selector.is_initialized
    request = selector.statistics_request()
    assert request is not None and request.cube_port == "data" and request.mask_port is None
    selector.fit_from_statistics(stats)
    assert selector.is_initialized
    pixels = torch.cat(batches).reshape(-1, 12).double().numpy()
    expected = np.log(pixels.var(axis=0) + 1e-6)
    np.testing.assert_allclose(selector.channel_logits.numpy(), expected, rtol=1e-5)
    first_batch_only = np.log(batches[0].reshape(-1, 12).double().numpy().var(axis=0) + 1e-6)
    assert not np.allclose(selector.channel_logits.numpy(), first_batch_only, rtol=1e-2)
    # fit() on the concatenated arrays takes the same path and gives the same logits.
    direct = SoftChannelSelector(n_select=3, input_channels=12, init_method="variance")
    direct.fit(torch.cat(batches))
    torch.testing.assert_close(direct.channel_logits, selector.channel_logits)
    # High-variance channels get the highest initial weights.
    assert int(direct.get_selection_weights().argmax()) == int(np.argmax(pixels.var(axis=0)))


def test_uniform_init_needs_no_initialisation() -> None:
    selector = SoftChannelSelector(n_select=3, input_channels=12)
    assert not selector.requires_initial_fit and selector.is_initialized
    assert selector.statistics_request() is None
    assert torch.equal(selector.channel_logits, torch.zeros(12))
    with pytest.raises(ConfigError):
        selector.fit_from_statistics(BandStatistics.from_arrays(_cube().numpy()))


def test_unfreeze_makes_logits_trainable_with_the_same_state_dict_keys() -> None:
    selector = SoftChannelSelector(n_select=3, input_channels=12, init_method="variance").fit(_cube())
    keys = set(selector.state_dict())
    assert list(selector.parameters()) == []
    before = selector.channel_logits.clone()
    selector.unfreeze()
    params = list(selector.parameters())
    assert len(params) == 1 and params[0] is selector.channel_logits and params[0].requires_grad
    assert set(selector.state_dict()) == keys
    assert torch.equal(selector.channel_logits.detach(), before)
    optimizer = torch.optim.Adam(selector.parameters(), lr=0.1)
    loss = -selector.forward(data=_cube())["selected"][..., 4].mean()
    loss.backward()
    assert selector.channel_logits.grad is not None and float(selector.channel_logits.grad.abs().sum()) > 0
    optimizer.step()
    assert not torch.equal(selector.channel_logits.detach(), before)
    trained = selector.channel_logits.detach().clone()
    selector.freeze()
    assert list(selector.parameters()) == [] and set(selector.state_dict()) == keys
    assert torch.equal(selector.channel_logits, trained)
    # A state_dict saved while unfrozen loads into a frozen selector.
    selector.unfreeze()
    fresh = SoftChannelSelector(n_select=3, input_channels=12, init_method="variance")
    fresh.load_state_dict(selector.state_dict())
    assert fresh.is_initialized and torch.equal(fresh.channel_logits, trained)


def test_top_k_indices_order_and_ties() -> None:
    top_k = TopKIndices(k=3)
    weights = torch.tensor([0.1, 0.9, 0.3, 0.9, 0.5, 0.3])
    indices = top_k.forward(weights=weights)["indices"]
    assert indices.dtype == torch.int64
    assert indices.tolist() == [1, 3, 4]  # largest first, the 0.9 tie to the lower index
    assert TopKIndices(k=4).forward(weights=weights)["indices"].tolist() == [1, 3, 4, 2]
    assert TopKIndices(k=6).forward(weights=torch.zeros(6))["indices"].tolist() == [0, 1, 2, 3, 4, 5]
    with pytest.raises(ShapeError, match="k <= 6"):
        TopKIndices(k=7).forward(weights=weights)


def test_top_k_of_the_seed_example() -> None:
    selector = SoftChannelSelector(n_select=3, input_channels=61)
    with torch.no_grad():
        selector.channel_logits[[15, 28, 41]] = torch.tensor([3.0, 2.0, 2.5])
    top_k = TopKIndices(k=3)
    outputs = top_k.forward(weights=selector.get_selection_weights(hard=True))
    assert outputs["indices"].tolist() == [15, 28, 41]  # hard weights all 1.0: ties to the lower index
    assert top_k.forward(weights=selector.get_selection_weights())["indices"].tolist() == [15, 41, 28]


# -- relaxations ----------------------------------------------------------------------------------------
def test_unknown_relaxation_is_a_config_error() -> None:
    with pytest.raises(
        ConfigError, match=r"'relaxation' parameter of SoftChannelSelector.*'subset'.*'softmax'"
    ):
        SoftChannelSelector(n_select=3, input_channels=12, relaxation="sparsemax")  # type: ignore[arg-type]


def test_a_schedule_whose_floor_is_above_its_start_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as info:
        SoftChannelSelector(n_select=3, input_channels=12, temperature_init=0.5, temperature_min=0.7)
    assert "temperature_min=0.7 above temperature_init=0.5" in str(info.value)
    assert "Fix:" in str(info.value)


def test_default_relaxation_at_the_floor_is_the_hard_top_k_and_the_seeds_is_one_channel() -> None:
    logits = torch.tensor([0.0, 5.0, 1.0, 9.0, 2.0, 5.5, 0.0, -1.0, 3.0, 4.0, 0.5, 0.0])
    default, seed = (
        SoftChannelSelector(n_select=3, input_channels=12, relaxation=r, seed=0)
        for r in ("subset", "softmax")
    )
    assert default.relaxation == "subset" and default.config["relaxation"] == "subset"
    for selector in (default, seed):
        with torch.no_grad():
            selector.channel_logits.copy_(logits)
        selector.update_temperature(epoch=60)  # the floor, 0.1
    hard = default.get_selection_weights(hard=True)
    torch.testing.assert_close(default.eval().get_selection_weights(), hard, atol=0.01, rtol=0)
    assert torch.where(hard > 0)[0].tolist() == [1, 3, 5]
    torch.testing.assert_close(
        seed.eval().get_selection_weights(), 3.0 * (logits == 9.0).float(), atol=1e-3, rtol=0
    )
    # Both relaxations pick the same hard bands: top-k of the logits.
    assert (
        default.selection(np.arange(12.0) + 400).indices
        == seed.selection(np.arange(12.0) + 400).indices
        == (3, 5, 1)
    )


def test_straight_through_forwards_the_hard_mask_of_the_noisy_logits_with_the_relaxations_gradient() -> None:
    data = _cube()
    straight = SoftChannelSelector(n_select=3, input_channels=12, seed=7, straight_through=True)
    relaxed = SoftChannelSelector(n_select=3, input_channels=12, seed=7)
    for selector in (straight, relaxed):
        with torch.no_grad():
            selector.channel_logits.copy_(torch.linspace(-1.0, 1.0, 12))
        selector.update_temperature(epoch=10)
        selector.unfreeze()
        selector.train()
    hard_out, soft_out = straight.forward(data=data), relaxed.forward(data=data)  # the same noise draw
    weights = hard_out["weights"]
    assert sorted(weights.detach().unique().tolist()) == [0.0, 1.0] and float(weights.detach().sum()) == 3.0
    assert torch.equal(weights.detach() > 0, top_k_of(soft_out["weights"].detach(), 3))
    target = torch.arange(12.0)
    (weights * target).sum().backward()
    (soft_out["weights"] * target).sum().backward()
    torch.testing.assert_close(straight.channel_logits.grad, relaxed.channel_logits.grad)
    # Evaluation is unaffected by straight_through.
    assert torch.equal(straight.eval().get_selection_weights(), relaxed.eval().get_selection_weights())


def top_k_of(weights: torch.Tensor, k: int) -> torch.Tensor:
    mask = torch.zeros_like(weights, dtype=torch.bool)
    mask[torch.argsort(weights, descending=True)[:k]] = True
    return mask


def test_the_ports_carry_the_configured_channel_count() -> None:
    selector = SoftChannelSelector(n_select=3, input_channels=12)
    assert selector.INPUT_PORTS["data"].shape == ("B", "H", "W", 12)
    assert selector.OUTPUT_PORTS["selected"].shape == ("B", "H", "W", 12)
    assert selector.OUTPUT_PORTS["weights"].shape == (12,)
    assert SoftChannelSelector.OUTPUT_PORTS["selected"].shape == ("B", "H", "W", "C")  # the class's contract
