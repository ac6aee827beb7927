"""Samplers: exact tiling covers every pixel exactly once (ragged edges too); the label rule of batches."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bandselect.errors import LabelError
from bandselect.store import ArraySource, Window, make_acquisition, open_campaign
from bandselect.training import CampaignDataModule
from bandselect.training.samplers import (
    BatchIterable,
    BatchReader,
    collate,
    row_block_windows,
    tile_windows,
)

SHAPES = [(5, 7), (9, 4), (1, 1), (8, 6)]
WAVELENGTHS = [500.0, 600.0, 700.0]


def _coded(index: int, height: int, width: int) -> np.ndarray:
    """A cube whose bands hold (acquisition, row, column): every pixel says where it comes from."""
    y, x = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    return np.stack([np.full((height, width), index), y, x], axis=-1).astype(np.float32)


def _counts(batches, shapes) -> list[np.ndarray]:
    counts = [np.zeros(shape, np.int64) for shape in shapes]
    for batch in batches:
        for pixel in batch["cube"].numpy().reshape(-1, 3).astype(np.int64):
            counts[pixel[0]][pixel[1], pixel[2]] += 1
    return counts


@pytest.mark.parametrize("patch_size", [None, (2, 3), (4, 4), (10, 10), (1, 5)])
def test_tiling_covers_every_pixel_exactly_once(patch_size: tuple[int, int] | None) -> None:
    source = ArraySource([_coded(i, *shape) for i, shape in enumerate(SHAPES)], wavelengths=WAVELENGTHS)
    windows = tile_windows(source.shapes, patch_size)
    loader = BatchIterable(windows, 3, BatchReader(source), shuffle=True, seed=4)
    batches = list(loader)
    assert len(batches) == len(loader)
    for counts, (height, width) in zip(_counts(batches, SHAPES), SHAPES, strict=True):
        assert counts.sum() == height * width
        assert (counts == 1).all()
    for batch in batches:  # a batch groups windows of one shape
        assert batch["cube"].shape[0] <= 3
    shapes = {w.shape for w in windows}
    assert len(batches) == sum(-(-sum(w.shape == s for w in windows) // 3) for s in shapes)


def test_tiling_a_store_with_ragged_edges_covers_every_pixel_once(tmp_path: Path) -> None:
    campaign = open_campaign(tmp_path / "c", create=True)
    for index, (height, width) in enumerate(SHAPES):
        campaign.append(
            make_acquisition(_coded(index, height, width), WAVELENGTHS, attrs={"name": f"s{index}"}),
            chunk_yx=(3, 4),
        )
    ids = campaign.ids()  # sorted by id: the order of the coded acquisition index differs
    dm = CampaignDataModule(tmp_path / "c", acquisitions=ids[:3], val_acquisitions=ids[3:], patch_size=(4, 3))
    assert dm.source.ids == ids and not dm.use_mask
    coded = {i: int(campaign.open(i)["cube"][0, 0, 0]) for i in ids}
    for split, loader in ((ids[:3], dm.train_dataloader()), (ids[3:], dm.val_dataloader())):
        counts = _counts(loader, SHAPES)
        for acquisition in ids:
            expected = 1 if acquisition in split else 0
            assert (counts[coded[acquisition]] == expected).all()


def test_row_blocks_tile_a_row_region_exactly() -> None:
    windows = row_block_windows(SHAPES, (0.2, 0.8), 2)
    for index, (height, width) in enumerate(SHAPES):
        covered = np.zeros((height, width), np.int64)
        for w in windows:
            if w.acquisition == index:
                covered[w.y0 : w.y1, w.x0 : w.x1] += 1
        y0, y1 = round(height * 0.2), round(height * 0.8)
        assert (covered[y0:y1] == 1).all() and covered.sum() == (y1 - y0) * width


def test_the_batch_reader_applies_the_label_rule_once() -> None:
    labels = np.array([[0, 1, 2], [2, 2, 0]], np.uint8)
    source = ArraySource([np.ones((2, 3, 1), np.float32)], [labels], wavelengths=[500.0])
    window = [Window(0, 0, 2, 0, 3)]
    assert collate(source, window)["mask"][0, ..., 0].numpy().tolist() == (labels > 0).tolist()
    assert (
        collate(source, window, positive_label=2)["mask"][0, ..., 0].numpy().tolist()
        == (labels == 2).tolist()
    )
    assert "mask" not in collate(source, window, with_mask=False)
    unlabelled = ArraySource([np.ones((2, 3, 1), np.float32)], wavelengths=[500.0])
    with pytest.raises(LabelError, match=r"acquisition '0'.*a label mask"):
        collate(unlabelled, window, with_mask=True)
    booleans = ArraySource([np.ones((2, 3, 1), np.float32)], [labels > 0], wavelengths=[500.0])
    with pytest.raises(LabelError, match="positive_label=2"):
        collate(booleans, window, positive_label=2)
