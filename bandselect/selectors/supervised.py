"""Supervised band selectors (mRMR or Bhattacharyya separability) fitted from data-set-wide statistics.

The scoring itself lives in :mod:`bandselect.stats` (``mrmr_select``, ``separability_select``); these
nodes map wavelength windows to band indices, keep the fitted result in buffers and compose the RGB image.

Label situations (see :mod:`bandselect.labels`): a binary task (class 0 against labels > 0, or one class
against the rest with ``fit(..., positive_label=c)``), a multi-class task (``multiclass=True``: every
class with pixels, any set of class ids), and pixels left out of every statistic
(``fit(..., ignore_label=0)``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from bandselect.pipeline.registry import register_node
from bandselect.selectors._supervised_base import (
    CRITERIA,
    MASK_PORT,
    SupervisedBandSelectorBase,
    as_cube,
    document_fitted_attributes,
)

__all__ = [
    "CRITERIA",
    "MASK_PORT",
    "SupervisedBandSelectorBase",
    "SupervisedCIRBandSelector",
    "SupervisedFullSpectrumBandSelector",
    "SupervisedWindowedFalseRGBSelector",
    "as_cube",
]


@register_node
@document_fitted_attributes
class SupervisedCIRBandSelector(SupervisedBandSelectorBase):
    """Supervised CIR band selection: one band in each of the NIR, Red and Green windows.

    Relevance (Fisher, AUC, MI) and redundancy (|Pearson ρ|) come from data-set-wide statistics; the
    greedy mRMR picks one band per window in window order (NIR, Red, Green), maximising
    ``band_scores − lambda_penalty · max |ρ with picked bands|``, never the same band twice. With
    ``criterion="separability"`` the subset maximising the Bhattacharyya distance between the classes
    is chosen instead (windows respected). The RGB image is CIR: NIR → R, Red → G, Green → B.

    Parameters
    ----------
    num_spectral_bands : int
        Total number of spectral bands ``C``.
    windows : sequence of 3 (low_nm, high_nm), default ((840.0, 910.0), (650.0, 720.0), (500.0, 570.0))
        NIR, Red, Green windows.
    score_weights : tuple of 3 float, default (1.0, 1.0, 1.0)
        Weights of (Fisher, AUC, MI).
    lambda_penalty : float, default 0.5
        Redundancy penalty of the mRMR.
    criterion : {"mrmr", "separability"}, default "mrmr"
        Selection method (``score_weights``/``lambda_penalty`` only apply to ``"mrmr"``).
    multiclass : bool, default False
        Compare every class of the labels (multi-class scores, mean Jeffries–Matusita separability)
        instead of class 0 against labels > 0.

    Shape
    -----
    - cube: ``(B, H, W, C)`` float32; wavelengths: ``(C,)`` nm; mask: ``(B, H, W, 1)`` bool (initialisation)
    - rgb_image: ``(B, H, W, 3)`` float32 in [0, 1], channels R, G, B = NIR, Red, Green bands
    - band_info: dict (``strategy``, ``band_indices`` in R, G, B order, ``band_wavelengths_nm``,
      ``windows_nm``, ``channel_mapping``, per-band scores of the shown bands, ...)

    %(fitted_attributes)s

    Examples
    --------
    >>> import torch
    >>> from bandselect.selectors import SupervisedCIRBandSelector
    >>> wavelengths = torch.linspace(400.0, 1000.0, 61)
    >>> cube = torch.rand(2, 16, 16, 61)
    >>> mask = torch.zeros(2, 16, 16, 1, dtype=torch.bool)
    >>> mask[:, 4:8, 4:8] = True
    >>> cube[..., 47] += 2.0 * mask[..., 0]  # a discriminative NIR band (870 nm)
    >>> selector = SupervisedCIRBandSelector(num_spectral_bands=61).fit(cube, mask, wavelengths)
    >>> int(selector.selected_indices[0])
    47
    >>> selector.forward(cube=cube, wavelengths=wavelengths)["rgb_image"].shape
    torch.Size([2, 16, 16, 3])
    """

    STRATEGY = "supervised_cir"
    RGB_FROM_PICKS = (0, 1, 2)
    WINDOW_NAMES = ("NIR", "Red", "Green")

    def __init__(
        self,
        num_spectral_bands: int,
        windows: Sequence[Sequence[float]] = ((840.0, 910.0), (650.0, 720.0), (500.0, 570.0)),
        score_weights: Sequence[float] = (1.0, 1.0, 1.0),
        lambda_penalty: float = 0.5,
        *,
        criterion: Literal["mrmr", "separability"] = "mrmr",
        multiclass: bool = False,
    ) -> None:
        self._setup(
            num_spectral_bands=num_spectral_bands,
            windows=windows,
            score_weights=score_weights,
            lambda_penalty=lambda_penalty,
            criterion=criterion,
            k=None,
            multiclass=multiclass,
        )


@register_node
@document_fitted_attributes
class SupervisedWindowedFalseRGBSelector(SupervisedBandSelectorBase):
    """Supervised band selection constrained to the visible Blue, Green and Red windows.

    Same selection as :class:`SupervisedCIRBandSelector`, one band per window in window order (Blue,
    Green, Red), so ``selected_indices`` is in B, G, R order; the image is R, G, B (the red channel shows
    the band picked in the third window).

    Parameters
    ----------
    num_spectral_bands : int
        Total number of spectral bands ``C``.
    windows : sequence of 3 (low_nm, high_nm), default ((440.0, 500.0), (500.0, 580.0), (610.0, 700.0))
        Blue, Green, Red windows.
    score_weights : tuple of 3 float, default (1.0, 1.0, 1.0)
        Weights of (Fisher, AUC, MI).
    lambda_penalty : float, default 0.5
        Redundancy penalty of the mRMR.
    criterion : {"mrmr", "separability"}, default "mrmr"
        Selection method.
    multiclass : bool, default False
        Compare every class of the labels instead of class 0 against labels > 0.

    Shape
    -----
    - cube: ``(B, H, W, C)`` float32; wavelengths: ``(C,)`` nm; mask: ``(B, H, W, 1)`` bool (initialisation)
    - rgb_image: ``(B, H, W, 3)`` float32 in [0, 1], channels R, G, B
    - band_info: dict (``band_indices`` in R, G, B order, ...)

    %(fitted_attributes)s

    Examples
    --------
    >>> import torch
    >>> from bandselect.selectors import SupervisedWindowedFalseRGBSelector
    >>> wavelengths = torch.linspace(400.0, 1000.0, 61)
    >>> cube = torch.rand(2, 16, 16, 61)
    >>> mask = torch.zeros(2, 16, 16, 1, dtype=torch.bool)
    >>> mask[:, 4:8, 4:8] = True
    >>> cube[..., 26] += 2.0 * mask[..., 0]  # a discriminative red band (660 nm)
    >>> selector = SupervisedWindowedFalseRGBSelector(num_spectral_bands=61).fit(cube, mask, wavelengths)
    >>> selector.forward(cube=cube, wavelengths=wavelengths)["band_info"]["band_indices"][0]
    26
    """

    STRATEGY = "supervised_windowed_false_rgb"
    RGB_FROM_PICKS = (2, 1, 0)
    WINDOW_NAMES = ("Blue", "Green", "Red")

    def __init__(
        self,
        num_spectral_bands: int,
        windows: Sequence[Sequence[float]] = ((440.0, 500.0), (500.0, 580.0), (610.0, 700.0)),
        score_weights: Sequence[float] = (1.0, 1.0, 1.0),
        lambda_penalty: float = 0.5,
        *,
        criterion: Literal["mrmr", "separability"] = "mrmr",
        multiclass: bool = False,
    ) -> None:
        self._setup(
            num_spectral_bands=num_spectral_bands,
            windows=windows,
            score_weights=score_weights,
            lambda_penalty=lambda_penalty,
            criterion=criterion,
            k=None,
            multiclass=multiclass,
        )


@register_node
@document_fitted_attributes
class SupervisedFullSpectrumBandSelector(SupervisedBandSelectorBase):
    """Supervised selection of ``k`` bands anywhere in the spectrum (no window constraint).

    The greedy mRMR (or the separability search) picks ``k`` bands; ``selected_indices`` lists them in
    pick order (most relevant first). The RGB image shows the first three picks as R, G, B.

    Parameters
    ----------
    num_spectral_bands : int
        Total number of spectral bands ``C``.
    score_weights : tuple of 3 float, default (1.0, 1.0, 1.0)
        Weights of (Fisher, AUC, MI).
    lambda_penalty : float, default 0.5
        Redundancy penalty of the mRMR.
    criterion : {"mrmr", "separability"}, default "mrmr"
        Selection method.
    multiclass : bool, default False
        Compare every class of the labels instead of class 0 against labels > 0.
    k : int, default 3
        Number of bands to select, ``3 <= k <= num_spectral_bands`` (the image needs three).

    Shape
    -----
    - cube: ``(B, H, W, C)`` float32; wavelengths: ``(C,)`` nm; mask: ``(B, H, W, 1)`` bool (initialisation)
    - rgb_image: ``(B, H, W, 3)`` float32 in [0, 1]: picks 1, 2, 3 as R, G, B
    - band_info: dict (``band_indices`` = first three picks, ``selected_indices`` = all ``k``, ...)

    %(fitted_attributes)s

    Examples
    --------
    >>> import torch
    >>> from bandselect.selectors import SupervisedFullSpectrumBandSelector
    >>> wavelengths = torch.linspace(400.0, 1000.0, 61)
    >>> cube = torch.rand(2, 16, 16, 61)
    >>> mask = torch.zeros(2, 16, 16, 1, dtype=torch.bool)
    >>> mask[:, 4:8, 4:8] = True
    >>> cube[..., 7] += 2.0 * mask[..., 0]
    >>> selector = SupervisedFullSpectrumBandSelector(num_spectral_bands=61, k=3)
    >>> int(selector.fit(cube, mask, wavelengths).selected_indices[0])
    7
    """

    STRATEGY = "supervised_full_spectrum"
    RGB_FROM_PICKS = (0, 1, 2)

    def __init__(
        self,
        num_spectral_bands: int,
        score_weights: Sequence[float] = (1.0, 1.0, 1.0),
        lambda_penalty: float = 0.5,
        *,
        criterion: Literal["mrmr", "separability"] = "mrmr",
        k: int = 3,
        multiclass: bool = False,
    ) -> None:
        self._setup(
            num_spectral_bands=num_spectral_bands,
            windows=None,
            score_weights=score_weights,
            lambda_penalty=lambda_penalty,
            criterion=criterion,
            k=k,
            multiclass=multiclass,
        )
