"""Unsupervised band selectors: fixed wavelengths (true colour, CIR, any number of targets) and high
spatial contrast."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from bandselect.errors import ConfigError, NotFittedError, WavelengthError
from bandselect.pipeline.node import PortSpec, StatisticsRequest
from bandselect.pipeline.registry import register_node
from bandselect.selection import BandSelection
from bandselect.selectors.base import BAND_INFO_PORT, RGB_ORDER, BandSelectorBase
from bandselect.spectral import DEFAULT_TOLERANCE_NM, nearest_band, window_indices
from bandselect.validation import check_float, check_float_tuple, check_windows, validate_node_wavelengths


@register_node
class BaselineFalseRGBSelector(BandSelectorBase):
    """Fixed-wavelength band selection: the bands nearest to target R, G, B wavelengths.

    The nearest band is ``argmin |λ − target|`` with ties to the lower index; a target farther than
    ``tolerance_nm`` from every band is a :class:`~bandselect.errors.WavelengthError` naming the sensor
    range (no silent snap to the edge of the sensor).

    Parameters
    ----------
    target_wavelengths : tuple of 3 float, default (650.0, 550.0, 450.0)
        Target wavelengths (nm) for R, G, B, in that order.
    tolerance_nm : float, default 25.0
        Largest accepted distance between a target and its nearest band.

    Shape
    -----
    - cube: ``(B, H, W, C)`` float32
    - wavelengths: ``(C,)`` nm
    - rgb_image: ``(B, H, W, 3)`` float32 in [0, 1], channels R, G, B, min-max normalised per sample and
      channel
    - band_info: dict with ``strategy``, ``band_indices`` (R, G, B), ``band_wavelengths_nm``,
      ``target_wavelengths_nm``

    Examples
    --------
    >>> import torch
    >>> from bandselect.selectors import BaselineFalseRGBSelector
    >>> wavelengths = torch.linspace(400.0, 1000.0, 61)  # 10 nm steps
    >>> baseline = BaselineFalseRGBSelector(target_wavelengths=(650.0, 550.0, 450.0))
    >>> outputs = baseline.forward(cube=torch.rand(2, 8, 8, 61), wavelengths=wavelengths)
    >>> outputs["band_info"]["band_indices"], tuple(outputs["rgb_image"].shape)
    ([25, 15, 5], (2, 8, 8, 3))
    """

    STRATEGY = "baseline_false_rgb"

    def __init__(
        self,
        target_wavelengths: Sequence[float] = (650.0, 550.0, 450.0),
        *,
        tolerance_nm: float = DEFAULT_TOLERANCE_NM,
    ) -> None:
        owner = type(self).__name__
        targets = check_float_tuple(owner, "target_wavelengths", target_wavelengths, 3)
        tolerance_nm = check_float(owner, "tolerance_nm", tolerance_nm, minimum=0.0)
        super().__init__(target_wavelengths=targets, tolerance_nm=tolerance_nm)
        self.target_wavelengths = tuple(targets)
        self.tolerance_nm = tolerance_nm

    #: What each output channel shows (CIR names its source bands).
    CHANNEL_MAPPING: ClassVar[Mapping[str, str]] = MappingProxyType({})

    def selection(self, wavelengths_nm: Any) -> BandSelection:
        """The bands nearest to the targets (R, G, B order) on the grid ``wavelengths_nm``.

        Raises
        ------
        WavelengthError
            No wavelengths, or a target farther than ``tolerance_nm`` from every band (names the range).
        """
        wl = validate_node_wavelengths(wavelengths_nm, None)
        indices = [nearest_band(wl, target, self.tolerance_nm) for target in self.target_wavelengths]
        return self._selection(
            indices,
            wl,
            strategy=self.STRATEGY,
            channel_names=RGB_ORDER,
            channel_mapping=self.CHANNEL_MAPPING,
        )

    def forward(self, cube: Any, wavelengths: Any = None, **kwargs: Any) -> dict[str, Any]:
        """Compose the RGB image from the bands nearest to the targets.

        Returns
        -------
        dict
            ``rgb_image`` ``(B, H, W, 3)`` and ``band_info``.
        """
        tensor, wl = self._validate_inputs(cube, wavelengths)
        selection = self.selection(wl)
        band_info = selection.band_info(target_wavelengths_nm=[float(t) for t in self.target_wavelengths])
        return {"rgb_image": self._compose_rgb(tensor, selection.output_indices), "band_info": band_info}


@register_node
class CIRFalseColorSelector(BaselineFalseRGBSelector):
    """Color-infrared (CIR) false colour: NIR → R, Red → G, Green → B.

    Nearest-band lookup as in :class:`BaselineFalseRGBSelector`.

    Parameters
    ----------
    nir_nm : float, default 860.0
        Near-infrared wavelength (→ red channel).
    red_nm : float, default 670.0
        Red wavelength (→ green channel).
    green_nm : float, default 560.0
        Green wavelength (→ blue channel).
    tolerance_nm : float, default 25.0
        Largest accepted distance between a target and its nearest band.

    Shape
    -----
    Same as :class:`BaselineFalseRGBSelector`; ``band_info`` adds
    ``channel_mapping = {'R': 'NIR', 'G': 'Red', 'B': 'Green'}``.

    Examples
    --------
    >>> import torch
    >>> from bandselect.selectors import CIRFalseColorSelector
    >>> cir = CIRFalseColorSelector(nir_nm=860.0, red_nm=670.0, green_nm=560.0)
    >>> outputs = cir.forward(cube=torch.rand(1, 8, 8, 61), wavelengths=torch.linspace(400.0, 1000.0, 61))
    >>> outputs["band_info"]["channel_mapping"]
    {'R': 'NIR', 'G': 'Red', 'B': 'Green'}
    >>> outputs["band_info"]["band_indices"]
    [46, 27, 16]
    """

    STRATEGY = "cir_false_color"
    CHANNEL_MAPPING = MappingProxyType({"R": "NIR", "G": "Red", "B": "Green"})

    def __init__(
        self,
        nir_nm: float = 860.0,
        red_nm: float = 670.0,
        green_nm: float = 560.0,
        *,
        tolerance_nm: float = DEFAULT_TOLERANCE_NM,
    ) -> None:
        owner = type(self).__name__
        nir_nm = check_float(owner, "nir_nm", nir_nm, minimum=0.0)
        red_nm = check_float(owner, "red_nm", red_nm, minimum=0.0)
        green_nm = check_float(owner, "green_nm", green_nm, minimum=0.0)
        tolerance_nm = check_float(owner, "tolerance_nm", tolerance_nm, minimum=0.0)
        BandSelectorBase.__init__(
            self, nir_nm=nir_nm, red_nm=red_nm, green_nm=green_nm, tolerance_nm=tolerance_nm
        )
        self.nir_nm = nir_nm
        self.red_nm = red_nm
        self.green_nm = green_nm
        self.target_wavelengths = (nir_nm, red_nm, green_nm)
        self.tolerance_nm = tolerance_nm


SELECTED_PORT = PortSpec(
    "selected", torch.float32, ("B", "H", "W", "k"), "The selected bands (raw values), in target order"
)


@register_node
class FixedWavelengthSelector(BandSelectorBase):
    """Fixed-wavelength band selection with any number of targets: a true dimension reduction.

    The n-channel counterpart of :class:`BaselineFalseRGBSelector` (same nearest-band rule, ties to the
    lower index, the same tolerance error naming the sensor range): the seed's "reduce 61+ channels to
    manageable subsets (3-10 channels)" with bands chosen by wavelength. Its :class:`BandSelection` feeds
    the k-band product (``export.products: [bands]``); with three or more targets the first three also
    make an RGB composite. The default targets are the baseline's (650, 550, 450 nm).

    Parameters
    ----------
    target_wavelengths : sequence of float, default (650.0, 550.0, 450.0)
        One target wavelength (nm) per output channel, in output order; at least one. Two targets that
        fall on the same band are an error.
    tolerance_nm : float, default 25.0
        Largest accepted distance between a target and its nearest band.

    Shape
    -----
    - cube: ``(B, H, W, C)`` float32
    - wavelengths: ``(C,)`` nm
    - selected: ``(B, H, W, k)`` float32, the raw values of the k selected bands in target order (no
      normalisation: a reduced cube, not an image)
    - band_info: dict with ``strategy``, ``band_indices`` and ``band_wavelengths_nm`` (target order),
      ``target_wavelengths_nm``

    Examples
    --------
    >>> import torch
    >>> from bandselect.selectors import FixedWavelengthSelector
    >>> wavelengths = torch.linspace(400.0, 1000.0, 61)  # 10 nm steps
    >>> five = FixedWavelengthSelector(target_wavelengths=(450, 550, 650, 750, 850))
    >>> outputs = five.forward(cube=torch.rand(2, 8, 8, 61), wavelengths=wavelengths)
    >>> outputs["band_info"]["band_indices"], tuple(outputs["selected"].shape)
    ([5, 15, 25, 35, 45], (2, 8, 8, 5))
    >>> five.selection(wavelengths).k
    5
    """

    STRATEGY = "fixed_wavelengths"
    OUTPUT_PORTS = (SELECTED_PORT, BAND_INFO_PORT)

    def __init__(
        self,
        target_wavelengths: Sequence[float] = (650.0, 550.0, 450.0),
        *,
        tolerance_nm: float = DEFAULT_TOLERANCE_NM,
    ) -> None:
        owner = type(self).__name__
        if (
            isinstance(target_wavelengths, str | bytes)
            or not isinstance(target_wavelengths, Sequence)
            or (len(target_wavelengths) == 0)
        ):
            raise ConfigError(
                f"The 'target_wavelengths' parameter of {owner}",
                expected="a non-empty sequence of wavelengths in nm (one per output channel)",
                found=repr(target_wavelengths),
                fix="pass e.g. target_wavelengths=[450, 550, 650, 750, 850]",
            )
        targets = [
            check_float(owner, f"target_wavelengths[{i}]", value, minimum=0.0, strict_minimum=True)
            for i, value in enumerate(target_wavelengths)
        ]
        if len(set(targets)) != len(targets):
            raise ConfigError(
                f"The 'target_wavelengths' parameter of {owner}",
                expected="distinct targets",
                found=targets,
                fix="list each target wavelength once",
            )
        tolerance_nm = check_float(owner, "tolerance_nm", tolerance_nm, minimum=0.0)
        super().__init__(target_wavelengths=targets, tolerance_nm=tolerance_nm)
        self.target_wavelengths = tuple(targets)
        self.tolerance_nm = tolerance_nm

    def selection(self, wavelengths_nm: Any) -> BandSelection:
        """The bands nearest to the targets (target order) on the grid ``wavelengths_nm``.

        Raises
        ------
        WavelengthError
            No wavelengths, a target farther than ``tolerance_nm`` from every band (names the range), or
            two targets whose nearest band is the same.
        """
        wl = validate_node_wavelengths(wavelengths_nm, None)
        indices = [nearest_band(wl, target, self.tolerance_nm) for target in self.target_wavelengths]
        for position, index in enumerate(indices):
            first = indices.index(index)
            if first != position:
                targets = (self.target_wavelengths[first], self.target_wavelengths[position])
                raise WavelengthError(
                    f"targets {targets[0]:g} and {targets[1]:g} nm",
                    expected="targets whose nearest bands differ",
                    found=f"both nearest to band {index} ({wl[index]:.1f} nm)",
                    fix="choose targets farther apart than the sensor's band spacing",
                )
        return self._selection(indices, wl, strategy=self.STRATEGY)

    def forward(self, cube: Any, wavelengths: Any = None, **kwargs: Any) -> dict[str, Any]:
        """The selected bands of the cube (raw values, target order) and their metadata.

        Returns
        -------
        dict
            ``selected`` ``(B, H, W, k)`` and ``band_info``.
        """
        tensor, wl = self._validate_inputs(cube, wavelengths)
        selection = self.selection(wl)
        index = torch.as_tensor(list(selection.output_indices), dtype=torch.long, device=tensor.device)
        band_info = selection.band_info(target_wavelengths_nm=[float(t) for t in self.target_wavelengths])
        return {"selected": tensor.index_select(-1, index).to(torch.float32), "band_info": band_info}


def _laplacian_energy(bands: torch.Tensor) -> torch.Tensor:
    """Mean absolute 5-point Laplacian per band of a ``(B, H, W, K)`` stack, over every sample.

    Borders use replicate padding, so images of any size (even 1 × 1) are valid.
    """
    images = bands.permute(0, 3, 1, 2).to(torch.float64)  # (B, K, H, W)
    padded = F.pad(images, (1, 1, 1, 1), mode="replicate")
    centre = padded[:, :, 1:-1, 1:-1]
    laplacian = (
        padded[:, :, :-2, 1:-1] + padded[:, :, 2:, 1:-1] + padded[:, :, 1:-1, :-2] + padded[:, :, 1:-1, 2:]
    ) - 4.0 * centre
    return laplacian.abs().mean(dim=(0, 2, 3))


@register_node
class HighContrastBandSelector(BandSelectorBase):
    """Data-driven selection: the band of highest spatial contrast in each wavelength window.

    ``score(band) = variance(band) + alpha · mean |Laplacian(band)|`` with the 5-point Laplacian
    (replicate padding at the borders), both computed over every pixel of every sample of the batch
    (``fit_node(..., ignore_label=...)`` and the flows leave ignored or invalid pixels out of both: a
    left-out neighbour adds nothing to a Laplacian, as a border pixel's replicated neighbour does).
    The best band of each window is selected (ties to the lower index; a band shared by two windows goes
    to the earlier one, which keeps the three channels distinct). ``forward`` recomputes the
    scores on every call, as the seed documents, and changes no state.

    The selection the node *reports* (:meth:`selection`, used by flows, exports and comparisons) comes
    from :meth:`fit` (a cube or batch of cubes) or :meth:`fit_from_statistics` (data-set-wide statistics
    with contrast terms): the scores of every band are kept (in ``state_dict``), the picks derived from them.

    Parameters
    ----------
    windows : sequence of 3 (low_nm, high_nm), default ((440, 500), (500, 580), (610, 700))
        Windows for Blue, Green, Red, in that order. The output is still R, G, B: the red channel
        comes from the third window.
    alpha : float, default 0.1
        Weight of the Laplacian energy term (>= 0).

    Shape
    -----
    - cube: ``(B, H, W, C)`` float32
    - wavelengths: ``(C,)`` nm
    - rgb_image: ``(B, H, W, 3)`` float32 in [0, 1], channels R, G, B
    - band_info: dict with ``strategy``, ``band_indices`` (R, G, B), ``band_wavelengths_nm``,
      ``windows_nm`` (R, G, B order) and ``scores`` (R, G, B)

    Attributes
    ----------
    contrast_scores : (C,) float64 tensor or None
        After fitting: ``variance + alpha · mean |Laplacian|`` of every band.

    Examples
    --------
    >>> import torch
    >>> from bandselect.selectors import HighContrastBandSelector
    >>> high_contrast = HighContrastBandSelector(windows=((440, 500), (500, 580), (610, 700)), alpha=0.1)
    >>> cube = torch.rand(1, 8, 8, 61) * 0.01
    >>> cube[..., 22] = torch.rand(1, 8, 8)  # a textured band at 620 nm
    >>> wavelengths = torch.linspace(400.0, 1000.0, 61)
    >>> outputs = high_contrast.forward(cube=cube, wavelengths=wavelengths)
    >>> outputs["band_info"]["band_indices"][0]
    22
    >>> high_contrast.fit(cube, wavelengths).selection(wavelengths).output_indices[0]
    22
    """

    STRATEGY = "high_contrast"
    #: Pick order is window order (Blue, Green, Red); the image is R, G, B.
    RGB_FROM_PICKS = (2, 1, 0)

    def __init__(
        self,
        windows: Sequence[Sequence[float]] = ((440, 500), (500, 580), (610, 700)),
        alpha: float = 0.1,
    ) -> None:
        owner = type(self).__name__
        checked = check_windows(owner, "windows", windows, length=3)
        alpha = check_float(owner, "alpha", alpha, minimum=0.0)
        super().__init__(windows=checked, alpha=alpha)
        self.windows = tuple(tuple(w) for w in checked)
        self.alpha = alpha
        self.contrast_scores: torch.Tensor | None = None

    # Fitted scores have one value per band, and the band count is only known at fit time: they travel
    # in the module's extra state (a state_dict entry) instead of a fixed-size buffer.
    def get_extra_state(self) -> dict[str, Any]:
        return {"contrast_scores": self.contrast_scores}

    def set_extra_state(self, state: Any) -> None:
        scores = state.get("contrast_scores") if isinstance(state, dict) else None
        self.contrast_scores = None if scores is None else torch.as_tensor(scores, dtype=torch.float64)

    def band_scores(self, cube: torch.Tensor, indices: np.ndarray) -> torch.Tensor:
        """``variance + alpha · mean |Laplacian|`` of the bands ``indices`` of a validated cube."""
        bands = cube.index_select(-1, torch.as_tensor(indices, dtype=torch.long, device=cube.device))
        variance = bands.to(torch.float64).reshape(-1, bands.shape[-1]).var(dim=0, unbiased=False)
        return variance + self.alpha * _laplacian_energy(bands)

    def _picks(self, scores: torch.Tensor, wl: np.ndarray) -> list[int]:
        """The best band of each window (Blue, Green, Red), ties to the lower index.

        Windows may share a band (the default ones meet at 500 nm): a window takes its best band that
        no earlier window took, so the three channels always show three distinct bands.
        """
        picks: list[int] = []
        for window in self.windows:
            candidates = window_indices(wl, window)
            free = candidates[~np.isin(candidates, picks)]
            if free.size == 0:
                raise WavelengthError(
                    f"window {window[0]:g}–{window[1]:g} nm",
                    expected="a band not already shown by an earlier window",
                    found=f"only bands {candidates.tolist()}, all taken",
                    fix="widen the window or make the windows disjoint",
                )
            best = int(torch.argmax(scores[torch.as_tensor(free, dtype=torch.long)]))
            picks.append(int(free[best]))
        return picks

    def fit(
        self, cube: Any, wavelengths: Any, *, mask: Any = None, ignore_label: int | None = None
    ) -> HighContrastBandSelector:
        """Score every band of ``cube`` (``(B, H, W, C)``, all samples together) and keep the scores.

        The scores ``forward`` computes on that batch, made through the statistics engine
        (:func:`bandselect.stats.classes.labelled_statistics`) like the flows make them from a store;
        :meth:`selection` then reports the picks.

        Parameters
        ----------
        cube : tensor or array of shape (B, H, W, C)
        wavelengths : tensor or array of shape (C,)
        mask : tensor or array of shape (B, H, W, 1) or (B, H, W), optional
            Labels, used only to leave out ``ignore_label`` pixels (as the unsupervised selectors do).
        ignore_label : int, optional
            Pixels with this label count in neither term (no variance, no Laplacian centre; as a
            neighbour they add nothing), and may hold anything, NaN included.

        Returns
        -------
        self
        """
        from bandselect.selectors._supervised_base import unlabelled_fit_statistics

        stats = unlabelled_fit_statistics(
            cube, None, mask=mask, ignore_label=ignore_label, owner=type(self).__name__, contrast=True
        )
        self.fit_from_statistics(stats, wavelengths=wavelengths)
        return self

    @property
    def is_initialized(self) -> bool:
        """Whether contrast scores were fitted (``forward`` works either way: it scores each batch)."""
        return self.contrast_scores is not None

    def statistics_request(self) -> StatisticsRequest:
        """Moments and the spatial contrast terms of the ``cube`` input, with the wavelengths."""
        return StatisticsRequest(cube_port="cube", wavelengths_port="wavelengths", contrast=True)

    def fit_from_statistics(self, stats: Any, *, wavelengths: Any = None) -> None:
        """Keep the scores of data-set-wide statistics: ``variance + alpha · mean |Laplacian|``.

        Parameters
        ----------
        stats : bandselect.stats.BandStatistics
            Statistics with the Laplacian-energy terms (``compute_statistics(..., contrast=True)``).
        wavelengths
            The bands' wavelengths in nm.
        """
        wl = validate_node_wavelengths(wavelengths, int(stats.n_bands))
        scores = np.asarray(stats.variance, np.float64) + self.alpha * np.asarray(stats.laplacian_energy)
        self.contrast_scores = torch.from_numpy(scores)
        self._picks(self.contrast_scores, wl)

    def selection(self, wavelengths_nm: Any) -> BandSelection:
        """The highest-contrast band of each window by the fitted scores (picks in window order B, G, R).

        Raises
        ------
        NotFittedError
            Before :meth:`fit` / :meth:`fit_from_statistics`.
        WavelengthError
            A window without a band of this sensor.
        """
        if self.contrast_scores is None:
            raise NotFittedError(
                type(self).__name__,
                expected="fitted contrast scores (the selection of a data set, not of one batch)",
                found="no fit yet",
                fix="call fit(cube, wavelengths), or initialise it with StatisticalTrainer / the flows",
            )
        wl = validate_node_wavelengths(wavelengths_nm, int(self.contrast_scores.numel()))
        picks = self._picks(self.contrast_scores, wl)
        return self._selection(
            picks,
            wl,
            strategy=self.STRATEGY,
            output_indices=[picks[i] for i in self.RGB_FROM_PICKS],
            channel_names=RGB_ORDER,
            windows_nm=self.windows,
            scores={"contrast": self.contrast_scores.numpy()},
        )

    def forward(self, cube: Any, wavelengths: Any = None, **kwargs: Any) -> dict[str, Any]:
        """Pick the highest-contrast band per window and compose the RGB image (R, G, B order)."""
        tensor, wl = self._validate_inputs(cube, wavelengths)
        candidates = np.unique(np.concatenate([window_indices(wl, window) for window in self.windows]))
        scores = torch.full((tensor.shape[-1],), -torch.inf, dtype=torch.float64)
        scores[torch.as_tensor(candidates, dtype=torch.long)] = self.band_scores(tensor, candidates).cpu()
        picks = self._picks(scores, wl)
        order = self.RGB_FROM_PICKS
        indices = [picks[i] for i in order]
        band_info = {
            "strategy": self.STRATEGY,
            "band_indices": indices,
            "band_wavelengths_nm": [float(wl[i]) for i in indices],
            "windows_nm": [list(self.windows[i]) for i in order],
            "scores": [float(scores[i]) for i in indices],
        }
        return {"rgb_image": self._compose_rgb(tensor, indices), "band_info": band_info}
