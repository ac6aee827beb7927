"""Spatial train/test splits: whole blocks of the scene go to one side, never single pixels.

Neighbouring pixels are strongly correlated in hyperspectral scenes, so a random pixel split lets a
model see near-copies of its test pixels; splitting by contiguous blocks gives an honest held-out
measure.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal, NamedTuple

import numpy as np

from bandselect.errors import ConfigError, LabelError, ShapeError

__all__ = ["SpatialSplit", "block_grid", "half_split", "spatial_block_split"]


class SpatialSplit(NamedTuple):
    """Boolean ``(H, W)`` masks; disjoint, and together they cover the scene."""

    train: np.ndarray
    test: np.ndarray


def _positive_pair(value: object, what: str) -> tuple[int, int]:
    pair = tuple(int(v) for v in np.atleast_1d(np.asarray(value)).reshape(-1))
    if len(pair) == 1:
        pair = (pair[0], pair[0])
    if len(pair) != 2 or min(pair) < 1:
        raise ConfigError(
            what,
            expected="a positive int or a pair (rows, columns)",
            found=repr(value),
            fix=f"pass {what}=(4, 4)",
        )
    return pair  # type: ignore[return-value]


def block_grid(
    height: int,
    width: int,
    *,
    n_blocks: int | Sequence[int] | None = (4, 4),
    block_size: int | Sequence[int] | None = None,
) -> np.ndarray:
    """Label each pixel with the id of its contiguous rectangular block.

    Parameters
    ----------
    height, width
        Scene size in pixels.
    n_blocks
        ``(rows, columns)`` of the grid; rows and columns split as evenly as possible (sizes differ by
        at most one pixel). Ignored when ``block_size`` is given.
    block_size
        ``(block_height, block_width)`` in pixels; the last row/column of blocks holds the remainder.

    Returns
    -------
    numpy.ndarray
        ``(H, W)`` int64 block ids, ``0 .. n_blocks-1`` in row-major order.

    Raises
    ------
    ConfigError
        A grid finer than the scene, or malformed sizes.
    """
    height, width = int(height), int(width)
    if height < 1 or width < 1:
        raise ShapeError(
            "scene", expected="height, width >= 1", found=(height, width), fix="pass the cube's H, W"
        )
    if block_size is not None:
        block_height, block_width = _positive_pair(block_size, "block_size")
        rows, columns = math.ceil(height / block_height), math.ceil(width / block_width)
        row_of = np.minimum(np.arange(height) // block_height, rows - 1)
        column_of = np.minimum(np.arange(width) // block_width, columns - 1)
    else:
        if n_blocks is None:
            raise ConfigError(
                "block grid", expected="n_blocks or block_size", found="neither", fix="pass n_blocks=(4, 4)"
            )
        rows, columns = _positive_pair(n_blocks, "n_blocks")
        if rows > height or columns > width:
            raise ConfigError(
                "n_blocks",
                expected=f"at most (height, width) = ({height}, {width}) blocks",
                found=(rows, columns),
                fix="use fewer blocks",
            )
        row_of = (np.arange(height) * rows) // height
        column_of = (np.arange(width) * columns) // width
    return (row_of[:, None] * columns + column_of[None, :]).astype(np.int64)


def _label_image(mask: np.ndarray, shape: tuple[int, int], what: str = "mask") -> np.ndarray:
    """``mask`` as an ``(H, W)`` label array (a trailing axis of 1 dropped), checked against ``shape``."""
    labels = np.asarray(mask)
    if labels.ndim == 3 and labels.shape[2] == 1:
        labels = labels[..., 0]
    if labels.shape != shape:
        raise ShapeError(
            what,
            expected=f"shape {shape} (one label per pixel)",
            found=f"shape {labels.shape}",
            fix="pass (H, W)",
        )
    return labels


def _binary_labels(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    return _label_image(mask, shape) > 0


def _choose_test_blocks(
    blocks_with_positive: np.ndarray, blocks_with_negative: np.ndarray, n_test: int, rng: np.random.Generator
) -> np.ndarray | None:
    """Uniformly draw ``n_test`` blocks among the draws leaving both classes on both sides.

    Blocks are of three kinds: both classes, positive only, negative only. Whether a draw is valid
    depends only on how many blocks of each kind it takes, so enumerate those counts, weight each by
    its number of draws, pick one, then pick blocks of each kind at random. Returns ``None`` when no
    valid draw exists.
    """
    both = np.flatnonzero(blocks_with_positive & blocks_with_negative)
    positive_only = np.flatnonzero(blocks_with_positive & ~blocks_with_negative)
    negative_only = np.flatnonzero(~blocks_with_positive & blocks_with_negative)
    sizes = (both.size, positive_only.size, negative_only.size)

    def has_both(counts: tuple[int, int, int]) -> bool:
        return counts[0] > 0 or (counts[1] > 0 and counts[2] > 0)

    options: list[tuple[int, int, int]] = []
    weights: list[int] = []
    for take_both in range(min(sizes[0], n_test) + 1):
        for take_positive in range(min(sizes[1], n_test - take_both) + 1):
            take_negative = n_test - take_both - take_positive
            if take_negative > sizes[2]:
                continue
            test_counts = (take_both, take_positive, take_negative)
            train_counts = (sizes[0] - take_both, sizes[1] - take_positive, sizes[2] - take_negative)
            if has_both(test_counts) and has_both(train_counts):
                options.append(test_counts)
                weights.append(
                    math.comb(sizes[0], take_both)
                    * math.comb(sizes[1], take_positive)
                    * math.comb(sizes[2], take_negative)
                )
    if not options:
        return None
    total = sum(weights)
    choice = options[int(rng.choice(len(options), p=[weight / total for weight in weights]))]
    groups = (both, positive_only, negative_only)
    return np.concatenate(
        [rng.choice(group, size=count, replace=False) for group, count in zip(groups, choice, strict=True)]
    ).astype(np.int64)


def spatial_block_split(
    height: int,
    width: int,
    *,
    n_blocks: int | Sequence[int] | None = (4, 4),
    block_size: int | Sequence[int] | None = None,
    test_fraction: float = 0.25,
    seed: int = 0,
    mask: np.ndarray | None = None,
) -> SpatialSplit:
    """Split a scene into train and test parts made of whole contiguous blocks.

    Parameters
    ----------
    height, width
        Scene size in pixels.
    n_blocks, block_size
        The block grid, see :func:`block_grid`.
    test_fraction
        Fraction of blocks (not pixels) assigned to test, rounded, and at least one block on each side.
    seed
        Seed of the block draw.
    mask
        Optional ``(H, W)`` labels (``> 0`` is positive). When given, the draw is uniform among the
        block assignments that leave both classes in both parts.

    Returns
    -------
    SpatialSplit
        ``(train, test)`` boolean ``(H, W)`` masks, disjoint and covering the scene.

    Raises
    ------
    ConfigError
        ``test_fraction`` outside ``(0, 1)`` or fewer than two blocks.
    LabelError
        ``mask`` has a single class, or its positives (negatives) are so concentrated that no
        block assignment puts both classes on both sides; the message says how many blocks hold each.
    """
    if not 0.0 < float(test_fraction) < 1.0:
        raise ConfigError(
            "test_fraction",
            expected="a value in (0, 1)",
            found=test_fraction,
            fix="pass e.g. test_fraction=0.25",
        )
    blocks = block_grid(height, width, n_blocks=n_blocks, block_size=block_size)
    count = int(blocks.max()) + 1
    if count < 2:
        raise ConfigError(
            "block grid",
            expected="at least 2 blocks",
            found=f"{count} block",
            fix="use n_blocks=(4, 4) or smaller blocks",
        )
    n_test = min(max(round(float(test_fraction) * count), 1), count - 1)
    rng = np.random.default_rng(seed)
    if mask is None:
        test_blocks = rng.choice(count, size=n_test, replace=False)
    else:
        positive = _binary_labels(mask, blocks.shape)
        if positive.all() or not positive.any():
            raise LabelError(
                "mask",
                expected="both classes (positive > 0 and negative 0)",
                found=f"only {'positive' if positive.all() else 'negative'} pixels",
                fix="pass a labelled scene with both classes, or split without mask=",
            )
        positives_per_block = np.bincount(blocks.ravel(), weights=positive.ravel(), minlength=count)
        pixels_per_block = np.bincount(blocks.ravel(), minlength=count)
        with_positive = positives_per_block > 0
        with_negative = positives_per_block < pixels_per_block
        chosen = _choose_test_blocks(with_positive, with_negative, n_test, rng)
        if chosen is None:
            raise LabelError(
                "mask",
                expected=f"a split of {count} blocks ({n_test} test) with both classes in train and in test",
                found=(
                    f"positives in {int(with_positive.sum())} block(s) and negatives in "
                    f"{int(with_negative.sum())} block(s); no assignment keeps both classes on both sides"
                ),
                fix="use more (smaller) blocks, change test_fraction, or cross-validate over pixels",
            )
        test_blocks = chosen
    test = np.isin(blocks, test_blocks)
    return SpatialSplit(train=~test, test=test)


def half_split(height: int, width: int, axis: Literal[0, 1, "y", "x"] = 0) -> SpatialSplit:
    """Split a scene into two halves: first half (top or left) for training, second for testing.

    Parameters
    ----------
    height, width
        Scene size in pixels.
    axis
        ``0`` / ``"y"``: top and bottom halves; ``1`` / ``"x"``: left and right halves.

    Returns
    -------
    SpatialSplit
        ``(train, test)`` boolean ``(H, W)`` masks; the train half holds ``floor(n / 2)`` rows/columns.

    Raises
    ------
    ConfigError
        An unknown axis, or a side of fewer than two pixels along it.
    """
    axes = {0: 0, 1: 1, "y": 0, "x": 1}
    if axis not in axes:
        raise ConfigError(
            "axis", expected="0, 1, 'y' or 'x'", found=repr(axis), fix="pass axis='y' or axis='x'"
        )
    along = axes[axis]
    size = (int(height), int(width))[along]
    if size < 2:
        raise ConfigError(
            "half_split",
            expected="at least 2 pixels along the split axis",
            found=size,
            fix="split the other axis",
        )
    train = np.zeros((int(height), int(width)), dtype=bool)
    if along == 0:
        train[: size // 2, :] = True
    else:
        train[:, : size // 2] = True
    return SpatialSplit(train=train, test=~train)
