"""Band stability: how reproducible is a selection when the data is resampled?

The data is bootstrapped by **spatial blocks** of one scene (blocks drawn with replacement) or by
**acquisitions** of a campaign (acquisitions drawn with replacement); the selector runs on every
resample. We report how often each band is chosen and flag the selection as *unstable* when either

* the mean pairwise consistency of the bootstrap selections (Kuncheva's index with a ±``tolerance_bands``
  neighbour tolerance, see :func:`consistency_index`) is below ``similarity_threshold`` (default 0.5:
  on average less than half of the overlap beyond chance), or
* the full-data picks are reproduced (within ±``tolerance_bands``) in fewer than
  ``reproducibility_threshold`` (default 50 %) of the resamples on average.

Neighbouring bands of a hyperspectral sensor are nearly interchangeable, so by default a pick one
band away counts as the same pick (``tolerance_bands=1``); pass ``0`` for exact matching.

How a resample is assembled: the drawn pieces (blocks or acquisitions) are stacked along ``y`` when
they all have the same width, which keeps the spatial structure inside each piece; otherwise every
piece is flattened and the pixels are stacked into an ``(N, 1, C)`` cube. Statistical selectors see
the same pixel populations either way.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from bandselect.errors import ConfigError, InputError, LabelError, ShapeError
from bandselect.evaluation.split import _label_image, block_grid
from bandselect.spectral import validate_wavelengths

__all__ = ["SelectFunction", "StabilityResult", "band_stability", "consistency_index", "tolerant_matches"]

#: ``select_fn(cube (H, W, C), mask (H, W), wavelengths_nm (C,)) -> band indices (k,)``.
SelectFunction = Callable[[np.ndarray, np.ndarray, np.ndarray], Sequence[int] | np.ndarray]

DEFAULT_SIMILARITY_THRESHOLD = 0.5
DEFAULT_REPRODUCIBILITY_THRESHOLD = 0.5
DEFAULT_TOLERANCE_BANDS = 1


@dataclass(frozen=True)
class StabilityResult:
    """Outcome of :func:`band_stability`.

    Attributes
    ----------
    frequency
        ``(C,)`` fraction of resamples in which each band was chosen (exact band, no tolerance).
    selections
        ``(n_bootstrap, k)`` the sorted selection of every resample.
    selected
        ``(k,)`` the selection on the full data, in the order ``select_fn`` returned it.
    unstable
        The flag, see the module documentation.
    score
        Mean pairwise tolerant Kuncheva index of the bootstrap selections (1 identical, ~0 chance).
    pick_reproducibility
        ``(k,)`` fraction of resamples holding each full-data pick within ±``tolerance_bands``.
    tolerance_bands, similarity_threshold, reproducibility_threshold
        The settings the flag was computed with.
    reason
        One line explaining the flag, for plots and reports.
    """

    frequency: np.ndarray
    selections: np.ndarray
    selected: np.ndarray
    unstable: bool
    score: float
    pick_reproducibility: np.ndarray
    tolerance_bands: int
    similarity_threshold: float
    reproducibility_threshold: float
    reason: str


def tolerant_matches(first: np.ndarray, second: np.ndarray, tolerance_bands: int) -> int:
    """Largest one-to-one matching of two band sets where matched bands differ by ≤ ``tolerance_bands``.

    On a line, scanning both sorted sets and matching greedily is optimal.
    """
    a, b = np.sort(np.asarray(first)), np.sort(np.asarray(second))
    i = j = matches = 0
    while i < a.size and j < b.size:
        if abs(int(a[i]) - int(b[j])) <= tolerance_bands:
            matches += 1
            i += 1
            j += 1
        elif a[i] < b[j]:
            i += 1
        else:
            j += 1
    return matches


def consistency_index(first: np.ndarray, second: np.ndarray, n_bands: int, tolerance_bands: int = 0) -> float:
    """Kuncheva's consistency index of two ``k``-band selections, with a neighbour tolerance.

    ``(r - E) / (k - E)`` where ``r`` is the number of matched bands (:func:`tolerant_matches`) and
    ``E = k · min(1, k (2t + 1) / C)`` the matches expected by chance for a tolerance of ``t`` bands
    (edge effects ignored). With ``t = 0`` this is Kuncheva's index ``(r C - k²) / (k (C - k))``:
    1 for identical selections, about 0 for independent random ones, negative below chance.

    Raises
    ------
    ConfigError
        The selections differ in size, or ``k`` and the tolerance leave no room for chance agreement
        below ``k`` (e.g. ``k == C``).
    """
    k = int(np.asarray(first).size)
    if int(np.asarray(second).size) != k:
        raise ConfigError(
            "selections",
            expected="selections of equal size",
            found=(k, int(np.asarray(second).size)),
            fix="make select_fn return the same number of bands every time",
        )
    expected = k * min(1.0, k * (2 * tolerance_bands + 1) / n_bands)
    if expected >= k:
        raise ConfigError(
            "stability index",
            expected=f"k·(2·tolerance+1) < C, here {k}·{2 * tolerance_bands + 1} < {n_bands}",
            found=f"k={k}, tolerance_bands={tolerance_bands}, C={n_bands}",
            fix="lower tolerance_bands (or select fewer bands): any selection would agree by chance",
        )
    return float((tolerant_matches(first, second, tolerance_bands) - expected) / (k - expected))


def _check_selection(indices: object, n_bands: int, k: int | None, where: str) -> np.ndarray:
    array = np.asarray(indices).reshape(-1)
    if array.size == 0 or not np.issubdtype(array.dtype, np.integer):
        raise InputError(
            f"select_fn result ({where})",
            expected="a non-empty sequence of integer band indices",
            found=repr(array.tolist()),
            fix="return e.g. selector.selected_indices as a NumPy int array",
        )
    if array.min() < 0 or array.max() >= n_bands or np.unique(array).size != array.size:
        raise InputError(
            f"select_fn result ({where})",
            expected=f"distinct indices in [0, {n_bands})",
            found=array.tolist(),
            fix="return band indices, not wavelengths, without repeats",
        )
    if k is not None and array.size != k:
        raise InputError(
            f"select_fn result ({where})",
            expected=f"{k} bands, as on the full data",
            found=f"{array.size} bands",
            fix="make select_fn return a fixed number of bands",
        )
    return array.astype(np.int64)


def _pieces_from_blocks(
    cube: np.ndarray,
    mask: np.ndarray,
    n_blocks: int | Sequence[int] | None,
    block_size: int | Sequence[int] | None,
) -> list[tuple[np.ndarray, np.ndarray]]:
    blocks = block_grid(cube.shape[0], cube.shape[1], n_blocks=n_blocks, block_size=block_size)
    pieces = []
    for block in range(int(blocks.max()) + 1):
        rows, columns = np.nonzero(blocks == block)
        window = (slice(rows.min(), rows.max() + 1), slice(columns.min(), columns.max() + 1))
        pieces.append((cube[window], mask[window]))
    return pieces


def _assemble(pieces: Sequence[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    if len({piece.shape[1] for piece, _ in pieces}) == 1:
        return (
            np.concatenate([piece for piece, _ in pieces], axis=0),
            np.concatenate([labels for _, labels in pieces], axis=0),
        )
    n_bands = pieces[0][0].shape[2]
    return (
        np.concatenate([piece.reshape(-1, 1, n_bands) for piece, _ in pieces], axis=0),
        np.concatenate([labels.reshape(-1, 1) for _, labels in pieces], axis=0),
    )


def band_stability(
    select_fn: SelectFunction,
    data: np.ndarray | Sequence[tuple[np.ndarray, np.ndarray]],
    mask: np.ndarray | None = None,
    wavelengths: Sequence[float] | np.ndarray | None = None,
    *,
    n_bootstrap: int = 30,
    n_blocks: int | Sequence[int] | None = (4, 4),
    block_size: int | Sequence[int] | None = None,
    seed: int = 0,
    tolerance_bands: int = DEFAULT_TOLERANCE_BANDS,
    similarity_threshold: float = DEFAULT_SIMILARITY_THRESHOLD,
    reproducibility_threshold: float = DEFAULT_REPRODUCIBILITY_THRESHOLD,
    max_redraws: int = 100,
    ignore_label: int | None = None,
) -> StabilityResult:
    """Bootstrap a selector over spatial blocks or acquisitions and measure how stable its picks are.

    Parameters
    ----------
    select_fn
        ``select_fn(cube, mask, wavelengths_nm) -> indices``; any selector fits, e.g.
        ``lambda c, m, w: SupervisedFullSpectrumBandSelector(k=3).fit(c, m, w).selected_indices``.
        It must return the same number of bands on every call.
    data
        One ``(H, W, C)`` cube (bootstrap over its spatial blocks; pass ``mask``), or a sequence of at
        least two ``(cube, mask)`` acquisitions with the same ``C`` (bootstrap over acquisitions).
    mask
        ``(H, W)`` labels of the single cube; must be ``None`` with acquisitions.
    wavelengths
        ``(C,)`` band centres in nm, passed to ``select_fn``.
    n_bootstrap
        Number of resamples (``>= 2``).
    n_blocks, block_size
        Block grid of the single-cube mode, see :func:`bandselect.evaluation.block_grid`.
    seed
        Seed of the resampling.
    tolerance_bands
        Picks within this many bands of each other count as the same pick (default 1).
    similarity_threshold
        Flag when the mean pairwise tolerant Kuncheva index is below this (default 0.5).
    reproducibility_threshold
        Flag when the full-data picks are found in fewer than this fraction of resamples on average
        (default 0.5).
    max_redraws
        A resample whose labels hold fewer classes than the full data is drawn again, at most this many
        times in total.
    ignore_label
        A label that is no class (pixels that count nowhere, given to ``select_fn`` as they are): a
        resample need not hold it.

    Returns
    -------
    StabilityResult

    Raises
    ------
    ConfigError
        Bad settings (fewer than 2 resamples or acquisitions, a tolerance too wide for ``k``).
    LabelError
        Resamples keep missing a class (labels concentrated in too few blocks).
    ShapeError, InputError
        Mismatched shapes, or ``select_fn`` returned invalid or varying-size selections.
    """
    if int(n_bootstrap) < 2:
        raise ConfigError(
            "n_bootstrap", expected="an integer >= 2", found=n_bootstrap, fix="pass n_bootstrap=30"
        )
    if int(tolerance_bands) < 0:
        raise ConfigError("tolerance_bands", expected=">= 0", found=tolerance_bands, fix="pass 0 or 1")
    if isinstance(data, np.ndarray):
        cube = data
        if cube.ndim != 3:
            raise ShapeError(
                "cube", expected="(H, W, C)", found=f"shape {cube.shape}", fix="pass one acquisition"
            )
        if mask is None:
            raise LabelError("mask", expected="(H, W) labels of the cube", found="None", fix="pass mask=")
        labels = _label_image(mask, cube.shape[:2], "mask")
        pieces = _pieces_from_blocks(cube, labels, n_blocks, block_size)
        full_cube, full_mask = cube, labels
    else:
        if mask is not None:
            raise InputError(
                "mask",
                expected="None when data is a sequence of (cube, mask) acquisitions",
                found="a mask",
                fix="put each acquisition's mask in its (cube, mask) pair",
            )
        pieces = []
        for number, pair in enumerate(data):
            piece_cube, piece_mask = np.asarray(pair[0]), pair[1]
            if piece_cube.ndim != 3:
                raise ShapeError(
                    f"acquisition {number} cube",
                    expected="(H, W, C)",
                    found=f"shape {piece_cube.shape}",
                    fix="pass cubes",
                )
            pieces.append(
                (piece_cube, _label_image(piece_mask, piece_cube.shape[:2], f"acquisition {number} mask"))
            )
        if len(pieces) < 2:
            raise ConfigError(
                "acquisitions",
                expected="at least 2 (cube, mask) pairs",
                found=len(pieces),
                fix="pass one cube and its mask to bootstrap over spatial blocks instead",
            )
        if len({piece.shape[2] for piece, _ in pieces}) != 1:
            raise ShapeError(
                "acquisitions",
                expected="the same band count in every cube",
                found=sorted({piece.shape[2] for piece, _ in pieces}),
                fix="resample the acquisitions onto the campaign's wavelengths",
            )
        full_cube, full_mask = _assemble(pieces)
    n_bands = full_cube.shape[-1]
    wavelengths_nm = validate_wavelengths(
        wavelengths if wavelengths is not None else np.arange(n_bands, dtype=np.float64), n_bands
    )

    def classes(labels: np.ndarray) -> int:
        present = np.unique(labels)
        return int(present.size if ignore_label is None else np.count_nonzero(present != ignore_label))

    n_classes = classes(full_mask)

    selected = _check_selection(select_fn(full_cube, full_mask, wavelengths_nm), n_bands, None, "full data")
    k = selected.size
    rng = np.random.default_rng(seed)
    selections = []
    redraws = 0
    while len(selections) < int(n_bootstrap):
        drawn = rng.integers(0, len(pieces), size=len(pieces))
        resample_cube, resample_mask = _assemble([pieces[i] for i in drawn])
        if classes(resample_mask) < n_classes:
            redraws += 1
            if redraws > max_redraws:
                raise LabelError(
                    "mask",
                    expected="resamples that keep every class",
                    found=f"{redraws} resamples missing a class; labels sit in too few blocks/acquisitions",
                    fix="use more, smaller blocks (block_size=...) or more acquisitions",
                )
            continue
        picks = select_fn(resample_cube, resample_mask, wavelengths_nm)
        selections.append(np.sort(_check_selection(picks, n_bands, k, f"resample {len(selections)}")))
    selection_matrix = np.stack(selections)

    frequency = np.bincount(selection_matrix.ravel(), minlength=n_bands) / selection_matrix.shape[0]
    pairs = itertools.combinations(range(selection_matrix.shape[0]), 2)
    score = float(
        np.mean(
            [
                consistency_index(selection_matrix[a], selection_matrix[b], n_bands, tolerance_bands)
                for a, b in pairs
            ]
        )
    )
    distances = np.abs(selection_matrix[:, None, :] - selected[None, :, None])  # (resample, pick, band)
    pick_reproducibility = (distances.min(axis=2) <= tolerance_bands).mean(axis=0)
    reproduced = float(pick_reproducibility.mean())
    low_similarity = score < similarity_threshold
    low_reproducibility = reproduced < reproducibility_threshold
    unstable = bool(low_similarity or low_reproducibility)
    tolerance = f"±{tolerance_bands} band" + ("s" if tolerance_bands != 1 else "")
    similarity_sign = "<" if low_similarity else "≥"
    reproducibility_sign = "<" if low_reproducibility else "≥"
    reason = (
        f"mean pairwise Kuncheva index {score:.2f} {similarity_sign} {similarity_threshold:.2f}; "
        f"full-data picks reproduced in {100 * reproduced:.0f}% of {selection_matrix.shape[0]} resamples "
        f"({reproducibility_sign} {100 * reproducibility_threshold:.0f}%), tolerance {tolerance}"
    )
    return StabilityResult(
        frequency=frequency,
        selections=selection_matrix,
        selected=selected,
        unstable=unstable,
        score=score,
        pick_reproducibility=pick_reproducibility,
        tolerance_bands=int(tolerance_bands),
        similarity_threshold=float(similarity_threshold),
        reproducibility_threshold=float(reproducibility_threshold),
        reason=reason,
    )
