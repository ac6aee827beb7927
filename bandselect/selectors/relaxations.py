"""Continuous relaxations of choosing ``k`` of ``C`` channels, and the Gumbel noise that samples them.

Two relaxations of a k-hot mask from scores ``s`` (logits, plus Gumbel noise in training) at a
temperature ``T``; both give non-negative weights summing to ``k``:

``"softmax"`` (the seed's)
    ``w = k · softmax(s / T)``. As ``T → 0`` it tends to ``k`` on the single largest score: one channel,
    not ``k`` of them.
``"subset"`` (relaxed top-k)
    The top-k mask relaxed by a binary-entropy term, i.e. the projection of ``s / T`` onto the polytope
    ``{0 ≤ w ≤ 1, Σ w = k}`` (the "limited multi-label projection" of Amos, Xu and Kolter, 2019):
    ``w_c = σ((s_c − τ) / T)`` with the threshold ``τ`` such that ``Σ_c w_c = k``. Every weight is in
    ``[0, 1]``; as ``T → 0`` the weights tend to the hard top-k mask (1.0 on each of the ``k`` largest
    scores), as ``T → ∞`` to ``k / C`` everywhere. With Gumbel noise on ``s`` its low-temperature limit is
    a Gumbel-top-k draw: ``k`` distinct channels sampled without replacement with probabilities
    ``∝ exp(logits)`` (Kool, van Hoof and Welling, ICML 2019).

    Why not the successive softmaxes of Xie and Ermon (IJCAI 2019, ``s ← s + log(1 − a_t)``, ``k``
    rounds)? Their mass removal is not scaled by ``1 / T``: two near-tied leading scores split the first
    round (e.g. 0.65 / 0.35), too little mass is removed, and a later round picks the leader again. On
    Gumbel-perturbed logits at the seed's floor ``T = 0.1`` that put 1.58 on one channel and 0.08 on the
    third of a clear top-3 in one draw of five; the projection cannot exceed 1.

Numerics. ``τ`` is found by bisection in float64 (``Σ σ`` is monotone in ``τ``) and differentiated
implicitly (``∂τ/∂s_c = σ'_c / Σ σ'``, so ``Σ w`` stays ``k`` to first order); nothing takes the log of
a probability, so no weight rounding to 0 or 1 can make a gradient infinite: saturated weights simply
pass no gradient.
"""

from __future__ import annotations

from typing import Literal

import torch

__all__ = [
    "DEFAULT_RELAXATION",
    "RELAXATIONS",
    "Relaxation",
    "gumbel_noise",
    "relax",
    "softmax_relaxation",
    "subset_relaxation",
    "top_k_mask",
]

Relaxation = Literal["subset", "softmax"]
RELAXATIONS: tuple[str, ...] = ("subset", "softmax")
#: Chosen on real scenes: the numbers are in docs/learnable.md (benchmarks/bench_learnable.py).
DEFAULT_RELAXATION: Relaxation = "subset"


def top_k_mask(weights: torch.Tensor, k: int) -> torch.Tensor:
    """1.0 on the ``k`` largest entries of a 1-D tensor (ties to the lower index), 0.0 elsewhere.

    Examples
    --------
    >>> top_k_mask(torch.tensor([0.2, 0.9, 0.2, 0.5]), 2)
    tensor([0., 1., 0., 1.])
    """
    order = torch.sort(-weights.detach(), stable=True).indices[:k]
    mask = torch.zeros_like(weights)
    mask[order] = 1.0
    return mask


def gumbel_noise(shape: tuple[int, ...], generator: torch.Generator | None, eps: float) -> torch.Tensor:
    """Standard Gumbel(0, 1) draws ``−log(−log u)``, ``u`` uniform clamped to ``[eps, 1 − eps]``.

    The clamp keeps both logs finite (``u`` of exactly 0 or 1); float32 on the CPU, so a seeded
    ``generator`` gives the same draws whatever device the model is on.
    """
    uniform = torch.rand(shape, generator=generator, dtype=torch.float32)
    uniform = uniform.clamp(eps, 1.0 - eps)
    return -torch.log(-torch.log(uniform))


def softmax_relaxation(scores: torch.Tensor, k: int, temperature: float) -> torch.Tensor:
    """``k · softmax(scores / T)`` over the last dimension (the seed's relaxation).

    Examples
    --------
    >>> softmax_relaxation(torch.tensor([3.0, 2.0, 0.0, 0.0]), 2, 0.01).round(decimals=6).tolist()
    [2.0, 0.0, 0.0, 0.0]
    """
    return k * torch.softmax(scores / temperature, dim=-1)


def _threshold(scaled: torch.Tensor, k: int) -> torch.Tensor:
    """The ``τ`` with ``Σ σ(scaled − τ) = k`` (bisection in float64; ``scaled`` is 1-D, ``k < C``)."""
    # σ(x) < 1e-30 for x < -69: bracket wide enough that the sum is ~C at the low end and ~0 at the top.
    low = scaled.min() - 80.0
    high = scaled.max() + 80.0
    for _ in range(100):
        middle = 0.5 * (low + high)
        above = torch.sigmoid(scaled - middle).sum() > k
        low = torch.where(above, middle, low)
        high = torch.where(above, high, middle)
    return 0.5 * (low + high)


def subset_relaxation(scores: torch.Tensor, k: int, temperature: float) -> torch.Tensor:
    """Relaxed top-k of a 1-D ``scores`` tensor: ``σ((scores − τ) / T)`` summing to ``k`` (see the module).

    Parameters
    ----------
    scores
        ``(C,)`` logits (plus Gumbel noise for a sample).
    k
        Subset size, ``1 <= k <= C``.
    temperature
        ``T > 0``; ``T → 0`` gives the top-k mask, large ``T`` gives ``k / C`` everywhere.

    Returns
    -------
    torch.Tensor
        ``(C,)`` weights in ``scores``' dtype, each in ``[0, 1]``, summing to ``k``.

    Examples
    --------
    >>> weights = subset_relaxation(torch.tensor([3.0, 2.0, 0.0, 0.0]), 2, 0.01)
    >>> weights.round(decimals=6).tolist()
    [1.0, 1.0, 0.0, 0.0]
    >>> round(float(subset_relaxation(torch.tensor([3.0, 2.0, 0.0, 0.0]), 2, 1.0).sum()), 6)
    2.0
    """
    if k >= scores.shape[-1]:
        return torch.ones_like(scores) + 0.0 * scores  # every channel, with a (zero) gradient path
    scaled = scores.to(torch.float64) / temperature
    with torch.no_grad():
        tau = _threshold(scaled, k)
        slope = torch.sigmoid(scaled - tau) * torch.sigmoid(tau - scaled)  # σ' without 1 − σ rounding
        share = slope / slope.sum().clamp_min(torch.finfo(torch.float64).tiny)
    # τ as a function of the scores to first order (implicit differentiation of Σ σ(s − τ) = k): its
    # value is the bisection's, its gradient ∂τ/∂s = σ' / Σ σ'.
    tau = tau + (share * (scaled - scaled.detach())).sum()
    return torch.sigmoid(scaled - tau).to(scores.dtype)


def relax(scores: torch.Tensor, k: int, temperature: float, relaxation: Relaxation) -> torch.Tensor:
    """The ``relaxation`` of ``scores`` (``"subset"`` or ``"softmax"``) at ``temperature``."""
    if relaxation == "subset":
        return subset_relaxation(scores, k, temperature)
    return softmax_relaxation(scores, k, temperature)
