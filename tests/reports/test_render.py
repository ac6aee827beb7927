"""render: robust stretch on known values, composites, atomic PNG writes."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib import image as mpl_image

from bandselect.errors import DTypeError, InputError, ShapeError
from bandselect.render import composite, save_png, to_uint8_rgb


def test_stretch_maps_percentiles_to_0_and_255() -> None:
    ramp = np.linspace(0.0, 100.0, 101).reshape(101, 1)
    rgb = np.concatenate([ramp, 2.0 * ramp + 5.0, -ramp], axis=1).reshape(101, 1, 3)
    out = to_uint8_rgb(rgb, percentiles=(10, 90))
    assert out.dtype == np.uint8 and out.shape == (101, 1, 3)
    red = out[:, 0, 0]
    # 10th percentile of 0..100 is 10, 90th is 90: 10 -> 0, 50 -> 127.5 -> 128, 90 -> 255, clipped outside.
    assert red[0] == 0 and red[10] == 0 and red[90] == 255 and red[100] == 255
    assert red[50] == 128
    assert out[50, 0, 1] == 128  # affine channel, same stretch
    assert out[0, 0, 2] == 255 and out[100, 0, 2] == 0  # reversed channel


def test_constant_channel_is_zero_and_nan_never_leaks() -> None:
    rng = np.random.default_rng(0)
    rgb = rng.random((8, 8, 3))
    rgb[..., 1] = 0.7
    rgb[0, 0, 0] = np.nan
    rgb[..., 2] = np.nan
    out = to_uint8_rgb(rgb)
    assert np.all(out[..., 1] == 0)
    assert np.all(out[..., 2] == 0)
    assert out[0, 0, 0] == 0
    assert out[..., 0].max() == 255


def test_stretch_rejects_bad_input() -> None:
    with pytest.raises(ShapeError, match=r"\(H, W, 3\)"):
        to_uint8_rgb(np.zeros((4, 4)))
    with pytest.raises(InputError, match="percentiles"):
        to_uint8_rgb(np.zeros((4, 4, 3)), percentiles=(99, 1))


def test_composite_picks_bands_in_order() -> None:
    cube = np.arange(2 * 3 * 5, dtype=np.float64).reshape(2, 3, 5)
    rgb = composite(cube, (4, 0, 2))
    assert rgb.shape == (2, 3, 3) and rgb.dtype == np.float32
    np.testing.assert_array_equal(rgb[..., 0], cube[..., 4])
    np.testing.assert_array_equal(rgb[..., 1], cube[..., 0])
    np.testing.assert_array_equal(rgb[..., 2], cube[..., 2])
    with pytest.raises(InputError, match=r"\[0, 5\)"):
        composite(cube, (1, 2, 5))
    with pytest.raises(ShapeError, match="three indices"):
        composite(cube, (1, 2))


def test_save_png_round_trip_is_atomic(tmp_path) -> None:
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, size=(7, 9, 3), dtype=np.uint8)
    path = save_png(image, tmp_path / "sub" / "preview.png")
    read = mpl_image.imread(path)
    assert read.shape[:2] == (7, 9)
    np.testing.assert_array_equal(np.rint(read[..., :3] * 255).astype(np.uint8), image)
    assert [p.name for p in path.parent.iterdir()] == ["preview.png"]  # no temporary left behind
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    read_grey = mpl_image.imread(save_png(grey, tmp_path / "grey.png"))
    np.testing.assert_array_equal(np.rint(read_grey[..., 0] * 255).astype(np.uint8), grey)


def test_save_png_refuses_floats_and_keeps_previous_file(tmp_path) -> None:
    path = tmp_path / "keep.png"
    save_png(np.full((2, 2, 3), 9, dtype=np.uint8), path)
    before = path.read_bytes()
    with pytest.raises(DTypeError, match="to_uint8_rgb"):
        save_png(np.zeros((2, 2, 3)), path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.png"]
