"""Ingest plausibility: every header error names its field, wavelengths must be physical (200–25,000 nm)
in the units the source states, data files must have the size their header says, labels must be
unambiguous, and a long --wavelengths list is a list. Each failure is typed, names expected / found / fix,
and writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from store_helpers import edit_header, grid, small_cube

from bandselect.errors import BandSelectError, DTypeError, FileFormatError, LabelError, WavelengthError
from bandselect.names import ATTR_INGEST_WARNINGS, VAR_CUBE
from bandselect.store import ingest, open_campaign, open_source, parse_wavelengths
from bandselect.store.units import PHYSICAL_RANGE_NM, convert_wavelengths

WriteEnvi = Callable[..., Path]
WAVELENGTHS = {"wavelength": list(grid()), "wavelength units": "nm"}


def _fails_cleanly(
    paths: list[Path], store: Path, error: type[BandSelectError], match: str, **options: object
) -> str:
    with pytest.raises(error, match=match) as raised:
        ingest(paths, store, **options)  # type: ignore[arg-type]
    message = str(raised.value)
    assert "expected" in message and "found" in message and "Fix:" in message, message
    assert not store.exists()  # nothing written, not even the store
    return message


@pytest.mark.parametrize(
    ("remove", "set_lines", "error", "match"),
    [
        (
            (),
            {"byte order": "7"},
            FileFormatError,
            r"'byte order'.*expected 0 \(little-endian.*found byte order = '7'",
        ),
        (("lines",), {}, FileFormatError, r"'lines'.*no such line.*add the line 'lines = N'"),
        ((), {"samples": "0"}, FileFormatError, r"'samples'.*positive integer.*samples = '0'"),
        ((), {"bands": "five"}, FileFormatError, r"'bands'.*bands = 'five'"),
        ((), {"data type": "7"}, DTypeError, r"'data type'.*data type = '7'"),
        ((), {"data type": "6"}, DTypeError, r"complex"),
        (
            ("interleave",),
            {},
            FileFormatError,
            r"'interleave'.*no such line.*add the line 'interleave = bsq'",
        ),
        ((), {"interleave": "bpi"}, FileFormatError, r"'interleave'.*bil, bip or bsq.*'bpi'"),
        ((), {"header offset": "-3"}, FileFormatError, r"'header offset'.*'-3'"),
        ((), {"file compression": "1"}, FileFormatError, r"'file compression'.*uncompressed"),
        ((), {"bbl": "{1, 1, 0}"}, FileFormatError, r"'bbl'.*5 values.*found 3 values"),
        ((), {"bbl": "{0, 0, 0, 0, 0}"}, FileFormatError, r"'bbl'.*every band marked bad"),
        ((), {"data ignore value": "none"}, FileFormatError, r"'data ignore value'.*a number"),
        ((), {"major frame offsets": "{0, 12}"}, FileFormatError, r"'major frame offsets'"),
    ],
)
def test_each_header_error_names_its_field(
    write_envi: WriteEnvi,
    tmp_path: Path,
    remove: tuple[str, ...],
    set_lines: dict[str, str],
    error: type[BandSelectError],
    match: str,
) -> None:
    header = write_envi(small_cube(), metadata=WAVELENGTHS)
    edit_header(header, remove=remove, set_lines=set_lines)
    message = _fails_cleanly([header], tmp_path / "c.zarr", error, match)
    assert "repair the header (it must start with the line 'ENVI')" not in message  # the seed's wrong fix


def test_header_that_is_not_envi_or_has_an_unclosed_list(write_envi: WriteEnvi, tmp_path: Path) -> None:
    header = write_envi(small_cube(), metadata=WAVELENGTHS)
    text = header.read_text()
    header.write_text(text.replace("ENVI\n", "ENVY\n", 1))
    _fails_cleanly(
        [header], tmp_path / "c.zarr", FileFormatError, r"first line 'ENVY'.*make 'ENVI' its first line"
    )
    header.write_text(text.replace("}", ""))
    _fails_cleanly([header], tmp_path / "c.zarr", FileFormatError, r"'wavelength'.*never closed.*close the")


def test_a_header_without_byte_order_is_not_an_error(write_envi: WriteEnvi, tmp_path: Path) -> None:
    """The seed's first report: a PlantCV header without 'byte order' was rejected with exit 2."""
    header = edit_header(write_envi(small_cube(), metadata=WAVELENGTHS), remove=["byte order"])
    with pytest.warns(UserWarning, match="ENVI default"):
        [acquisition_id] = ingest([header], tmp_path / "c.zarr")
    dataset = open_campaign(tmp_path / "c.zarr").open(acquisition_id)
    np.testing.assert_array_equal(dataset[VAR_CUBE].values, small_cube().astype(np.float32))
    assert len(dataset.attrs[ATTR_INGEST_WARNINGS]) == 1


def test_data_file_sizes_name_both_numbers(write_envi: WriteEnvi, tmp_path: Path) -> None:
    header = write_envi(small_cube(9, 7, 5), metadata=WAVELENGTHS)
    data = header.with_suffix(".raw")
    original = data.read_bytes()
    plane = 9 * 7 * 2
    edit_header(header, set_lines={"bands": "6"})  # the header claims a band the file does not have
    header.write_text(header.read_text().replace("wavelength = {", "wavelength = { 440,", 1))
    message = _fails_cleanly([header], tmp_path / "c.zarr", FileFormatError, "truncated")
    assert f"expected {plane * 6} bytes" in message and f"found {plane * 5} bytes" in message
    assert "the size of 5 bands" in message
    edit_header(header, set_lines={"bands": "5"})
    header.write_text(header.read_text().replace("wavelength = { 440,", "wavelength = {", 1))
    data.write_bytes(original + b"\0" * plane)  # one band more than the header says
    message = _fails_cleanly([header], tmp_path / "c.zarr", FileFormatError, "more than the header describes")
    assert f"expected {plane * 5} bytes" in message and f"found {plane * 6} bytes" in message
    assert "the size of 6 bands" in message and "--allow-trailing-bytes" in message
    with pytest.warns(UserWarning, match="ignored"):
        [acquisition_id] = ingest([header], tmp_path / "c.zarr", allow_trailing_bytes=True)
    dataset = open_campaign(tmp_path / "c.zarr").open(acquisition_id)
    np.testing.assert_array_equal(dataset[VAR_CUBE].values, small_cube(9, 7, 5).astype(np.float32))
    assert f"{plane} bytes after the image data" in dataset.attrs[ATTR_INGEST_WARNINGS][0]


@pytest.mark.parametrize(
    ("values", "units", "match"),
    [
        # The cases: nm values under "Micrometers" would store 366,551–1,048,421 nm.
        (np.linspace(366.551, 1048.421, 5), "Micrometers", r"366,551–1,048,421 nm.*look like nm"),
        (np.linspace(0.4, 0.9, 5), "Nanometers", r"0\.4–0\.9 nm.*look like µm"),
        ([-450.0, 460, 470, 480, 490], "nm", r"negative values \(the first at band 0: -450\)"),
        ([30.0, 40, 50, 60, 70], None, r"values 30–70 and no units"),
        ([450.0, 460, 470, 480, 490], "Wavenumber", "wavenumbers"),
        ([1.0, 2, 3, 4, 5], "Index", "band numbers, not wavelengths"),
        ([450.0, 460, 470, 480, 490], "furlongs", "wavelength units"),
    ],
)
def test_envi_wavelengths_must_be_physical_in_their_stated_units(
    write_envi: WriteEnvi, tmp_path: Path, values: object, units: str | None, match: str
) -> None:
    metadata: dict[str, object] = {"wavelength": list(np.asarray(values, dtype=float))}
    if units is not None:
        metadata["wavelength units"] = units
    header = write_envi(small_cube(), metadata=metadata)
    _fails_cleanly([header], tmp_path / "c.zarr", WavelengthError, match)


def test_micrometres_under_wavelengths_nm_and_given_wavelengths(tmp_path: Path) -> None:
    np.savez(tmp_path / "um.npz", cube=small_cube(), wavelengths_nm=grid() / 1000)
    message = _fails_cleanly([tmp_path / "um.npz"], tmp_path / "c.zarr", WavelengthError, "look like µm")
    assert "wavelengths_nm" in message  # where the units are stated: the array's name
    np.save(tmp_path / "cube.npy", small_cube())
    _fails_cleanly(
        [tmp_path / "cube.npy"],
        tmp_path / "c.zarr",
        WavelengthError,
        r"--wavelengths, always in nm",
        wavelengths=grid() / 1000,
    )


def test_units_inferred_from_magnitude_never_overlap() -> None:
    low, high = PHYSICAL_RANGE_NM
    assert (low, high) == (200.0, 25_000.0)
    micrometres = convert_wavelengths([0.2, 25.0], None, "w", units_from="x")
    assert micrometres.stated == "um (inferred)" and list(micrometres.nm) == [200.0, 25000.0]
    nanometres = convert_wavelengths([200.0, 25000.0], None, "w", units_from="x")
    assert nanometres.stated == "nm (inferred)" and nanometres.note is not None
    thermal = convert_wavelengths([8.0, 12.0], "micrometers", "w", units_from="x")  # LWIR is physical
    assert list(thermal.nm) == [8000.0, 12000.0] and thermal.note is None


def test_npz_with_both_mask_and_gt_is_an_error_naming_both(tmp_path: Path) -> None:
    labels = np.zeros((9, 7), dtype=np.int32)
    np.savez(tmp_path / "both.npz", cube=small_cube(), wavelengths_nm=grid(), mask=labels, gt=labels + 1)
    message = _fails_cleanly([tmp_path / "both.npz"], tmp_path / "c.zarr", LabelError, "2: mask, gt")
    assert "keep only the one" in message


def test_a_long_wavelength_list_is_not_taken_for_a_file_name(tmp_path: Path) -> None:
    values = np.round(np.linspace(400.0, 2500.0, 224), 3)
    text = ",".join(str(v) for v in values)
    assert len(text) > 1000  # longer than any file name
    np.testing.assert_array_equal(parse_wavelengths(text), values)
    np.testing.assert_array_equal(parse_wavelengths(" ".join(str(v) for v in values)), values)
    np.testing.assert_array_equal(parse_wavelengths(f"[{text}]"), values)
    listing = tmp_path / "wl.txt"
    listing.write_text("\n".join(str(v) for v in values))
    np.testing.assert_array_equal(parse_wavelengths(str(listing)), values)
    np.save(tmp_path / "cube.npy", np.ones((3, 4, 224), dtype=np.float32))
    source = open_source(tmp_path / "cube.npy", wavelengths_nm=text)
    np.testing.assert_array_equal(source.wavelengths_nm, values)
    with pytest.raises(WavelengthError, match="numbers in nm"):
        parse_wavelengths("x" * 5000)  # neither numbers nor a file: a message, not OSError
