"""The shared machinery of the supervised selector nodes: labels, statistics, buffers, selection, image.

:class:`SupervisedBandSelectorBase` maps wavelength windows to band indices, asks for the statistics it
needs, fits from them (``mrmr_select`` or ``separability_select`` of :mod:`bandselect.stats`), keeps the
result in buffers and composes the RGB image. The registered nodes in :mod:`bandselect.selectors.supervised`
only fix their windows, defaults and output order.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch

from bandselect.errors import ConfigError, InputError, LabelError, NotFittedError, ShapeError
from bandselect.labels import check_classes
from bandselect.pipeline.node import PortSpec, StatisticsRequest
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
    as_tensor,
    check_bool,
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
        mutual information in nats (AUC and MI from the statistics engine's per-class histograms). With
        ``multiclass=True`` and three classes or more: the F-statistic, the mean one-vs-rest symmetric
        AUC and the multi-class MI.
    band_scores : (C,) float32
        Combined relevance ``Σ w_i · rescaled_score_i / Σ w_i`` (each score rescaled to [0, 1]).
    correlation : (C, C) float32
        Pearson correlation of the bands over all training pixels (the mRMR redundancy term).
    objective : () float64
        The criterion's value for the selected subset.
"""


def document_fitted_attributes(cls: type) -> type:
    """Fill the shared Attributes section into a supervised selector's docstring (written once)."""
    cls.__doc__ = (cls.__doc__ or "").replace("%(fitted_attributes)s", _FITTED_ATTRIBUTES)
    return cls


MASK_PORT = PortSpec(
    "mask",
    torch.bool,
    ("B", "H", "W", 1),
    "Labels: binary mask (1=positive, 0=negative) or class ids; required for initialization",
    optional=True,
)


def as_cube(cube: Any, n_bands: int) -> torch.Tensor:
    """A ``(B, H, W, C)`` cube checked for rank, band count and dtype, for the statistics engine.

    Finiteness is left to the engine, which checks exactly the pixels that are counted: pixels of an
    ``ignore_label`` may hold anything, every other pixel must be finite (a typed
    :class:`~bandselect.errors.NonFiniteError` otherwise).
    """
    tensor = as_tensor(cube, "cube")
    # validate_cube's rank/channel/dtype checks, on an empty batch: its finiteness check is the engine's job.
    validate_cube(tensor[:0] if tensor.ndim == 4 else tensor, n_channels=n_bands)
    return tensor if tensor.is_floating_point() else tensor.float()


def unlabelled_fit_statistics(
    cube: Any,
    n_bands: int | None,
    *,
    mask: Any,
    ignore_label: int | None,
    owner: str,
    contrast: bool = False,
) -> Any:
    """The statistics an unlabelled selector's ``fit`` selects from: moments (and the spatial contrast
    terms with ``contrast``) of a ``(B, H, W, C)`` cube, ``ignore_label`` pixels of ``mask`` left out
    (their values never matter). ``n_bands`` None: the cube's own band count.

    Raises
    ------
    ShapeError, DTypeError
        A cube or mask of the wrong rank, band count or dtype; a label without a mask.
    NonFiniteError
        NaN/Inf in a pixel that counts.
    """
    from bandselect.stats.classes import labelled_statistics

    if n_bands is None:
        shape = tuple(getattr(cube, "shape", np.shape(cube)))
        n_bands = int(shape[-1]) if shape else 0
    tensor = as_cube(cube, n_bands)
    labels = validate_mask(mask, tuple(tensor.shape), required=ignore_label is not None, owner=owner)
    return labelled_statistics(
        tensor.detach().cpu().numpy(),
        None if labels is None else labels.detach().cpu().numpy(),  # type: ignore[union-attr]
        ignore_label=ignore_label,
        n_bins=None,
        contrast=contrast,
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


class SupervisedBandSelectorBase(BandSelectorBase):
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
        multiclass: Any,
    ) -> None:
        owner = type(self).__name__
        num_spectral_bands = check_int(owner, "num_spectral_bands", num_spectral_bands, minimum=3)
        checked_windows = None if windows is None else check_windows(owner, "windows", windows, length=3)
        weights = _check_score_weights(owner, score_weights)
        lambda_penalty = check_float(owner, "lambda_penalty", lambda_penalty, minimum=0.0)
        criterion = check_choice(owner, "criterion", criterion, CRITERIA)
        multiclass = check_bool(owner, "multiclass", multiclass)
        config: dict[str, Any] = {"num_spectral_bands": num_spectral_bands}
        if checked_windows is not None:
            config["windows"] = checked_windows
            n_picks = len(checked_windows)
        else:
            n_picks = check_int(owner, "k", k, minimum=3, maximum=num_spectral_bands)
        config.update(score_weights=weights, lambda_penalty=lambda_penalty, criterion=criterion)
        if checked_windows is None:
            config["k"] = n_picks
        if multiclass:  # recorded only when set, so binary configurations (and their digests) are unchanged
            config["multiclass"] = True
        BandSelectorBase.__init__(self, **config)
        self.num_spectral_bands = num_spectral_bands
        self.windows = None if checked_windows is None else tuple(tuple(w) for w in checked_windows)
        self.score_weights = tuple(weights)
        self.lambda_penalty = lambda_penalty
        self.criterion = criterion
        self.multiclass = multiclass
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
        owner = f"{type(self).__name__} initialisation: mask"
        if self.multiclass:
            check_classes(classes, counts, what=owner)
            return
        negative = int(counts[classes == 0].sum())
        positive = int(counts[classes > 0].sum())
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
            present = sorted(int(c) for c, n in zip(classes, counts, strict=True) if n > 0)
            raise LabelError(
                owner,
                expected=expected,
                found=f"only the positive class (labels {present[:10]}, {positive} pixels) - no negative (0) "
                "pixel",
                fix="fit(..., positive_label=c) for one class against the rest, or multiclass=True "
                "for a label map without a 0 class",
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
            Labelled statistics (binary: class 0 negative, labels > 0 positive; ``multiclass=True``:
            every class with pixels) with per-class histograms (AUC, MI).
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
                multiclass=self.multiclass,
            )
        else:
            selection = separability_select(
                stats, self.n_picks, windows=candidates, multiclass=self.multiclass
            )
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
        self,
        cube: Any,
        mask: Any,
        wavelengths: Any = None,
        *,
        positive_label: int | None = None,
        ignore_label: int | None = None,
        device: str | None = None,
    ) -> SupervisedBandSelectorBase:
        """Fit directly from a ``(B, H, W, C)`` cube and its labels (tensors or arrays).

        Same code path as the statistical initialisation and the flows:
        :func:`bandselect.stats.statistics_of` makes the statistics exactly as ``compute_statistics``
        makes them from a campaign store (moments, then per-class histograms on the engine's binning rule
        with its default bins), then :meth:`fit_from_statistics` selects. The same pixels in memory and in
        a store give the same selection.

        Parameters
        ----------
        cube : tensor or array of shape (B, H, W, C)
            Values; pixels of ``ignore_label`` may hold anything (NaN included), the others must be finite.
        mask : tensor or array of shape (B, H, W, 1) or (B, H, W)
            Labels: bool, or integer class ids (binary rule: 0 = negative, anything > 0 = positive).
        wavelengths : tensor or array of shape (C,)
            Band wavelengths in nm (required by the windowed selectors).
        positive_label : int, optional
            The class to select for, against every other class (like the flows' ``positive_label``).
        ignore_label : int, optional
            Pixels with this label are left out of every statistic (e.g. 0 = unlabelled, 255 = no data).
        device : str, optional
            Where the statistics are computed: None (NumPy), ``"auto"`` (CUDA when present) or a torch
            device (``"cuda"``, ``"cpu"``); see :mod:`bandselect.stats.torch_backend`.

        Returns
        -------
        self

        Raises
        ------
        LabelError
            Fewer than two classes after ignoring, ``ignore_label == positive_label``, or a
            ``positive_label`` absent from the counted pixels.
        """
        from bandselect.stats import DEFAULT_N_BINS
        from bandselect.stats.classes import labelled_statistics

        tensor = as_cube(cube, self.num_spectral_bands)
        labels = validate_mask(mask, tuple(tensor.shape), required=True, owner=type(self).__name__)
        if self.windows is not None or wavelengths is not None:
            validate_node_wavelengths(wavelengths, self.num_spectral_bands)
        stats = labelled_statistics(
            tensor.detach().cpu().numpy(),
            labels.detach().cpu().numpy(),  # type: ignore[union-attr]
            positive_label=positive_label,
            ignore_label=ignore_label,
            n_bins=DEFAULT_N_BINS,
            device=device,
        )
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
            "multiclass": self.multiclass,
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
