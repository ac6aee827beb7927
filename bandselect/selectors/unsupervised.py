"""Unsupervised band selectors fitted from data-set-wide statistics (no labels needed).

The selection itself lives in :mod:`bandselect.stats.unsupervised` (``orthogonal_projection_select``,
``correlation_cluster_select``): both need only the all-pixel covariance, so they initialise from a
campaign store with Dask (``compute_statistics``), from streamed batches (``StatisticalTrainer``) or
from an in-memory cube (:meth:`fit`) with the same result. These nodes keep the result in buffers and
compose an RGB image of their first three picks.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
import torch

from bandselect.errors import NotFittedError, ShapeError
from bandselect.pipeline.node import StatisticsRequest
from bandselect.pipeline.registry import register_node
from bandselect.selection import BandSelection, false_colour_order
from bandselect.selectors._supervised_base import unlabelled_fit_statistics
from bandselect.selectors.base import (
    BAND_INFO_PORT,
    CUBE_PORT,
    RGB_ORDER,
    RGB_PORT,
    WAVELENGTHS_PORT,
    BandSelectorBase,
)
from bandselect.stats.subsets import ScoredSubset
from bandselect.validation import check_choice, check_int, validate_node_wavelengths

__all__ = ["CorrelationClusterBandSelector", "OrthogonalProjectionBandSelector"]

_FITTED_ATTRIBUTES = """Attributes
    ----------
    All are buffers, saved in ``state_dict``.

    selected_indices : (k,) int64
        The selected bands in pick order; -1 before fitting.
    band_scores : (C,) float32
        The selector's per-band score (see the method).
    objective : () float64
        The method's value for the selection (see the method)."""


class _UnsupervisedBandSelector(BandSelectorBase):
    """Shared machinery of the unsupervised selectors (not registered; use the concrete classes)."""

    INPUT_PORTS = (CUBE_PORT, WAVELENGTHS_PORT)
    OUTPUT_PORTS = (RGB_PORT, BAND_INFO_PORT)
    requires_initial_fit: ClassVar[bool] = True
    STRATEGY: ClassVar[str] = ""
    #: Name of the per-band score in the reported selection.
    SCORE_NAME: ClassVar[str] = ""

    def _setup(self, num_spectral_bands: Any, k: Any, **options: Any) -> None:
        owner = type(self).__name__
        num_spectral_bands = check_int(owner, "num_spectral_bands", num_spectral_bands, minimum=3)
        k = check_int(owner, "k", k, minimum=3, maximum=num_spectral_bands)
        BandSelectorBase.__init__(self, num_spectral_bands=num_spectral_bands, k=k, **options)
        self.num_spectral_bands = num_spectral_bands
        self.k = k
        self.register_buffer("selected_indices", torch.full((k,), -1, dtype=torch.int64))
        self.register_buffer("band_scores", torch.zeros(num_spectral_bands, dtype=torch.float32))
        self.register_buffer("objective", torch.tensor(0.0, dtype=torch.float64))

    def _select(self, stats: Any) -> ScoredSubset:
        raise NotImplementedError

    # -- statistical initialisation ---------------------------------------------------------------
    def statistics_request(self) -> StatisticsRequest:
        """Moments (the all-pixel covariance) of ``cube``; no labels, no histograms."""
        return StatisticsRequest(cube_port="cube")

    def fit_from_statistics(self, stats: Any, *, wavelengths: Any = None) -> None:
        """Select the bands from data-set-wide :class:`~bandselect.stats.BandStatistics` (labels pooled).

        Parameters
        ----------
        stats : bandselect.stats.BandStatistics
            Statistics of the pixels this selector receives.
        wavelengths : array-like of shape (C,), optional
            Checked against the band count when given.
        """
        owner = type(self).__name__
        if int(stats.n_bands) != self.num_spectral_bands:
            raise ShapeError(
                f"{owner} statistics",
                expected=f"statistics of num_spectral_bands={self.num_spectral_bands} bands",
                found=f"{int(stats.n_bands)} bands",
                fix="compute the statistics on the cube this selector receives, or fix num_spectral_bands",
            )
        if wavelengths is not None:
            validate_node_wavelengths(wavelengths, self.num_spectral_bands)
        result = self._select(stats)
        with torch.no_grad():
            self.selected_indices.copy_(torch.tensor(np.asarray(result.indices, np.int64)))
            self.band_scores.copy_(torch.tensor(np.asarray(result.band_scores, np.float64)))
            self.objective.fill_(float(result.objective))
        self._mark_initialized()

    def fit(
        self,
        cube: Any,
        wavelengths: Any = None,
        *,
        mask: Any = None,
        ignore_label: int | None = None,
    ) -> _UnsupervisedBandSelector:
        """Fit from a ``(B, H, W, C)`` cube (tensor or array), through the statistics engine.

        Parameters
        ----------
        cube : tensor or array of shape (B, H, W, C)
        wavelengths : tensor or array of shape (C,), optional
            Band wavelengths in nm (checked when given).
        mask : tensor or array of shape (B, H, W, 1) or (B, H, W), optional
            Labels, used only to leave out ``ignore_label`` pixels (e.g. 255 = no data).
        ignore_label : int, optional
            Pixels with this label are left out of every statistic.

        Returns
        -------
        self
        """
        stats = unlabelled_fit_statistics(
            cube, self.num_spectral_bands, mask=mask, ignore_label=ignore_label, owner=type(self).__name__
        )
        self.fit_from_statistics(stats, wavelengths=wavelengths)
        return self

    # -- inference ----------------------------------------------------------------------------------
    def selection(self, wavelengths_nm: Any) -> BandSelection:
        """The fitted bands on the grid ``wavelengths_nm``: picks in pick order; the composite shows the
        first three picks in false-colour order (longest wavelength as R), then the other picks.

        Raises
        ------
        NotFittedError
            Before fitting.
        WavelengthError
            Wavelengths missing or not ``num_spectral_bands`` of them.
        """
        if not self.is_initialized:
            raise NotFittedError(
                type(self).__name__,
                expected="a fitted selector (the selection of a data set)",
                found="no selection yet",
                fix="run StatisticalTrainer(pipeline=..., datamodule=...).fit() or selector.fit(cube) first",
            )
        wl = validate_node_wavelengths(wavelengths_nm, self.num_spectral_bands)
        picks = [int(i) for i in self.selected_indices.tolist()]
        rgb = list(false_colour_order(picks[:3], wl))
        return self._selection(
            picks,
            wl,
            strategy=self.STRATEGY,
            output_indices=rgb + picks[3:],
            channel_names=RGB_ORDER if len(picks) == 3 else (),
            scores={self.SCORE_NAME: self.band_scores.double().numpy()},
            objective=float(self.objective),
        )

    def forward(self, cube: Any, wavelengths: Any = None, **kwargs: Any) -> dict[str, Any]:
        """Compose the RGB image from the first three fitted picks (false-colour order).

        Returns
        -------
        dict
            ``rgb_image`` ``(B, H, W, 3)`` and ``band_info``.
        """
        tensor, wl = self._validate_inputs(cube, wavelengths, n_channels=self.num_spectral_bands)
        selection = self.selection(wl)
        indices = list(selection.rgb_indices)
        band_info = selection.band_info(
            selected_indices=list(selection.indices),
            selected_wavelengths_nm=list(selection.wavelengths_nm),
            objective=float(self.objective),
        )
        band_info["band_indices"] = indices
        band_info["band_wavelengths_nm"] = [float(wl[i]) for i in indices]
        return {"rgb_image": self._compose_rgb(tensor, indices), "band_info": band_info}


def _document(cls: type) -> type:
    cls.__doc__ = (cls.__doc__ or "").replace("%(fitted_attributes)s", _FITTED_ATTRIBUTES)
    return cls


@register_node
@_document
class OrthogonalProjectionBandSelector(_UnsupervisedBandSelector):
    """Unsupervised selection of ``k`` bands, each the one least explained by the bands chosen before.

    Greedy orthogonal projection on the all-pixel covariance
    (:func:`bandselect.stats.orthogonal_projection_select`): the first pick is the band of largest
    variance, each next pick the band with the largest residual variance after projecting it on the
    span of the picks. A band that the picks explain exactly (a duplicate, a linear combination) is never
    picked while an unexplained band is left.

    Parameters
    ----------
    num_spectral_bands : int
        Total number of spectral bands ``C``.
    k : int, default 3
        Number of bands, ``3 <= k <= num_spectral_bands`` (the image needs three).

    Shape
    -----
    - cube: ``(B, H, W, C)`` float32; wavelengths: ``(C,)`` nm
    - rgb_image: ``(B, H, W, 3)`` float32 in [0, 1]: the first three picks, longest wavelength as R
    - band_info: dict (``band_indices`` R, G, B, ``selected_indices`` = all ``k``, ``objective``, ...)

    %(fitted_attributes)s
        ``band_scores``: the fraction of each band's variance the selection leaves unexplained;
        ``objective``: the fraction of the total variance the picks explain.

    Examples
    --------
    >>> import torch
    >>> from bandselect.selectors import OrthogonalProjectionBandSelector
    >>> cube = torch.rand(1, 16, 16, 8)
    >>> cube[..., 5] = cube[..., 2]  # an exact copy of band 2
    >>> cube[..., 2] *= 3.0  # ... now band 2 has the largest variance, band 5 is its scaled copy
    >>> selector = OrthogonalProjectionBandSelector(num_spectral_bands=8, k=7).fit(cube)
    >>> picks = selector.selected_indices.tolist()
    >>> picks[0], 5 in picks
    (2, False)
    """

    STRATEGY = "orthogonal_projection"
    SCORE_NAME = "unexplained_fraction"

    def __init__(self, num_spectral_bands: int, k: int = 3) -> None:
        self._setup(num_spectral_bands, k)

    def _select(self, stats: Any) -> ScoredSubset:
        from bandselect.stats import orthogonal_projection_select

        return orthogonal_projection_select(stats, self.k)


@register_node
@_document
class CorrelationClusterBandSelector(_UnsupervisedBandSelector):
    """Unsupervised selection of one band from each of ``k`` clusters of mutually correlated bands.

    Average-linkage clustering of the bands on ``1 − |ρ|`` (ρ: all-pixel Pearson correlation), cut into
    ``k`` clusters (:func:`bandselect.stats.correlation_cluster_select`); each cluster is represented by
    its medoid (the band most correlated with the rest of its cluster) or its band of largest variance.
    Two picks never come from one group of redundant bands. Picks are ordered by the share of the total
    variance their cluster holds.

    Parameters
    ----------
    num_spectral_bands : int
        Total number of spectral bands ``C``.
    k : int, default 3
        Number of clusters and bands, ``3 <= k <= num_spectral_bands``.
    representative : {"medoid", "variance"}, default "medoid"
        How each cluster's band is chosen.

    Shape
    -----
    - cube: ``(B, H, W, C)`` float32; wavelengths: ``(C,)`` nm
    - rgb_image: ``(B, H, W, 3)`` float32 in [0, 1]: the first three picks, longest wavelength as R
    - band_info: dict (``band_indices`` R, G, B, ``selected_indices`` = all ``k``, ``objective``, ...)

    %(fitted_attributes)s
        ``band_scores``: each band's mean ``|ρ|`` with its cluster; ``objective``: the mean ``|ρ|`` of
        each band with its cluster's pick.

    Examples
    --------
    >>> import torch
    >>> from bandselect.selectors import CorrelationClusterBandSelector
    >>> base = torch.rand(1, 16, 16, 3)
    >>> cube = base.repeat_interleave(4, dim=-1) + 0.01 * torch.rand(1, 16, 16, 12)  # 3 groups of 4
    >>> selector = CorrelationClusterBandSelector(num_spectral_bands=12, k=3).fit(cube)
    >>> sorted(i // 4 for i in selector.selected_indices.tolist())
    [0, 1, 2]
    """

    STRATEGY = "correlation_clusters"
    SCORE_NAME = "cluster_correlation"

    def __init__(
        self, num_spectral_bands: int, k: int = 3, representative: Literal["medoid", "variance"] = "medoid"
    ) -> None:
        from bandselect.stats.unsupervised import REPRESENTATIVES

        representative = check_choice(type(self).__name__, "representative", representative, REPRESENTATIVES)
        self._setup(num_spectral_bands, k, representative=representative)
        self.representative = representative

    def _select(self, stats: Any) -> ScoredSubset:
        from bandselect.stats import correlation_cluster_select

        return correlation_cluster_select(stats, self.k, representative=self.representative)  # type: ignore[arg-type]
