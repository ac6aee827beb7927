"""Supervised band selectors (mRMR or Bhattacharyya separability) fitted from data-set-wide statistics.

The scoring itself lives in :mod:`bandselect.stats` (``mrmr_select``, ``separability_select``); these
nodes map wavelength windows to band indices, keep the fitted result in buffers and compose the RGB image.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import numpy as np
import torch

from bandselect.errors import ConfigError, InputError, LabelError, NotFittedError, ShapeError
from bandselect.pipeline.node import PortSpec, StatisticsRequest
from bandselect.pipeline.registry import register_node
from bandselect.selection import BandSelection
from bandselect.selectors.base import (
    BAND_INFO_PORT,
    CUBE_PORT,
    RGB_ORDER,
    RGB_PORT,
    WAVELENGTHS_PORT,
    BandSelectorBase,
)
from bandselect.spectral import window_indices
from bandselect.validation import (
    check_choice,
    check_float,
    check_float_tuple,
    check_int,
    check_windows,
    validate_cube,
    validate_mask,
    validate_node_wavelengths,
)

CRITERIA = ("mrmr", "separability")

#: The fitted attributes every supervised selector documents (filled into the class docstrings).
_FITTED_ATTRIBUTES = """Attributes
    ----------
    All are buffers, saved in ``state_dict``.

    selected_indices : (n_picks,) int64
        The selected bands in pick order (one per window, in window order); -1 before fitting.
    fisher_scores, auc_scores, mi_scores : (C,) float32
        Raw relevance per band: Fisher ``(μ1 − μ0)² / (σ1² + σ0²)``, symmetric AUC ``max(AUC, 1 − AUC)``,
        mutual information in nats (AUC and MI from the statistics engine's per-class histograms).
    band_scores : (C,) float32
        Combined relevance ``Σ w_i · rescaled_score_i / Σ w_i`` (each score rescaled to [0, 1]).
    correlation : (C, C) float32
        Pearson correlation of the bands over all training pixels (the mRMR redundancy term).
    objective : () float64
        The criterion's value for the selected subset.
"""


def _document_fitted_attributes(cls: type) -> type:
    """Fill the shared Attributes section into a supervised selector's docstring (written once)."""
    cls.__doc__ = (cls.__doc__ or "").replace("%(fitted_attributes)s", _FITTED_ATTRIBUTES)
    return cls


MASK_PORT = PortSpec(
    "mask",
    torch.bool,
    ("B", "H", "W", 1),
    "Binary mask (1=positive, 0=negative); required for initialization",
    optional=True,
)


def _check_score_weights(owner: str, value: Any) -> list[float]:
    weights = check_float_tuple(owner, "score_weights", value, 3)
    if sum(weights) <= 0:
        raise ConfigError(
            f"The 'score_weights' parameter of {owner}",
            expected="three non-negative weights (Fisher, AUC, MI) with a positive sum",
            found=repr(tuple(value)),
            fix="give at least one score a positive weight, e.g. (1.0, 1.0, 1.0)",
        )
    return weights


class _SupervisedBandSelector(BandSelectorBase):
    """Shared machinery of the supervised selectors (not registered; use the concrete classes)."""

    INPUT_PORTS = (CUBE_PORT, WAVELENGTHS_PORT, MASK_PORT)
    OUTPUT_PORTS = (RGB_PORT, BAND_INFO_PORT)
    requires_initial_fit: ClassVar[bool] = True

    STRATEGY: ClassVar[str] = ""
    #: Position in the pick list (window order) of the bands shown as R, G, B.
    RGB_FROM_PICKS: ClassVar[tuple[int, int, int]] = (0, 1, 2)
    #: Meaning of each window, in window order (empty for the full-spectrum selector).
    WINDOW_NAMES: ClassVar[tuple[str, ...]] = ()

    def _setup(
        self,
        *,
        num_spectral_bands: Any,
        windows: Any,
        score_weights: Any,
        lambda_penalty: Any,
        criterion: Any,
        k: Any,
    ) -> None:
        owner = type(self).__name__
        num_spectral_bands = check_int(owner, "num_spectral_bands", num_spectral_bands, minimum=3)
        checked_windows = None if windows is None else check_windows(owner, "windows", windows, length=3)
        weights = _check_score_weights(owner, score_weights)
        lambda_penalty = check_float(owner, "lambda_penalty", lambda_penalty, minimum=0.0)
        criterion = check_choice(owner, "criterion", criterion, CRITERIA)
        config: dict[str, Any] = {"num_spectral_bands": num_spectral_bands}
        if checked_windows is not None:
            config["windows"] = checked_windows
            n_picks = len(checked_windows)
        else:
            n_picks = check_int(owner, "k", k, minimum=3, maximum=num_spectral_bands)
        config.update(score_weights=weights, lambda_penalty=lambda_penalty, criterion=criterion)
        if checked_windows is None:
            config["k"] = n_picks
        BandSelectorBase.__init__(self, **config)
        self.num_spectral_bands = num_spectral_bands
        self.windows = None if checked_windows is None else tuple(tuple(w) for w in checked_windows)
        self.score_weights = tuple(weights)
        self.lambda_penalty = lambda_penalty
        self.criterion = criterion
        self.n_picks = n_picks
        # Registered at construction (sized by the configuration) so state_dict keys never change.
        c = num_spectral_bands
        self.register_buffer("selected_indices", torch.full((n_picks,), -1, dtype=torch.int64))
        self.register_buffer("fisher_scores", torch.zeros(c, dtype=torch.float32))
        self.register_buffer("auc_scores", torch.zeros(c, dtype=torch.float32))
        self.register_buffer("mi_scores", torch.zeros(c, dtype=torch.float32))
        self.register_buffer("band_scores", torch.zeros(c, dtype=torch.float32))
        self.register_buffer("correlation", torch.zeros(c, c, dtype=torch.float32))
        self.register_buffer("objective", torch.tensor(0.0, dtype=torch.float64))

    # -- statistical initialisation ---------------------------------------------------------------
    def statistics_request(self) -> StatisticsRequest:
        """Moments, correlation and per-class histograms of ``cube`` labelled by ``mask``."""
        return StatisticsRequest(
            cube_port="cube", mask_port="mask", histograms=True, wavelengths_port="wavelengths"
        )

    def _check_labels(self, stats: Any) -> None:
        classes = np.asarray(stats.classes)
        counts = np.asarray(stats.counts)
        negative = int(counts[classes == 0].sum())
        positive = int(counts[classes > 0].sum())
        owner = f"{type(self).__name__} initialisation: mask"
        expected = "pixels of both classes (0 = negative, 1 = positive)"
        if positive == 0:
            raise LabelError(
                owner,
                expected=expected,
                found=f"only the negative class 0 ({negative} pixels): no positive pixel, "
                "or no mask connected",
                fix="connect data.mask to the selector and use training data with positive pixels",
            )
        if negative == 0:
            raise LabelError(
                owner,
                expected=expected,
                found=f"only the positive class ({positive} pixels) - no negative (0) pixel",
                fix="use training data that also contains background / negative pixels",
            )

    def _window_candidates(self, wavelengths: Any) -> list[np.ndarray] | None:
        if self.windows is None:
            if wavelengths is not None:
                validate_node_wavelengths(wavelengths, self.num_spectral_bands)
            return None
        wl = validate_node_wavelengths(wavelengths, self.num_spectral_bands)
        return [window_indices(wl, window) for window in self.windows]

    def fit_from_statistics(self, stats: Any, *, wavelengths: Any = None) -> None:
        """Select the bands from data-set-wide :class:`~bandselect.stats.BandStatistics`.

        Windows are mapped to band indices with :func:`bandselect.spectral.window_indices`, then
        :func:`bandselect.stats.mrmr_select` or :func:`bandselect.stats.separability_select` picks one
        band per window (in window order) or ``k`` bands overall.

        Parameters
        ----------
        stats : bandselect.stats.BandStatistics
            Statistics with the binary labels (class 0 negative, labels > 0 positive) and, for
            ``criterion="mrmr"``, per-class histograms (AUC, MI).
        wavelengths : array-like of shape (C,), optional
            Band wavelengths in nm; required by the windowed selectors.
        """
        from bandselect.stats import mrmr_select, separability_select

        owner = type(self).__name__
        if int(stats.n_bands) != self.num_spectral_bands:
            raise ShapeError(
                f"{owner} statistics",
                expected=f"statistics of num_spectral_bands={self.num_spectral_bands} bands",
                found=f"{int(stats.n_bands)} bands",
                fix="compute the statistics on the cube this selector receives, or fix num_spectral_bands",
            )
        self._check_labels(stats)
        if stats.histograms is None:
            raise InputError(
                f"{owner} statistics",
                expected="per-class histograms (AUC and MI need them)",
                found="statistics without histograms",
                fix="compute them with bandselect.stats.statistics_of(cube, mask) or compute_statistics",
            )
        candidates = self._window_candidates(wavelengths)
        if self.criterion == "mrmr":
            selection = mrmr_select(
                stats,
                self.n_picks,
                windows=candidates,
                score_weights=self.score_weights,
                lambda_penalty=self.lambda_penalty,
            )
        else:
            selection = separability_select(stats, self.n_picks, windows=candidates)
        indices = np.array(selection.indices, dtype=np.int64, copy=True)
        if indices.shape != (self.n_picks,) or np.unique(indices).size != self.n_picks:
            raise InputError(
                f"{owner} selection",
                expected=f"{self.n_picks} distinct band indices",
                found=indices.tolist(),
                fix="report this: the statistics engine returned an invalid selection",
            )

        def as_float(values: Any) -> torch.Tensor:
            return torch.tensor(np.asarray(values, dtype=np.float64), dtype=torch.float32)

        with torch.no_grad():
            self.selected_indices.copy_(torch.from_numpy(indices))
            self.fisher_scores.copy_(as_float(selection.fisher))
            self.auc_scores.copy_(as_float(selection.auc))
            self.mi_scores.copy_(as_float(selection.mi))
            self.band_scores.copy_(as_float(selection.band_scores))
            self.correlation.copy_(as_float(stats.correlation))
            self.objective.fill_(float(selection.objective))
        self._mark_initialized()

    def fit(
        self, cube: Any, mask: Any, wavelengths: Any = None, *, device: str | None = None
    ) -> _SupervisedBandSelector:
        """Fit directly from a ``(B, H, W, C)`` cube and its mask (tensors or arrays).

        Same code path as the statistical initialisation and the flows:
        :func:`bandselect.stats.statistics_of` makes the statistics exactly as ``compute_statistics``
        makes them from a campaign store (moments, then per-class histograms on the engine's binning rule
        with its default bins), then :meth:`fit_from_statistics` selects. The same pixels in memory and in
        a store give the same selection.

        Parameters
        ----------
        cube : tensor or array of shape (B, H, W, C)
        mask : tensor or array of shape (B, H, W, 1) or (B, H, W)
            Labels: 0 = negative, anything > 0 = positive.
        wavelengths : tensor or array of shape (C,)
            Band wavelengths in nm (required by the windowed selectors).
        device : str, optional
            Where the statistics are computed: None (NumPy), ``"auto"`` (CUDA when present) or a torch
            device (``"cuda"``, ``"cpu"``); see :mod:`bandselect.stats.torch_backend`.

        Returns
        -------
        self
        """
        from bandselect.stats import DEFAULT_N_BINS, statistics_of

        tensor = validate_cube(cube, n_channels=self.num_spectral_bands)
        labels = validate_mask(mask, tuple(tensor.shape), required=True, owner=type(self).__name__)
        if self.windows is not None or wavelengths is not None:
            validate_node_wavelengths(wavelengths, self.num_spectral_bands)
        values = tensor.detach().cpu().numpy()
        label_array = labels.detach().cpu().numpy()  # type: ignore[union-attr]
        stats = statistics_of(values, label_array, n_bins=DEFAULT_N_BINS, device=device)
        self.fit_from_statistics(stats, wavelengths=wavelengths)
        return self

    # -- inference ----------------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not self.is_initialized:
            raise NotFittedError(
                f"{type(self).__name__}",
                expected="a fitted selector (supervised band selection needs labelled training data)",
                found="no selection yet",
                fix="run StatisticalTrainer(pipeline=..., datamodule=...).fit() or selector.fit(cube, mask, "
                "wavelengths) first",
            )

    def selection(self, wavelengths_nm: Any) -> BandSelection:
        """The fitted bands on the grid ``wavelengths_nm``: picks in window (or relevance) order, output
        in R, G, B order (then any further picks), with the Fisher, AUC, MI and combined scores.

        Raises
        ------
        NotFittedError
            Before fitting.
        WavelengthError
            Wavelengths missing or not ``num_spectral_bands`` of them.
        """
        self._check_fitted()
        wl = validate_node_wavelengths(wavelengths_nm, self.num_spectral_bands)
        picks = [int(i) for i in self.selected_indices.tolist()]
        rgb = [picks[i] for i in self.RGB_FROM_PICKS]
        output = rgb + [i for i in picks if i not in rgb]
        windows = () if self.windows is None else self.windows
        mapping = {}
        if self.windows is not None:
            mapping = {
                channel: self.WINDOW_NAMES[i]
                for channel, i in zip(RGB_ORDER, self.RGB_FROM_PICKS, strict=True)
            }
        return self._selection(
            picks,
            wl,
            strategy=self.STRATEGY,
            output_indices=output,
            channel_names=RGB_ORDER if len(output) == 3 else (),
            channel_mapping=mapping,
            windows_nm=windows,
            scores={
                "fisher": self.fisher_scores.double().numpy(),
                "auc": self.auc_scores.double().numpy(),
                "mi": self.mi_scores.double().numpy(),
                "combined": self.band_scores.double().numpy(),
            },
            objective=float(self.objective),
        )

    def forward(self, cube: Any, wavelengths: Any = None, mask: Any = None, **kwargs: Any) -> dict[str, Any]:
        """Compose the RGB image from the fitted bands.

        ``mask`` is only used by the initialisation; when given here it is checked against the cube
        and otherwise ignored.

        Returns
        -------
        dict
            ``rgb_image`` ``(B, H, W, 3)`` (R, G, B) and ``band_info``.
        """
        tensor, wl = self._validate_inputs(cube, wavelengths, n_channels=self.num_spectral_bands)
        validate_mask(mask, tuple(tensor.shape), required=False, owner=type(self).__name__)
        selection = self.selection(wl)
        indices = list(selection.rgb_indices)
        extra: dict[str, Any] = {
            "criterion": self.criterion,
            "selected_indices": list(selection.indices),
            "selected_wavelengths_nm": list(selection.wavelengths_nm),
            "fisher_scores": [float(self.fisher_scores[i]) for i in indices],
            "auc_scores": [float(self.auc_scores[i]) for i in indices],
            "mi_scores": [float(self.mi_scores[i]) for i in indices],
            "band_scores": [float(self.band_scores[i]) for i in indices],
            "objective": float(self.objective),
            "score_weights": list(self.score_weights),
            "lambda_penalty": self.lambda_penalty,
        }
        if self.windows is not None:
            extra["windows_nm"] = [list(self.windows[i]) for i in self.RGB_FROM_PICKS]
        band_info = selection.band_info(**extra)
        band_info["band_indices"] = indices
        band_info["band_wavelengths_nm"] = [float(wl[i]) for i in indices]
        return {"rgb_image": self._compose_rgb(tensor, indices), "band_info": band_info}


@register_node
@_document_fitted_attributes
class SupervisedCIRBandSelector(_SupervisedBandSelector):
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
    ) -> None:
        self._setup(
            num_spectral_bands=num_spectral_bands,
            windows=windows,
            score_weights=score_weights,
            lambda_penalty=lambda_penalty,
            criterion=criterion,
            k=None,
        )


@register_node
@_document_fitted_attributes
class SupervisedWindowedFalseRGBSelector(_SupervisedBandSelector):
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
    ) -> None:
        self._setup(
            num_spectral_bands=num_spectral_bands,
            windows=windows,
            score_weights=score_weights,
            lambda_penalty=lambda_penalty,
            criterion=criterion,
            k=None,
        )


@register_node
@_document_fitted_attributes
class SupervisedFullSpectrumBandSelector(_SupervisedBandSelector):
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
    ) -> None:
        self._setup(
            num_spectral_bands=num_spectral_bands,
            windows=None,
            score_weights=score_weights,
            lambda_penalty=lambda_penalty,
            criterion=criterion,
            k=k,
        )
