"""Band selection as a scikit-learn transformer: :class:`SpectralBandSelector`.

``X`` is 2-D, pixels × bands; ``transform`` keeps the selected bands (columns, in band order), as every
scikit-learn feature selector (``SelectorMixin``: ``get_support``, ``get_feature_names_out``,
``inverse_transform``). Fitting goes through the same statistics engine as the selector nodes and the
flows (:func:`bandselect.stats.statistics_of`, then the same subset searches), so a pipeline in a notebook
selects the bands a flow selects on the same pixels.

Methods (the ``method`` parameter; the node that makes the same selection in a pipeline in brackets):

- ``"separability"`` (``SupervisedFullSpectrumBandSelector(criterion="separability")``): Gaussian class
  separability, Bhattacharyya for two classes, mean Jeffries–Matusita over class pairs for more;
- ``"mrmr"`` (``SupervisedFullSpectrumBandSelector(criterion="mrmr")``): greedy mRMR (Fisher/F, AUC, MI);
- ``"orthogonal_projection"`` (``OrthogonalProjectionBandSelector``): unsupervised, ``y`` not needed;
- ``"correlation_clusters"`` (``CorrelationClusterBandSelector``): unsupervised, ``y`` not needed.

Labels follow scikit-learn's habit: the classes are those of ``y`` (any values; three or more make a
multi-class task), ``positive_label`` makes one class against the rest, ``ignore_label`` drops the rows of
that label (scikit-learn's semi-supervised estimators mark unlabelled rows with -1).

Examples
--------
>>> import numpy as np
>>> from sklearn.pipeline import make_pipeline
>>> from sklearn.linear_model import LogisticRegression
>>> rng = np.random.default_rng(0)
>>> y = rng.integers(0, 3, 600)
>>> X = rng.normal(size=(600, 8))
>>> X[:, 2] += 3.0 * (y == 1)
>>> X[:, 6] += 3.0 * (y == 2)
>>> selector = SpectralBandSelector(k=2, wavelengths_nm=np.linspace(450.0, 800.0, 8))
>>> selector.fit(X, y).get_support(indices=True).tolist()
[2, 6]
>>> selector.get_feature_names_out().tolist()
['550.0', '750.0']
>>> make_pipeline(selector, LogisticRegression()).fit(X, y).score(X, y) > 0.9
True
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError as SklearnNotFittedError
from sklearn.feature_selection import SelectorMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from bandselect.errors import ConfigError, LabelError, NotFittedError, WavelengthError
from bandselect.labels import check_label_roles
from bandselect.selection import BandSelection
from bandselect.spectral import validate_wavelengths
from bandselect.stats import (
    DEFAULT_N_BINS,
    BandStatistics,
    correlation_cluster_select,
    mrmr_select,
    orthogonal_projection_select,
    separability_select,
    statistics_of,
)
from bandselect.stats.subsets import ScoredSubset

__all__ = ["METHODS", "SUPERVISED_METHODS", "SpectralBandSelector"]

# Bands out of order (overlapping spectrometers, e.g. AVIRIS): the remedy in this API's terms.
_ORDER_FIX = (
    "reorder the columns by wavelength: order = np.argsort(wavelengths_nm, kind='stable'), then "
    "X[:, order] (a DataFrame: X.iloc[:, order]) with wavelengths_nm[order] (drop repeated wavelengths first)"
)
_STATISTICS_ORDER_FIX = (
    "compute the statistics on the bands sorted by wavelength (an xarray cube: data.sortby('wavelength'))"
)

SUPERVISED_METHODS: tuple[str, ...] = ("separability", "mrmr")
METHODS: tuple[str, ...] = (*SUPERVISED_METHODS, "orthogonal_projection", "correlation_clusters")
#: The registered node type that makes each method's selection (the selection's ``selector_type``).
NODE_TYPES: dict[str, str] = {
    "separability": "SupervisedFullSpectrumBandSelector",
    "mrmr": "SupervisedFullSpectrumBandSelector",
    "orthogonal_projection": "OrthogonalProjectionBandSelector",
    "correlation_clusters": "CorrelationClusterBandSelector",
}
_NAMES_WARNING = "X does not have valid feature names"


class EstimatorNotFittedError(NotFittedError, SklearnNotFittedError):
    """Used before ``fit``: bandselect's :class:`~bandselect.errors.NotFittedError` and scikit-learn's."""


class SpectralBandSelector(SelectorMixin, BaseEstimator):
    """Select ``k`` bands (columns) of pixel spectra ``X`` with one of bandselect's selectors.

    Parameters
    ----------
    method : {"separability", "mrmr", "orthogonal_projection", "correlation_clusters"}, default "separability"
        The selector (see the module docstring); the last two are unsupervised and ignore ``y`` (except
        for ``ignore_label``).
    k : int, default 3
        Bands to keep (``k > n_features`` keeps every band, with a warning, as ``SelectKBest`` does).
    wavelengths_nm : array-like of shape (n_features,), optional
        Band centres in nm: they become ``feature_names_in_`` (as text) and the grid of ``selection_``.
        A DataFrame whose column names are numbers gives them too.
    positive_label : int, optional
        Supervised methods: this class against every other class (default: the classes of ``y``).
    ignore_label : int, optional
        Rows whose ``y`` equals it are left out of every statistic.
    score_weights : tuple of 3 float, default (1.0, 1.0, 1.0)
        ``"mrmr"``: weights of (Fisher/F, AUC, MI).
    lambda_penalty : float, default 0.5
        ``"mrmr"``: redundancy penalty.
    n_bins : int, default 2048
        Histogram bins per band of the supervised statistics (AUC, MI).
    nan_policy : {"raise", "omit"}, default "raise"
        Rows with NaN: an error, or left out of the statistics (``transform`` passes them through).

    Attributes
    ----------
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        The DataFrame's column names, or the wavelengths as text when ``wavelengths_nm`` is given.
    indices_ : ndarray of int
        The selected bands in pick order (``get_support(indices=True)`` is the same, sorted).
    scores_ : ndarray of shape (n_features,)
        The method's per-band score (combined relevance; unexplained fraction; cluster correlation).
    objective_ : float
        The method's value for the selection.
    classes_ : ndarray
        Supervised methods: the classes of ``y`` compared (after ``ignore_label`` and ``positive_label``).
    wavelengths_nm_ : ndarray or None
        The band centres, when known.
    statistics_ : bandselect.stats.BandStatistics
        The merged statistics the selection was made from.
    selection_ : bandselect.selection.BandSelection
        The selection on the wavelength grid (requires wavelengths).

    Raises
    ------
    ConfigError
        Bad parameters (at ``fit``, as scikit-learn does).
    LabelError
        Supervised: fewer than two classes after ignoring, ``ignore_label == positive_label``, or
        ``positive_label`` absent.
    ValueError
        NaN in ``X`` with ``nan_policy="raise"``, wrong shapes (scikit-learn's checks).
    """

    def __init__(
        self,
        method: str = "separability",
        k: int = 3,
        *,
        wavelengths_nm: Sequence[float] | np.ndarray | None = None,
        positive_label: int | None = None,
        ignore_label: int | None = None,
        score_weights: tuple[float, float, float] = (1.0, 1.0, 1.0),
        lambda_penalty: float = 0.5,
        n_bins: int = DEFAULT_N_BINS,
        nan_policy: str = "raise",
    ) -> None:
        self.method = method
        self.k = k
        self.wavelengths_nm = wavelengths_nm
        self.positive_label = positive_label
        self.ignore_label = ignore_label
        self.score_weights = score_weights
        self.lambda_penalty = lambda_penalty
        self.n_bins = n_bins
        self.nan_policy = nan_policy

    # -- scikit-learn plumbing --------------------------------------------------------------------------
    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.required = self.method in SUPERVISED_METHODS
        tags.input_tags.allow_nan = self.nan_policy == "omit"
        return tags

    @property
    def supervised(self) -> bool:
        """Whether the method needs ``y``."""
        return self.method in SUPERVISED_METHODS

    def _check_params(self) -> None:
        owner = type(self).__name__
        if self.method not in METHODS:
            raise ConfigError(
                f"The 'method' parameter of {owner}",
                expected=f"one of {list(METHODS)}",
                found=repr(self.method),
                fix="pass e.g. method='separability'",
            )
        if self.nan_policy not in ("raise", "omit"):
            raise ConfigError(
                f"The 'nan_policy' parameter of {owner}",
                expected='"raise" or "omit"',
                found=repr(self.nan_policy),
                fix='pass nan_policy="omit" to leave rows with NaN out',
            )
        for name, value, minimum in (("k", self.k, 1), ("n_bins", self.n_bins, 1)):
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or int(value) < minimum:
                raise ConfigError(
                    f"The {name!r} parameter of {owner}",
                    expected=f"an int >= {minimum}",
                    found=repr(value),
                    fix=f"pass e.g. {name}={3 if name == 'k' else DEFAULT_N_BINS}",
                )
        check_label_roles(self.positive_label, self.ignore_label, what=f"{owner} labels")

    # -- fitting -----------------------------------------------------------------------------------------
    def fit(self, X: Any, y: Any = None) -> SpectralBandSelector:
        """Compute the statistics of ``X`` (and ``y``) and select the bands.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Pixel spectra, one row per pixel.
        y : array-like of shape (n_samples,), optional
            Class labels (required by the supervised methods; with ``ignore_label`` also used by the
            unsupervised ones to drop rows).

        Returns
        -------
        self
        """
        self._check_params()
        self._forget_names()
        finite = True if self.nan_policy == "raise" else "allow-nan"
        if self.supervised or y is not None:
            X, y = validate_data(self, X, y, dtype=np.float64, ensure_all_finite=finite)
        else:
            X = validate_data(self, X, dtype=np.float64, ensure_all_finite=finite)
        wavelengths = self._wavelengths(X.shape[1])
        labels, valid = self._labels(y)
        stats = statistics_of(
            X,
            labels,
            n_bins=self.n_bins if self.supervised else None,
            valid=valid,
            nan_policy=self.nan_policy,  # type: ignore[arg-type]
        )
        return self._fit_statistics(stats, wavelengths)

    def _forget_names(self) -> None:
        """Drop the names a previous fit took from ``wavelengths_nm`` (a DataFrame's are reset by
        scikit-learn's ``validate_data``)."""
        if getattr(self, "_names_from_wavelengths", False):
            del self.feature_names_in_
        self._names_from_wavelengths = False

    def fit_from_statistics(self, stats: BandStatistics, *, wavelengths: Any = None) -> SpectralBandSelector:
        """Select from precomputed statistics (e.g. :func:`bandselect.stats.compute_statistics` over a
        Dask-backed cube, as :func:`bandselect.xarray_api.fit_selector` does).

        The statistics' labels are used as they are (``positive_label`` and ``ignore_label`` apply when
        the statistics are made); supervised methods need per-class histograms.
        """
        self._check_params()
        if not isinstance(stats, BandStatistics):
            raise ConfigError(
                "stats",
                expected="a bandselect.stats.BandStatistics",
                found=type(stats).__name__,
                fix="compute it with bandselect.stats.statistics_of or compute_statistics",
            )
        self._forget_names()
        self.n_features_in_ = int(stats.n_bands)
        wl = self._wavelengths(stats.n_bands, given=wavelengths, order_fix=_STATISTICS_ORDER_FIX)
        if self.supervised:
            self.classes_ = np.asarray(stats.classes[stats.counts > 0])
        return self._fit_statistics(stats, wl)

    def _wavelengths(
        self, n_features: int, given: Any = None, order_fix: str = _ORDER_FIX
    ) -> np.ndarray | None:
        """The band centres from the parameter, the fitted DataFrame's numeric column names, or ``given``
        (``order_fix``: the remedy for bands out of wavelength order, in the caller's terms)."""
        names = getattr(self, "feature_names_in_", None)
        from_names = None
        if names is not None:
            try:
                from_names = np.asarray([float(name) for name in names], dtype=np.float64)
            except ValueError:
                from_names = None
        sources = [w for w in (self.wavelengths_nm, given) if w is not None]
        if not sources:
            return (
                None
                if from_names is None
                else validate_wavelengths(from_names, n_features, order_fix=order_fix)
            )
        wl = validate_wavelengths(np.asarray(sources[0], dtype=np.float64), n_features, order_fix=order_fix)
        for other in [*sources[1:], *([] if from_names is None else [from_names])]:
            if not np.allclose(np.asarray(other, dtype=np.float64), wl, rtol=0.0, atol=1e-6):
                raise WavelengthError(
                    "wavelengths_nm",
                    expected="the wavelengths of the columns of X (the DataFrame's column names)",
                    found=f"{wl[:4].tolist()}... against {np.asarray(other)[:4].tolist()}...",
                    fix="pass the wavelengths of the columns, or leave wavelengths_nm unset",
                )
        if names is None:
            self.feature_names_in_ = np.asarray([str(float(w)) for w in wl], dtype=object)
            self._names_from_wavelengths = True
        return wl

    def _labels(self, y: Any) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Integer class codes and the rows that count (the label rule of the estimator)."""
        if y is None:
            if self.ignore_label is not None or self.positive_label is not None:
                raise LabelError(
                    f"{type(self).__name__}.fit",
                    expected="y (ignore_label and positive_label name values of it)",
                    found="y=None",
                    fix="pass y, or leave ignore_label and positive_label unset",
                )
            return None, None
        values = np.asarray(y)
        valid = None if self.ignore_label is None else values != self.ignore_label
        counted = values if valid is None else values[valid]
        if not self.supervised:
            return None, valid
        if self.positive_label is not None:
            present = np.unique(counted).tolist()
            if self.positive_label not in present:
                raise LabelError(
                    "y",
                    expected=f"rows of class positive_label={self.positive_label}",
                    found=f"classes {present[:20]}",
                    fix="set positive_label to a class of y (or None: every class of y)",
                )
            self.classes_ = np.array([0, 1])
            return (values == self.positive_label).astype(np.int64), valid
        classes = np.unique(counted)
        self.classes_ = classes
        codes = np.zeros(values.shape, np.int64)
        if valid is None:
            codes = np.searchsorted(classes, values).astype(np.int64)
        else:
            codes[valid] = np.searchsorted(classes, values[valid])
        return codes, valid

    def _select(self, stats: BandStatistics) -> ScoredSubset:
        n_features = int(stats.n_bands)
        k = int(self.k)
        if k > n_features:
            # scikit-learn's habit (SelectKBest): more bands asked for than X has keeps them all, loudly.
            warnings.warn(
                f"k={k} is greater than n_features={n_features}: every band is kept",
                UserWarning,
                stacklevel=3,
            )
            k = n_features
        if self.method == "separability":
            return separability_select(stats, k, multiclass=True)
        if self.method == "mrmr":
            return mrmr_select(
                stats,
                k,
                score_weights=self.score_weights,
                lambda_penalty=self.lambda_penalty,
                multiclass=True,
            )
        if self.method == "orthogonal_projection":
            return orthogonal_projection_select(stats, k)
        return correlation_cluster_select(stats, k)

    def _fit_statistics(self, stats: BandStatistics, wavelengths: np.ndarray | None) -> SpectralBandSelector:
        result = self._select(stats)
        self.statistics_ = stats
        self.indices_ = np.asarray(result.indices, dtype=np.int64)
        self.scores_ = np.asarray(result.band_scores, dtype=np.float64)
        self.objective_ = float(result.objective)
        self.wavelengths_nm_ = wavelengths
        return self

    # -- results -----------------------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        try:
            check_is_fitted(self, "indices_")
        except SklearnNotFittedError as error:
            raise EstimatorNotFittedError(
                f"This {type(self).__name__} instance is not fitted yet",
                expected="fit(X, y) first",
                found="no selection",
                fix="call fit(X, y) before transform or get_support",
            ) from error

    def _get_support_mask(self) -> np.ndarray:
        self._check_fitted()
        mask = np.zeros(self.n_features_in_, dtype=bool)
        mask[self.indices_] = True
        return mask

    def transform(self, X: Any) -> Any:
        """Keep the selected bands of ``X`` (columns in band order), as every scikit-learn selector.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        array of shape (n_samples, k)
        """
        self._check_fitted()
        with warnings.catch_warnings():
            if getattr(self, "_names_from_wavelengths", False):
                # The names are the wavelengths given as a parameter, not a DataFrame's columns: a plain
                # array is what this estimator was fitted on.
                warnings.filterwarnings("ignore", message=_NAMES_WARNING, category=UserWarning)
            return super().transform(X)

    @property
    def selection_(self) -> BandSelection:
        """The selection as a :class:`~bandselect.selection.BandSelection` (picks in pick order).

        Raises
        ------
        EstimatorNotFittedError
            Before ``fit``.
        WavelengthError
            The wavelengths are unknown (pass ``wavelengths_nm``).
        """
        self._check_fitted()
        if self.wavelengths_nm_ is None:
            raise WavelengthError(
                f"{type(self).__name__}.selection_",
                expected="the band centres (a selection lives on a wavelength grid)",
                found="no wavelengths",
                fix="pass wavelengths_nm=..., or a DataFrame whose column names are the wavelengths",
            )
        config = {"method": self.method, "k": int(self.k)}
        if self.method == "mrmr":
            config.update(score_weights=list(self.score_weights), lambda_penalty=float(self.lambda_penalty))
        return BandSelection.create(
            self.indices_,
            self.wavelengths_nm_,
            selector_type=NODE_TYPES[self.method],
            selector_config=config,
            scores={"score": self.scores_},
            objective=self.objective_,
            strategy=f"sklearn_{self.method}",
        )
