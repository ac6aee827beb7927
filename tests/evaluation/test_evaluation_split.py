"""Spatial splits: whole contiguous blocks, no overlap, both classes on both sides when possible."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from bandselect.errors import ConfigError, LabelError
from bandselect.evaluation import block_grid, half_split, spatial_block_split


def test_block_grid_is_contiguous_rectangles() -> None:
    blocks = block_grid(10, 13, n_blocks=(3, 4))
    assert blocks.shape == (10, 13) and set(np.unique(blocks)) == set(range(12))
    for block in range(12):
        rows, columns = np.nonzero(blocks == block)
        # a rectangle: its bounding box is full
        assert rows.size == (rows.max() - rows.min() + 1) * (columns.max() - columns.min() + 1)
    sizes = np.bincount(blocks.ravel())
    assert sizes.max() - sizes.min() <= 4 + 3 + 1  # rows 3-4 px, columns 3-4 px
    sized = block_grid(10, 13, block_size=(4, 5))
    assert int(sized.max()) + 1 == 3 * 3 and np.count_nonzero(sized == 0) == 20


def test_split_has_no_overlap_and_is_made_of_whole_blocks() -> None:
    train, test = spatial_block_split(40, 40, n_blocks=(4, 4), test_fraction=0.25, seed=3)
    assert train.dtype == bool and train.shape == (40, 40)
    assert not np.any(train & test) and np.all(train | test)
    blocks = block_grid(40, 40, n_blocks=(4, 4))
    test_blocks = np.unique(blocks[test])
    assert test_blocks.size == 4 and np.count_nonzero(test) == 4 * 100
    for block in range(16):  # every block lies wholly on one side
        assert np.all(test[blocks == block]) or not np.any(test[blocks == block])
    labelled, _ = ndimage.label(test)
    for component in range(1, labelled.max() + 1):  # test regions are unions of 10x10 squares
        assert np.count_nonzero(labelled == component) % 100 == 0
    again = spatial_block_split(40, 40, n_blocks=(4, 4), test_fraction=0.25, seed=3)
    np.testing.assert_array_equal(again.test, test)
    other = spatial_block_split(40, 40, n_blocks=(4, 4), test_fraction=0.25, seed=4)
    assert not np.array_equal(other.test, test)


def test_split_keeps_both_classes_on_both_sides() -> None:
    mask = np.zeros((40, 40), dtype=np.int32)
    mask[2, 2] = 1  # block 0
    mask[35, 35] = 1  # block 15
    for seed in range(40):
        train, test = spatial_block_split(40, 40, n_blocks=(4, 4), test_fraction=0.25, seed=seed, mask=mask)
        assert mask[train].any() and mask[test].any()
        assert (mask[train] == 0).any() and (mask[test] == 0).any()


def test_split_explains_when_impossible() -> None:
    mask = np.zeros((40, 40), dtype=bool)
    mask[:3, :3] = True  # all positives in a single block
    with pytest.raises(LabelError, match=r"positives in 1 block\(s\)"):
        spatial_block_split(40, 40, n_blocks=(4, 4), mask=mask)
    with pytest.raises(LabelError, match="only negative"):
        spatial_block_split(40, 40, mask=np.zeros((40, 40)))
    with pytest.raises(ConfigError, match="test_fraction"):
        spatial_block_split(40, 40, test_fraction=1.0)


def test_half_split() -> None:
    train, test = half_split(5, 8, axis="y")
    assert train[:2].all() and not train[2:].any() and np.array_equal(test, ~train)
    train, test = half_split(5, 8, axis=1)
    assert train[:, :4].all() and test[:, 4:].all() and not np.any(train & test)
    with pytest.raises(ConfigError, match="axis"):
        half_split(5, 8, axis=2)  # type: ignore[arg-type]
