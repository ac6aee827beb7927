"""Synthetic data with planted answers for the selector tests (helpers, imported by the test modules)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from shared_cubes import load_shared_cube

#: 61 bands, 400–1000 nm in 10 nm steps: band i is at 400 + 10·i nm.
WAVELENGTHS_61 = torch.linspace(400.0, 1000.0, 61)


@dataclass
class Labelled:
    cube: torch.Tensor  # (B, H, W, C)
    mask: torch.Tensor  # (B, H, W, 1) bool
    wavelengths: torch.Tensor  # (C,)


def labelled_cube(
    planted: dict[int, float],
    *,
    copies: dict[int, int] | None = None,
    n_bands: int = 61,
    batch: int = 2,
    size: int = 24,
    seed: int = 0,
) -> Labelled:
    """Gaussian noise cube whose band ``b`` is shifted by ``planted[b]`` on the positive pixels.

    ``copies`` maps a band to the band it duplicates (plus 1 % noise): a redundant copy.
    """
    generator = torch.Generator().manual_seed(seed)
    cube = torch.randn(batch, size, size, n_bands, generator=generator)
    mask = torch.zeros(batch, size, size, 1, dtype=torch.bool)
    mask[:, size // 4 : size // 2, size // 4 : size // 2] = True
    mask[:, size // 2 + 2 : size - 2, 2 : size // 4] = True
    positive = mask[..., 0].float()
    for band, shift in planted.items():
        cube[..., band] += shift * positive
    for copy, original in (copies or {}).items():
        cube[..., copy] = cube[..., original] + 0.01 * torch.randn(batch, size, size, generator=generator)
    wavelengths = torch.linspace(400.0, 400.0 + 10.0 * (n_bands - 1), n_bands)
    return Labelled(cube=cube, mask=mask, wavelengths=wavelengths)


def load_real(name: str) -> dict[str, np.ndarray]:
    """Load a cube from ../shared/data, or skip when the folder is absent."""
    return load_shared_cube(name)


def subset_weights_reference(logits: np.ndarray, k: int, temperature: float) -> np.ndarray:
    """The successive softmaxes of Xie & Ermon (2019) in NumPy, as the paper states them (not the default).

    ``a_1 = softmax(s / T)``, ``s ← s + log(1 − a)``, ``a_{t+1} = softmax(s / T)``, weights ``Σ_t a_t``;
    ``1 − a`` directly (valid where no ``a`` rounds to 1 in float64, i.e. at moderate temperatures).
    """
    scores = np.asarray(logits, dtype=np.float64).copy()
    total = np.zeros_like(scores)
    for _ in range(k):
        exponent = np.exp((scores - scores.max()) / temperature)
        chosen = exponent / exponent.sum()
        total += chosen
        scores = scores + np.log(1.0 - chosen)
    return total


def projection_weights_reference(logits: np.ndarray, k: int, temperature: float) -> np.ndarray:
    """The relaxed top-k ``σ((s − τ) / T)`` with ``Σ = k``, ``τ`` by plain NumPy bisection."""
    scaled = np.asarray(logits, dtype=np.float64) / temperature
    low, high = scaled.min() - 80.0, scaled.max() + 80.0
    for _ in range(200):
        middle = 0.5 * (low + high)
        if (1.0 / (1.0 + np.exp(-(scaled - middle)))).sum() > k:
            low = middle
        else:
            high = middle
    return 1.0 / (1.0 + np.exp(-(scaled - 0.5 * (low + high))))
