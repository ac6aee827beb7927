"""The relaxations of a k-subset: limits, sums, agreement with the paper's formula, finite gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from selector_fixtures import subset_weights_reference

from bandselect.selectors.relaxations import (
    gumbel_noise,
    relax,
    softmax_relaxation,
    subset_relaxation,
    top_k_mask,
)

LOGITS = torch.tensor([0.3, 2.0, -1.0, 1.5, 0.0, 1.4, -0.5, 0.2])


@pytest.mark.parametrize("temperature", [0.01, 0.1, 0.5, 1.0, 5.0, 100.0])
@pytest.mark.parametrize("k", [1, 3, 7])
def test_both_relaxations_are_non_negative_and_sum_to_k(temperature: float, k: int) -> None:
    for weights in (subset_relaxation(LOGITS, k, temperature), softmax_relaxation(LOGITS, k, temperature)):
        assert weights.dtype == torch.float32 and weights.shape == LOGITS.shape
        assert bool((weights >= 0).all())
        assert float(weights.sum()) == pytest.approx(k, abs=1e-5)


def test_subset_low_temperature_limit_is_the_hard_top_k_and_softmax_is_one_channel() -> None:
    hard = top_k_mask(LOGITS, 3)
    assert torch.where(hard > 0)[0].tolist() == [1, 3, 5]
    torch.testing.assert_close(subset_relaxation(LOGITS, 3, 0.005), hard, atol=1e-6, rtol=0)
    # The seed's softmax goes to the whole budget on the single largest logit instead.
    torch.testing.assert_close(
        softmax_relaxation(LOGITS, 3, 0.005), 3 * top_k_mask(LOGITS, 1), atol=1e-6, rtol=0
    )


def test_subset_high_temperature_limit_is_uniform() -> None:
    torch.testing.assert_close(subset_relaxation(LOGITS, 3, 1e6), torch.full((8,), 3 / 8), atol=1e-5, rtol=0)


@pytest.mark.parametrize("temperature", [0.05, 0.5, 1.0, 3.0])
def test_subset_is_the_entropic_projection_onto_the_k_subset_polytope(temperature: float) -> None:
    """w = σ((s − τ) / T) for one threshold τ, every weight in [0, 1], the sum k: the projection's KKT."""
    weights = subset_relaxation(LOGITS.double(), 3, temperature)
    assert bool((weights >= 0).all()) and bool((weights <= 1).all())
    assert float(weights.sum()) == pytest.approx(3.0, abs=1e-9)
    inside = (weights > 1e-12) & (weights < 1 - 1e-12)
    thresholds = LOGITS.double()[inside] - temperature * torch.logit(weights[inside])
    assert float(thresholds.max() - thresholds.min()) < 1e-6


def test_subset_gradient_is_the_exact_derivative_and_keeps_the_sum() -> None:
    scores = LOGITS.double().clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: subset_relaxation(x, 3, 0.7), (scores,), eps=1e-6, atol=1e-5)
    jacobian = torch.autograd.functional.jacobian(lambda x: subset_relaxation(x, 3, 0.7), scores)
    torch.testing.assert_close(jacobian.sum(dim=0), torch.zeros(8, dtype=torch.float64), atol=1e-9, rtol=0)


def test_successive_softmaxes_put_more_than_one_on_a_channel_the_projection_cannot() -> None:
    """Why the default is not Xie & Ermon's successive softmaxes: near-tied leaders split a round."""
    scores = np.array([8.08, 8.02, 6.76, 3.03, 0.0])
    successive = subset_weights_reference(scores, 3, 0.1)
    assert successive.max() > 1.5 and successive[2] < 0.1
    projection = subset_relaxation(torch.from_numpy(scores), 3, 0.1).numpy()
    np.testing.assert_allclose(projection, [1.0, 1.0, 1.0, 0.0, 0.0], atol=1e-6)


def test_subset_orders_channels_as_their_logits() -> None:
    weights = subset_relaxation(LOGITS, 3, 0.7)
    assert torch.argsort(weights, descending=True).tolist() == torch.argsort(LOGITS, descending=True).tolist()


@pytest.mark.parametrize("temperature", [0.1, 0.01])
def test_gradients_stay_finite_where_weights_round_to_zero_and_one(temperature: float) -> None:
    """At the seed's floor most weights are exactly 0 or 1 in float32: the value and gradient stay finite."""
    logits = torch.tensor([40.0, 0.0, -30.0, 12.0, 39.9, -5.0], requires_grad=True)
    weights = subset_relaxation(logits, 3, temperature)
    assert bool(torch.isfinite(weights).all())
    torch.testing.assert_close(weights.detach(), torch.tensor([1.0, 0, 0, 1, 1, 0]), atol=1e-12, rtol=0)
    (weights * torch.arange(6.0)).sum().backward()
    assert logits.grad is not None and bool(torch.isfinite(logits.grad).all())
    # Every channel is saturated: no gradient (the exact derivative rounds to 0), never NaN.
    assert float(logits.grad.abs().max()) < 1e-6


def test_noisy_low_temperature_draws_are_k_distinct_channels() -> None:
    """Training draws at the floor: Gumbel-perturbed logits, relaxed top-3 ≥ 0.9 on 3 distinct channels."""
    generator = torch.Generator().manual_seed(0)
    logits = torch.zeros(20)
    logits[[2, 9, 15]] = 20.0
    for _ in range(50):
        weights = subset_relaxation(logits + gumbel_noise((20,), generator, 1e-6), 3, 0.1)
        top = torch.sort(weights, descending=True)
        assert bool((top.values[:3] >= 0.9).all()) and sorted(top.indices[:3].tolist()) == [2, 9, 15]
        assert float(top.values[3]) < 0.1


def test_relax_dispatches_and_gumbel_noise_is_seeded_and_finite() -> None:
    torch.testing.assert_close(relax(LOGITS, 2, 0.5, "subset"), subset_relaxation(LOGITS, 2, 0.5))
    torch.testing.assert_close(relax(LOGITS, 2, 0.5, "softmax"), softmax_relaxation(LOGITS, 2, 0.5))
    first = gumbel_noise((1000,), torch.Generator().manual_seed(4), 1e-6)
    again = gumbel_noise((1000,), torch.Generator().manual_seed(4), 1e-6)
    assert torch.equal(first, again) and bool(torch.isfinite(first).all())
    assert float(first.mean()) == pytest.approx(0.5772, abs=0.1)  # Euler–Mascheroni, the Gumbel mean
