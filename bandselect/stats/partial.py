"""Mergeable sufficient statistics of a hyperspectral cube: :class:`BandStatistics`.

One object holds, per class of an optional label mask, the pixel count, the per-band mean, the centred
band co-moment matrix ``Σ (x − μ)(x − μ)ᵀ`` (from which sums, sums of squares, Gram matrices, variances
and covariances follow), per-band min/max and optionally per-band histograms on fixed edges.

Numerical robustness: moments are stored *centred* per class and merged with Chan et al.'s pairwise
update (``M = M_a + M_b + δδᵀ n_a n_b / n``), never as raw sums of squares, so the variance of a band with
a large offset (raw uint16 counts around 10⁴) keeps full float64 precision however the data is split.
Within one chunk, sums are taken about a shift close to each class mean (see
:mod:`bandselect.stats.kernels`), which keeps the same precision.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from bandselect import storage
from bandselect.errors import (
    FileFormatError,
    InputError,
    LabelError,
    ShapeError,
)
from bandselect.stats import persistence, scores
from bandselect.stats.binning import NanPolicy, PreparedPixels, prepare_pixels, validate_edges
from bandselect.stats.kernels import (
    ClassLayout,
    accumulate_split,
    layout_of,
    parallel_threads,
    thread_controller,
)
from bandselect.stats.persistence import FORMAT_VERSION as FORMAT_VERSION  # re-exported (moved)
from bandselect.stats.spatial import laplacian_abs_sums
from bandselect.storage import StoreLocation


@dataclass(frozen=True, eq=False)
class BandStatistics:
    """Mergeable per-class sufficient statistics of a ``(..., C)`` cube.

    Build with :meth:`from_arrays`, combine with :meth:`merge`, persist with :meth:`save`/:meth:`load`.
    Arrays are float64 (counts int64) and read-only. Classes are the distinct mask labels (a bool mask
    gives classes 0 and 1; no mask gives the single class 0). Binary scores (:attr:`fisher`, :attr:`auc`,
    :attr:`mi`) compare class 0 (negative) against all labels > 0 (positive); for multi-class masks use
    :meth:`one_vs_rest`.

    Attributes
    ----------
    classes
        ``(K,)`` int64 sorted labels.
    counts
        ``(K,)`` int64 pixels per class.
    class_means
        ``(K, C)`` float64.
    class_comoments
        ``(K, C, C)`` float64 centred co-moments ``Σ (x − μ_k)(x − μ_k)ᵀ``.
    class_minimum, class_maximum
        ``(K, C)`` float64 (``+inf``/``-inf`` for an empty class).
    hist_edges
        ``(C, n_bins + 1)`` float64 or None.
    histograms
        ``(K, C, n_bins)`` int64 or None.
    n_clipped
        ``(K, C)`` int64: values outside ``hist_edges`` counted into the end bins (None without histograms).
    n_nonfinite
        Pixels left out because a band was NaN/Inf (``nan_policy="omit"``).
    n_invalid
        Pixels left out by the ``valid`` mask.
    laplacian_abs_sum, laplacian_count
        Spatial contrast, when requested (``contrast=True``): ``(C,)`` sum of the absolute 5-point
        Laplacian at every counted pixel of the images (a neighbour left out adds nothing), and the
        number of pixels summed (see :mod:`bandselect.stats.spatial`); None / 0 otherwise.
        :attr:`laplacian_energy` is their ratio.
    """

    classes: np.ndarray
    counts: np.ndarray
    class_means: np.ndarray
    class_comoments: np.ndarray
    class_minimum: np.ndarray
    class_maximum: np.ndarray
    hist_edges: np.ndarray | None = None
    histograms: np.ndarray | None = None
    n_clipped: np.ndarray | None = None
    n_nonfinite: int = 0
    n_invalid: int = 0
    laplacian_abs_sum: np.ndarray | None = None
    laplacian_count: int = 0

    def __post_init__(self) -> None:
        for name in (
            "classes",
            "counts",
            "class_means",
            "class_comoments",
            "class_minimum",
            "class_maximum",
            "hist_edges",
            "histograms",
            "n_clipped",
            "laplacian_abs_sum",
        ):
            value = getattr(self, name)
            if value is not None:
                # A read-only array that owns its memory is kept as it is (the engine's fresh results;
                # a copy of a megabyte of histograms per chunk costs new pages); anything else is copied.
                if not (isinstance(value, np.ndarray) and value.flags.owndata and not value.flags.writeable):
                    value = np.array(value, copy=True)
                    value.setflags(write=False)
                object.__setattr__(self, name, value)

    # ------------------------------------------------------------------ construction
    @classmethod
    def empty(cls, n_bands: int, *, hist_edges: Any = None) -> BandStatistics:
        """Statistics of no pixels (the neutral element of :meth:`merge`)."""
        edges = None if hist_edges is None else validate_edges(hist_edges, n_bands)
        return cls(
            classes=np.zeros(0, np.int64),
            counts=np.zeros(0, np.int64),
            class_means=np.zeros((0, n_bands)),
            class_comoments=np.zeros((0, n_bands, n_bands)),
            class_minimum=np.zeros((0, n_bands)),
            class_maximum=np.zeros((0, n_bands)),
            hist_edges=edges,
            histograms=None if edges is None else np.zeros((0, n_bands, edges.shape[1] - 1), np.int64),
            n_clipped=None if edges is None else np.zeros((0, n_bands), np.int64),
        )

    @classmethod
    def from_arrays(
        cls,
        cube: Any,
        mask: Any = None,
        *,
        hist_edges: Any = None,
        valid: Any = None,
        nan_policy: NanPolicy = "raise",
        contrast: bool = False,
        device: str | None = None,
    ) -> BandStatistics:
        """Statistics of one chunk of pixels.

        Parameters
        ----------
        cube
            ``(..., C)`` array (BHWC, HWC, ``(N, C)``...), NumPy or torch, any real dtype.
        mask
            Labels with the cube's leading shape (a trailing singleton axis is accepted): bool (classes 0
            and 1) or integer (each value a class). None: one class, 0.
        hist_edges
            ``(C, n_bins + 1)`` fixed edges (see :func:`histogram_edges`); None skips histograms.
        valid
            Bool array with the leading shape; pixels where it is False are left out (counted).
        nan_policy
            ``"raise"`` (default): NaN/Inf pixels raise :class:`NonFiniteError`. ``"omit"``: pixels with
            any non-finite band are left out and counted in :attr:`n_nonfinite`.
        contrast
            Also sum the spatial contrast terms (:attr:`laplacian_abs_sum`): ``cube`` must then be images
            ``(..., H, W, C)``, each image taken whole (edges replicated), over the pixels the other
            statistics count: a pixel left out (``valid`` False, non-finite under ``"omit"``) is no
            Laplacian centre, and as a neighbour it is taken to equal the centre
            (:func:`~bandselect.stats.spatial.laplacian_abs_sums`).
        device
            None: the CPU kernels. A torch device (``"cpu"``, ``"cuda"``...): the moments, Gram
            matrices and histograms are computed by :mod:`bandselect.stats.torch_backend` on it.

        Shape
        -----
        cube ``(..., C)``; mask and valid ``(...)`` or ``(..., 1)``.

        Notes
        -----
        Large cubes (millions of values per core) are split over threads, as many as the cores and the
        BLAS thread limit allow (:func:`~bandselect.stats.kernels.parallel_threads`); wrap the call in
        ``threadpoolctl.threadpool_limits(1)`` to keep it on one thread.
        """
        prepared = prepare_pixels(cube, mask, valid=valid, nan_policy=nan_policy)
        edges = None if hist_edges is None else validate_edges(hist_edges, prepared.pixels.shape[1])
        out = cls.from_prepared(prepared, edges, device=device)
        if contrast:
            out = out.with_contrast(*laplacian_abs_sums(cube, prepared.kept))  # kept pixels only
        return out

    @classmethod
    def from_prepared(
        cls,
        prepared: PreparedPixels,
        hist_edges: np.ndarray | None = None,
        *,
        device: str | None = None,
        layout: ClassLayout | None = None,
    ) -> BandStatistics:
        """:meth:`from_pixels` of :func:`~bandselect.stats.binning.prepare_pixels`' result, with its
        counts of non-finite and invalid pixels."""
        return cls.from_pixels(
            prepared.pixels,
            prepared.labels,
            hist_edges,
            n_nonfinite=prepared.n_nonfinite,
            n_invalid=prepared.n_invalid,
            device=device,
            layout=layout,
        )

    @classmethod
    def from_pixels(
        cls,
        pixels: np.ndarray,
        labels: np.ndarray,
        hist_edges: np.ndarray | None = None,
        *,
        n_nonfinite: int = 0,
        n_invalid: int = 0,
        n_threads: int | None = None,
        device: str | None = None,
        layout: ClassLayout | None = None,
    ) -> BandStatistics:
        """Statistics of prepared pixels: ``(N, C)`` values and ``(N,)`` int64 labels, already filtered.

        The one accumulation behind :meth:`from_arrays`, :func:`~bandselect.stats.statistics_of` and
        each chunk of :func:`~bandselect.stats.compute_statistics`: one read of the pixels for the
        moments, the Gram matrices, min/max and (with ``hist_edges``, already validated) the histograms.
        ``n_threads`` None splits large inputs over the cores
        (:func:`~bandselect.stats.kernels.parallel_threads`); ``device`` as in :meth:`from_arrays`;
        ``layout``: ``class_layout(labels)`` when the caller has it already (a second pass over the
        same pixels), else it is computed here.
        """
        if device is not None:
            from bandselect.stats import torch_backend

            resolved = torch_backend.resolve_device(device)  # "auto" without CUDA: the CPU kernels
            if resolved is not None:
                parts = torch_backend.accumulate(pixels, labels, hist_edges, resolved)
                out = cls(hist_edges=hist_edges, **parts)
                return replace(out, n_nonfinite=n_nonfinite, n_invalid=n_invalid)
        threads = parallel_threads(pixels.size) if n_threads is None else int(n_threads)
        out = cls._from_pixels(
            pixels, labels, hist_edges, n_threads=threads, own_blas=n_threads is None, layout=layout
        )
        return replace(out, n_nonfinite=n_nonfinite, n_invalid=n_invalid)

    @classmethod
    def _from_pixels(
        cls,
        pixels: np.ndarray,
        labels: np.ndarray,
        edges: np.ndarray | None,
        *,
        n_threads: int = 1,
        own_blas: bool = False,
        layout: ClassLayout | None = None,
    ) -> BandStatistics:
        # One pass over the pixels, block by block, with running sums kept in place (kernels module):
        # per-block BandStatistics and their merges used to cost more than the arithmetic. Dask tasks
        # call this with n_threads=1 (Dask parallelises over chunks, under its own BLAS limit); the
        # in-memory entry (own_blas) splits large inputs over the cores, one accumulator per contiguous
        # block of rows, merged at the end, and runs BLAS on one thread: each Gram is a small syrk that
        # OpenBLAS's own threads only slow down (measured 7x slower on this shared 2-core machine).
        classes, class_index = layout_of(labels, layout)
        if pixels.shape[0] == 0:
            return cls.empty(pixels.shape[1], hist_edges=edges)
        with thread_controller().limit(limits=1, user_api="blas") if own_blas else contextlib.nullcontext():
            accumulator = accumulate_split(pixels, class_index, classes.size, edges, n_threads=n_threads)
        result = accumulator.result()
        for name in ("class_means", "class_comoments", "histograms", "n_clipped"):  # fresh: not copied again
            if result[name] is not None:
                result[name].setflags(write=False)
        return cls(classes=classes, hist_edges=edges, **result)

    def with_contrast(self, laplacian_abs_sum: Any, laplacian_count: int) -> BandStatistics:
        """The same statistics with the spatial contrast terms of the same images attached.

        Raises
        ------
        ShapeError
            Not one sum per band.
        """
        total = np.asarray(laplacian_abs_sum, dtype=np.float64).reshape(-1)
        if total.size != self.n_bands:
            raise ShapeError(
                "laplacian_abs_sum",
                expected=f"{self.n_bands} values (one per band)",
                found=f"{total.size} values",
                fix="sum the contrast of the same cube",
            )
        return replace(self, laplacian_abs_sum=total, laplacian_count=int(laplacian_count))

    @property
    def has_contrast(self) -> bool:
        """Whether the spatial contrast terms were accumulated."""
        return self.laplacian_abs_sum is not None

    @property
    def laplacian_energy(self) -> np.ndarray:
        """``(C,)`` mean absolute 5-point Laplacian per band (the HighContrast selector's edge term).

        Raises
        ------
        InputError
            The statistics were computed without ``contrast=True``.
        """
        if self.laplacian_abs_sum is None:
            raise InputError(
                "spatial contrast",
                expected="statistics with the Laplacian terms",
                found="statistics computed without contrast",
                fix="compute them with contrast=True (BandStatistics.from_arrays or compute_statistics)",
            )
        if self.laplacian_count == 0:
            return np.zeros(self.n_bands)
        return self.laplacian_abs_sum / self.laplacian_count

    def with_histograms(
        self, hist_edges: Any, classes: Any, histograms: Any, n_clipped: Any
    ) -> BandStatistics:
        """The same moments with histograms replaced (e.g. from a second, histogram-only pass).

        ``classes`` ``(K',)``, ``histograms`` ``(K', C, n_bins)`` and ``n_clipped`` ``(K', C)`` describe
        the histograms of the same pixels; classes absent on either side get zeros.
        """
        edges = validate_edges(hist_edges, self.n_bands)
        hist_classes = np.asarray(classes, np.int64)
        hist = np.asarray(histograms, np.int64)
        if hist.shape != (hist_classes.size, self.n_bands, edges.shape[1] - 1):
            expected = (hist_classes.size, self.n_bands, edges.shape[1] - 1)
            raise ShapeError(
                "histograms",
                expected=str(expected),
                found=str(hist.shape),
                fix="pass histograms computed on hist_edges",
            )
        extra = np.setdiff1d(hist_classes, self.classes)
        if extra.size:
            raise InputError(
                "histograms",
                expected=f"classes among {self.classes.tolist()}",
                found=f"classes {extra.tolist()}",
                fix="compute both passes on the same pixels",
            )
        clipped = np.asarray(n_clipped, np.int64)
        if np.array_equal(hist_classes, self.classes):  # the usual case: taken as they are, no copy
            return replace(self, hist_edges=edges, histograms=hist, n_clipped=clipped)
        out_hist = np.zeros((self.classes.size, *hist.shape[1:]), np.int64)
        out_clipped = np.zeros((self.classes.size, self.n_bands), np.int64)
        pos = np.searchsorted(self.classes, hist_classes)
        out_hist[pos] = hist
        out_clipped[pos] = clipped
        return replace(self, hist_edges=edges, histograms=out_hist, n_clipped=out_clipped)

    # ------------------------------------------------------------------ merge
    def merge(self, other: BandStatistics) -> BandStatistics:
        """Statistics of the union of both pixel sets (associative and commutative up to rounding).

        Raises
        ------
        ShapeError
            Different band counts.
        InputError
            One side has histograms and the other not, or their edges differ.
        """
        return BandStatistics.merge_all([self, other])

    @staticmethod
    def merge_all(parts: Sequence[BandStatistics]) -> BandStatistics:
        """Statistics of the union of the pixel sets of ``parts`` (one node of a reduction tree).

        One combination instead of ``len(parts) − 1`` pairwise merges: counts and histograms are
        summed, the means weighted, and the co-moments are ``Σ Cᵢ + Σ nᵢ (mᵢ − m)(mᵢ − m)ᵀ`` about the
        merged mean ``m`` (the deviations of the parts' means, as in the pairwise update).

        Raises
        ------
        ShapeError
            Different band counts.
        InputError
            No parts, something that is not a BandStatistics, histograms on some parts only or on
            different edges, or the spatial contrast terms on some parts only.
        """
        parts = list(parts)
        if not parts or not all(isinstance(p, BandStatistics) for p in parts):
            found = "no statistics" if not parts else ", ".join(sorted({type(p).__name__ for p in parts}))
            raise InputError(
                "merge",
                expected="BandStatistics (at least one)",
                found=found,
                fix="merge statistics built with BandStatistics.from_arrays",
            )
        first = parts[0]
        for other in parts[1:]:
            if other.n_bands != first.n_bands:
                raise ShapeError(
                    "merge",
                    expected=f"statistics of {first.n_bands} bands",
                    found=f"{other.n_bands} bands",
                    fix="merge only statistics of cubes from the same sensor/band subset",
                )
            if (first.hist_edges is None) != (other.hist_edges is None):
                raise InputError(
                    "merge",
                    expected="both statistics with histograms, or neither",
                    found="one with histograms and one without",
                    fix="compute both passes with the same hist_edges",
                )
            if first.hist_edges is not None and not np.array_equal(first.hist_edges, other.hist_edges):
                raise InputError(
                    "merge",
                    expected="identical histogram edges",
                    found="different edges (bins or ranges)",
                    fix="build every partial with the same histogram_edges(...) array",
                )
            if first.has_contrast != other.has_contrast:
                raise InputError(
                    "merge",
                    expected="both statistics with the spatial contrast terms, or neither",
                    found="one with contrast and one without",
                    fix="compute every partial with the same contrast setting",
                )
        if len(parts) == 1:
            return first
        if all(np.array_equal(p.classes, first.classes) for p in parts):  # the usual case: no re-indexing
            classes = first.classes
            aligned = [
                (p.counts, p.class_means, p.class_comoments, p.class_minimum, p.class_maximum, p.histograms,
                 p.n_clipped)
                for p in parts
            ]  # fmt: skip
        else:
            classes = functools.reduce(np.union1d, [p.classes for p in parts]).astype(np.int64)
            aligned = [p._aligned(classes) for p in parts]
        counts = np.stack([a[0] for a in aligned])  # (P, K)
        n = counts.sum(axis=0)
        weights = counts / np.maximum(n, 1)[None, :]  # (P, K): 0 for a class no part has
        means = (weights[:, :, None] * np.stack([a[1] for a in aligned])).sum(axis=0)
        comoments = np.sum([a[2] for a in aligned], axis=0)
        for part_counts, part_means, *_ in aligned:
            delta = part_means - means
            comoments += part_counts[:, None, None] * (delta[:, :, None] * delta[:, None, :])
        contrast = None
        if first.laplacian_abs_sum is not None:
            contrast = np.sum([p.laplacian_abs_sum for p in parts], axis=0)
        has_hist = aligned[0][5] is not None
        return BandStatistics(
            classes=classes,
            counts=n,
            class_means=means,
            class_comoments=comoments,
            class_minimum=np.min([a[3] for a in aligned], axis=0),
            class_maximum=np.max([a[4] for a in aligned], axis=0),
            hist_edges=first.hist_edges,
            histograms=np.sum([a[5] for a in aligned], axis=0) if has_hist else None,
            n_clipped=np.sum([a[6] for a in aligned], axis=0) if has_hist else None,
            n_nonfinite=sum(p.n_nonfinite for p in parts),
            n_invalid=sum(p.n_invalid for p in parts),
            laplacian_abs_sum=contrast,
            laplacian_count=sum(p.laplacian_count for p in parts),
        )

    def _aligned(self, classes: np.ndarray) -> tuple[Any, ...]:
        """Arrays re-indexed on ``classes`` (a superset of ours), zeros/±inf for absent classes."""
        k, c = classes.size, self.n_bands
        pos = np.searchsorted(classes, self.classes)
        counts = np.zeros(k, np.int64)
        means = np.zeros((k, c))
        comoments = np.zeros((k, c, c))
        lo = np.full((k, c), np.inf)
        hi = np.full((k, c), -np.inf)
        counts[pos], means[pos], comoments[pos] = self.counts, self.class_means, self.class_comoments
        lo[pos], hi[pos] = self.class_minimum, self.class_maximum
        hist = clipped = None
        if self.histograms is not None:
            hist = np.zeros((k, c, self.histograms.shape[2]), np.int64)
            clipped = np.zeros((k, c), np.int64)
            hist[pos], clipped[pos] = self.histograms, self.n_clipped
        return counts, means, comoments, lo, hi, hist, clipped

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike[str]) -> StoreLocation:
        """Write a compressed ``.npz`` atomically (a local temporary file then ``os.replace``, or one PUT
        to an object-store URL).

        Raises
        ------
        OSError
            A local file that cannot be written (nothing is left behind).
        StoreError
            An object-store location that cannot be written.
        """
        arrays: dict[str, np.ndarray] = {
            "classes": self.classes,
            "counts": self.counts,
            "class_means": self.class_means,
            "class_comoments": self.class_comoments,
            "class_minimum": self.class_minimum,
            "class_maximum": self.class_maximum,
            "n_nonfinite": np.asarray(self.n_nonfinite),
            "n_invalid": np.asarray(self.n_invalid),
        }
        if self.hist_edges is not None:
            arrays.update(hist_edges=self.hist_edges, histograms=self.histograms, n_clipped=self.n_clipped)
        if self.laplacian_abs_sum is not None:
            arrays.update(
                laplacian_abs_sum=self.laplacian_abs_sum, laplacian_count=np.asarray(self.laplacian_count)
            )
        target = storage.location(path)
        data = persistence.encode(arrays)
        if isinstance(target, Path):
            storage.write_bytes(target, data)  # an OSError as it is (a full disk: the caller's ResourceError)
            return target
        try:
            storage.write_bytes(target, data)
        except storage.connection_errors() as exc:  # no such bucket, no permission, no endpoint
            raise storage.unreachable(f"statistics file {target}", exc, writable=True) from exc
        return target

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> BandStatistics:
        """Read statistics written by :meth:`save` (a local path or an object-store URL).

        Raises
        ------
        FileFormatError
            Missing or unreadable file, another format version, or missing arrays.
        StoreError
            An object store that cannot be reached (no credentials, no endpoint, no permission).
        """
        source = storage.location(path)
        try:
            data = storage.read_bytes(source)
        except storage.connection_errors() as exc:
            if not isinstance(source, Path) and not isinstance(exc, FileNotFoundError):
                # The store, not the file: recomputing would fail the same way.
                raise storage.unreachable(f"statistics file {source}", exc) from exc
            raise FileFormatError(
                f"statistics file {source}",
                expected="a .npz written by BandStatistics.save",
                found=f"{type(exc).__name__}: {exc}",
                fix="recompute the statistics",
            ) from exc
        return cls(**persistence.decode(data, str(source)))

    # ------------------------------------------------------------------ basic properties
    @property
    def n_bands(self) -> int:
        """Number of bands ``C``."""
        return int(self.class_means.shape[1])

    @property
    def n_bins(self) -> int | None:
        """Histogram bins per band, or None without histograms."""
        return None if self.hist_edges is None else int(self.hist_edges.shape[1] - 1)

    @property
    def has_histograms(self) -> bool:
        """Whether per-class histograms were accumulated (needed by :attr:`auc` and :attr:`mi`)."""
        return self.histograms is not None

    @property
    def count(self) -> int:
        """Total number of pixels."""
        return int(self.counts.sum())

    def _class_index(self, label: int) -> int:
        hits = np.flatnonzero(self.classes == int(label))
        if hits.size == 0 or self.counts[hits[0]] == 0:
            raise LabelError(
                f"class {int(label)}",
                expected="a class present in the mask",
                found=f"classes {self.classes.tolist()} with counts {self.counts.tolist()}",
                fix="choose a label that occurs in the mask, or check the mask",
            )
        return int(hits[0])

    def class_count(self, label: int) -> int:
        """Pixels of class ``label`` (0 when absent)."""
        hits = np.flatnonzero(self.classes == int(label))
        return 0 if hits.size == 0 else int(self.counts[hits[0]])

    def class_mean(self, label: int) -> np.ndarray:
        """``(C,)`` mean of class ``label``."""
        return self.class_means[self._class_index(label)].copy()

    def class_covariance(self, label: int) -> np.ndarray:
        """``(C, C)`` population covariance of class ``label`` (constant bands exactly 0)."""
        i = self._class_index(label)
        constant = self.class_minimum[i] >= self.class_maximum[i]
        return _clean(self.class_comoments[i] / self.counts[i], constant)

    def class_variance(self, label: int) -> np.ndarray:
        """``(C,)`` population variance of class ``label``."""
        return np.diag(self.class_covariance(label)).copy()

    def class_gram(self, label: int) -> np.ndarray:
        """``(C, C)`` uncentred Gram matrix ``Σ x xᵀ`` of class ``label``."""
        i = self._class_index(label)
        mu = self.class_means[i]
        return self.class_comoments[i] + self.counts[i] * np.outer(mu, mu)

    def _pooled(self, rows: np.ndarray) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
        """Count, mean, comoment and constant-flag of the union of the classes in ``rows`` (bool)."""
        n_k = self.counts[rows].astype(np.float64)
        n = float(n_k.sum())
        if n == 0:
            c = self.n_bands
            return 0, np.zeros(c), np.zeros((c, c)), np.ones(c, bool)
        means = self.class_means[rows]
        mu = (n_k[:, None] * means).sum(axis=0) / n
        d = means - mu
        comoment = self.class_comoments[rows].sum(axis=0) + (n_k[:, None] * d).T @ d
        constant = self.class_minimum[rows].min(axis=0) >= self.class_maximum[rows].max(axis=0)
        return int(n), mu, comoment, constant

    @property
    def minimum(self) -> np.ndarray:
        """``(C,)`` per-band minimum over all pixels."""
        return self.class_minimum.min(axis=0, initial=np.inf)

    @property
    def maximum(self) -> np.ndarray:
        """``(C,)`` per-band maximum over all pixels."""
        return self.class_maximum.max(axis=0, initial=-np.inf)

    @property
    def constant_bands(self) -> np.ndarray:
        """``(C,)`` bool: bands with one value over all pixels (they score 0 and rank last)."""
        return self.minimum >= self.maximum

    @property
    def mean(self) -> np.ndarray:
        """``(C,)`` mean over all pixels."""
        return self._pooled(np.ones(self.classes.size, bool))[1]

    @property
    def covariance(self) -> np.ndarray:
        """``(C, C)`` population covariance over all pixels."""
        n, _, comoment, constant = self._pooled(np.ones(self.classes.size, bool))
        if n == 0:
            raise InputError(
                "covariance",
                expected="statistics of at least one pixel",
                found="no pixels",
                fix="compute statistics on a non-empty cube",
            )
        return _clean(comoment / n, constant)

    @property
    def variance(self) -> np.ndarray:
        """``(C,)`` population variance over all pixels."""
        return np.diag(self.covariance).copy()

    @property
    def correlation(self) -> np.ndarray:
        """``(C, C)`` Pearson correlation over all pixels; constant bands' rows/columns are 0."""
        return scores.correlation_from_covariance(self.covariance, self.constant_bands)

    @property
    def sum(self) -> np.ndarray:
        """``(C,)`` per-band sum over all pixels."""
        return (self.counts[:, None] * self.class_means).sum(axis=0)

    @property
    def sum_of_squares(self) -> np.ndarray:
        """``(C,)`` per-band sum of squares over all pixels."""
        return np.diag(self.gram).copy()

    @property
    def gram(self) -> np.ndarray:
        """``(C, C)`` all-pixel Gram matrix ``Σ x xᵀ`` (the sum of the class Gram matrices)."""
        mu = self.class_means
        return self.class_comoments.sum(axis=0) + (self.counts[:, None] * mu).T @ mu

    # ------------------------------------------------------------------ binary scores
    def binary_groups(self) -> tuple[tuple[int, np.ndarray, np.ndarray], tuple[int, np.ndarray, np.ndarray]]:
        """``((n0, mean0, cov0), (n1, mean1, cov1))``: class 0 against the union of labels > 0.

        Raises
        ------
        LabelError
            When class 0 or every positive class is absent; the message names the classes found.
        """
        negative = self.classes == 0
        positive = self.classes > 0
        found = f"classes {self.classes.tolist()} with counts {self.counts.tolist()}"
        if self.counts[negative].sum() == 0:
            raise LabelError(
                "negative class 0",
                expected="pixels labelled 0 (negative) in the mask",
                found=found,
                fix="use stats.one_vs_rest(label) for a mask without background",
            )
        if self.counts[positive].sum() == 0:
            raise LabelError(
                "positive class (label > 0)",
                expected="pixels labelled > 0 in the mask",
                found=found,
                fix="pass a mask with at least one positive pixel",
            )
        groups = []
        for rows in (negative, positive):
            n, mu, comoment, constant = self._pooled(rows)
            groups.append((n, mu, _clean(comoment / n, constant)))
        return groups[0], groups[1]

    def _binary_histograms(self) -> tuple[np.ndarray, np.ndarray]:
        if self.histograms is None:
            raise InputError(
                "AUC/MI",
                expected="statistics with histograms",
                found="statistics without histograms",
                fix="compute them with hist_edges=histogram_edges(...) (two passes)",
            )
        self.binary_groups()  # validates that both classes are present
        return _summed(self.histograms, self.classes == 0), _summed(self.histograms, self.classes > 0)

    @property
    def fisher(self) -> np.ndarray:
        """``(C,)`` Fisher score ``(μ1 − μ0)² / (σ1² + σ0²)``; 0 where the denominator vanishes."""
        (_, m0, c0), (_, m1, c1) = self.binary_groups()
        return scores.fisher_score(m0, np.diag(c0), m1, np.diag(c1))

    @property
    def auc(self) -> np.ndarray:
        """``(C,)`` symmetric AUC ``max(AUC, 1 − AUC)`` from the histograms (ties within a bin: ½)."""
        h0, h1 = self._binary_histograms()
        return scores.auc_from_histograms(h0, h1)

    @property
    def mi(self) -> np.ndarray:
        """``(C,)`` plug-in mutual information (nats) between the binned band and the binary label."""
        h0, h1 = self._binary_histograms()
        if self.histograms is not None and self.classes.tolist() == [0, 1]:
            return scores.mutual_information_from_histograms(self.histograms)  # already (h0, h1)
        return scores.mutual_information_from_histograms(np.stack([h0, h1]))

    def one_vs_rest(self, label: int) -> BandStatistics:
        """Binary statistics: ``label`` becomes class 1 and every other class class 0.

        Raises
        ------
        LabelError
            ``label`` is absent, or it is the only class.
        """
        self._class_index(label)
        rows = self.classes == int(label)
        if self.counts[~rows].sum() == 0:
            raise LabelError(
                f"one_vs_rest({int(label)})",
                expected="at least one other class with pixels",
                found=f"classes {self.classes.tolist()} with counts {self.counts.tolist()}",
                fix="use a mask with more than one class",
            )
        arrays = []
        for group in (~rows, rows):
            n, mu, comoment, _ = self._pooled(group)
            arrays.append(
                (
                    n,
                    mu,
                    comoment,
                    self.class_minimum[group].min(axis=0),
                    self.class_maximum[group].max(axis=0),
                    None if self.histograms is None else self.histograms[group].sum(axis=0),
                    None if self.n_clipped is None else self.n_clipped[group].sum(axis=0),
                )
            )
        stacked = list(zip(*arrays, strict=True))
        return BandStatistics(
            classes=np.array([0, 1], np.int64),
            counts=np.array(stacked[0], np.int64),
            class_means=np.stack(stacked[1]),
            class_comoments=np.stack(stacked[2]),
            class_minimum=np.stack(stacked[3]),
            class_maximum=np.stack(stacked[4]),
            hist_edges=self.hist_edges,
            histograms=None if self.histograms is None else np.stack(stacked[5]),
            n_clipped=None if self.n_clipped is None else np.stack(stacked[6]),
            n_nonfinite=self.n_nonfinite,
            n_invalid=self.n_invalid,
            laplacian_abs_sum=self.laplacian_abs_sum,
            laplacian_count=self.laplacian_count,
        )

    def __repr__(self) -> str:
        return (
            f"BandStatistics(n_bands={self.n_bands}, count={self.count}, "
            f"classes={self.classes.tolist()}, n_bins={self.n_bins}, "
            f"n_nonfinite={self.n_nonfinite}, n_invalid={self.n_invalid})"
        )


def _summed(histograms: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """The sum of the histograms of the classes in ``rows`` (a view when it is one class)."""
    chosen = np.flatnonzero(rows)
    if chosen.size == 1:  # the usual binary mask: no 2 MB copy per score
        return histograms[chosen[0]]
    return histograms[chosen].sum(axis=0)


def _clean(covariance: np.ndarray, constant: np.ndarray) -> np.ndarray:
    """Zero the rows/columns of constant bands (their rounding residue must not look like variance)."""
    out = np.array(covariance, dtype=np.float64, copy=True)
    out = 0.5 * (out + out.T)
    if constant.any():
        out[constant, :] = 0.0
        out[:, constant] = 0.0
    return out
