"""Hostile source files and command-line arguments: a typed error that names expected / found / fix, and
a store left exactly as it was.

Every crafted file goes through the library (``ingest_files``) and through the command line
(``bandselect ingest``, exit code 2 and one line on stderr), into a store that already holds one
acquisition: its files must be byte-identical afterwards.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hostile_helpers import (
    GRID_NM,
    assert_house_message,
    cube,
    run_cli,
    tree_digest,
    write_envi,
    write_npz,
)

from bandselect.errors import (
    BandSelectError,
    DTypeError,
    FileFormatError,
    LabelError,
    NonFiniteError,
    ResourceError,
    ShapeError,
    WavelengthError,
)
from bandselect.store import ingest_files, open_campaign

EXIT_INPUT, EXIT_ENVIRONMENT = 2, 1


@pytest.fixture(scope="module")
def base_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with one acquisition on the suite's grid."""
    folder = tmp_path_factory.mktemp("base")
    store = folder / "store.zarr"
    ingest_files([write_npz(folder, "first", cube=cube(seed=9))], store, chunk_yx=8)
    return store


@pytest.fixture
def store(base_store: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "store.zarr"
    shutil.copytree(base_store, copy)
    return copy


# -- crafted files: (builder(folder) -> paths, error type, fragments the message must name) --------------
Builder = Callable[[Path], list[Path]]


def _envi(**kwargs: object) -> Builder:
    return lambda folder: [write_envi(folder, **kwargs)]  # type: ignore[arg-type]


def _npz(**arrays: object) -> Builder:
    return lambda folder: [write_npz(folder, **arrays)]


def _raw_file(name: str, content: bytes) -> Builder:
    def build(folder: Path) -> list[Path]:
        (folder / name).write_bytes(content)
        return [folder / name]

    return build


def _loop(folder: Path) -> list[Path]:
    link = folder / "loop.npz"
    os.symlink(link.name, link)
    return [link]


def _dangling(folder: Path) -> list[Path]:
    link = folder / "gone.npz"
    os.symlink("nowhere.npz", link)
    return [link]


def _loop_in_folder(folder: Path) -> list[Path]:
    inner = folder / "walked"
    inner.mkdir()
    write_npz(inner, "good")
    os.symlink("self.hdr", inner / "self.hdr")
    return [inner]


def _mask_and_gt(folder: Path) -> list[Path]:
    labels = np.zeros((12, 10), np.uint8)
    labels[2:4, 2:4] = 1
    return [write_npz(folder, mask=labels, gt=labels.T.copy().reshape(12, 10))]


_NM_VALUES = "{" + ", ".join(f"{w:g}" for w in GRID_NM) + "}"
_UM_VALUES = "{" + ", ".join(f"{w / 1000:g}" for w in GRID_NM) + "}"
_PIXELS = 12 * 10 * 5 * 2  # bytes of the default uint16 cube

FILES: dict[str, tuple[Builder, type[BandSelectError], tuple[str, ...]]] = {
    # ENVI headers
    "envi-byte-order-7": (_envi(fields={"byte order": "7"}), FileFormatError, ("byte order", "7")),
    "envi-byte-order-2": (_envi(fields={"byte order": "2"}), FileFormatError, ("byte order",)),
    "envi-byte-order-text": (_envi(fields={"byte order": "big"}), FileFormatError, ("byte order",)),
    "envi-micrometers-with-nm-values": (
        _envi(fields={"wavelength units": "Micrometers", "wavelength": _NM_VALUES}),
        WavelengthError,
        ("Micrometers",),
    ),
    "envi-nanometers-with-um-values": (
        _envi(fields={"wavelength units": "Nanometers", "wavelength": _UM_VALUES}),
        WavelengthError,
        ("nm",),
    ),
    "envi-negative-wavelengths": (
        _envi(fields={"wavelength": "{-450, -440, -430, -420, -410}"}),
        WavelengthError,
        ("wavelength",),
    ),
    "envi-zero-wavelengths": (
        _envi(fields={"wavelength": "{0, 0, 0, 0, 0}"}),
        WavelengthError,
        ("wavelength",),
    ),
    "envi-decreasing-wavelengths": (
        _envi(fields={"wavelength": "{490, 480, 470, 460, 450}"}),
        WavelengthError,
        ("sort",),
    ),
    "envi-wavelength-count": (_envi(fields={"wavelength": "{450, 460}"}), WavelengthError, ("5",)),
    "envi-wavelength-text": (
        _envi(fields={"wavelength": "{a, b, c, d, e}"}),
        WavelengthError,
        ("wavelength", "numbers"),
    ),
    "envi-trailing-bytes": (
        _envi(data=np.ascontiguousarray(cube().transpose(2, 0, 1)).astype("<u2").tobytes() + b"\0" * 64),
        FileFormatError,
        ("allow",),
    ),
    "envi-truncated-data": (_envi(data=b"\0" * (_PIXELS // 2)), FileFormatError, ("bytes",)),
    "envi-empty-data": (_envi(data=b""), FileFormatError, ("bytes",)),
    "envi-missing-samples": (_envi(remove=("samples",)), FileFormatError, ("samples",)),
    "envi-missing-lines": (_envi(remove=("lines",)), FileFormatError, ("lines",)),
    "envi-missing-bands": (_envi(remove=("bands",)), FileFormatError, ("bands",)),
    "envi-missing-data-type": (_envi(remove=("data type",)), FileFormatError, ("data type",)),
    "envi-missing-interleave": (_envi(remove=("interleave",)), FileFormatError, ("interleave",)),
    "envi-unknown-data-type": (_envi(fields={"data type": "99"}), DTypeError, ("data type", "99")),
    "envi-complex-data-type": (_envi(fields={"data type": "6"}), DTypeError, ("complex",)),
    "envi-unknown-interleave": (_envi(fields={"interleave": "xyz"}), FileFormatError, ("interleave",)),
    "envi-negative-samples": (_envi(fields={"samples": "-10"}), FileFormatError, ("samples",)),
    "envi-text-lines": (_envi(fields={"lines": "many"}), FileFormatError, ("lines",)),
    "envi-header-offset-past-end": (
        _envi(fields={"header offset": "999999"}),
        FileFormatError,
        ("999999 header bytes",),
    ),
    "envi-not-an-envi-header": (_envi(first_line="NOT ENVI"), FileFormatError, ("ENVI",)),
    "envi-bad-band-list-length": (_envi(fields={"bbl": "{1, 0}"}), FileFormatError, ("bbl",)),
    # NumPy archives
    "npz-mask-and-gt": (_mask_and_gt, LabelError, ("mask", "gt")),
    "npz-micrometres-under-wavelengths-nm": (_npz(wavelengths_nm=GRID_NM / 1000), WavelengthError, ("nm",)),
    "npz-negative-wavelengths": (_npz(wavelengths_nm=-GRID_NM), WavelengthError, ("wavelength",)),
    "npz-wavelength-count": (_npz(wavelengths_nm=GRID_NM[:3]), WavelengthError, ("5",)),
    "npz-no-cube": (_npz(cube=None, data=cube()), FileFormatError, ("cube",)),
    "npz-2d-cube": (_npz(cube=cube()[..., 0]), ShapeError, ("cube",)),
    "npz-complex-cube": (_npz(cube=cube().astype(np.complex64)), DTypeError, ("complex",)),
    "npz-mask-shape": (_npz(mask=np.zeros((3, 3), np.uint8)), LabelError, ("mask",)),
    "npz-negative-mask": (_npz(mask=-np.ones((12, 10), np.int32)), LabelError, ("negative",)),
    "npz-nan-cube": (
        _npz(cube=np.where(cube() == 1, np.nan, cube()).astype(np.float32)),
        NonFiniteError,
        ("mask_nonfinite",),
    ),
    "npz-garbage": (_raw_file("garbage.npz", b"PK\x03\x04" + os.urandom(200)), FileFormatError, ("npz",)),
    "npz-truncated": (
        lambda folder: [_truncate(write_npz(folder, "cut"))],
        FileFormatError,
        ("cut.npz",),
    ),
    # Empty files and wrong extensions
    "empty-npz": (_raw_file("empty.npz", b""), FileFormatError, ("empty.npz",)),
    "empty-npy": (_raw_file("empty.npy", b""), FileFormatError, ("empty.npy",)),
    "empty-mat": (_raw_file("empty.mat", b""), FileFormatError, ("empty.mat",)),
    "empty-hdr": (_raw_file("empty.hdr", b""), FileFormatError, ("empty.hdr",)),
    "empty-tif": (_raw_file("empty.tif", b""), FileFormatError, ("empty.tif",)),
    "empty-h5": (_raw_file("empty.h5", b""), FileFormatError, ("empty.h5",)),
    "extension-txt": (_raw_file("notes.txt", b"430 440 450\n"), FileFormatError, ("'.txt'",)),
    "extension-jpg": (_raw_file("photo.jpg", b"\xff\xd8\xff\xe0" + b"\0" * 64), FileFormatError, ("'.jpg'",)),
    "extension-none": (_raw_file("README", b"hello"), FileFormatError, ("no suffix",)),
    "npz-named-hdr": (
        lambda folder: [
            shutil.copy(write_npz(folder, "inner"), folder / "disguised.hdr") and folder / "disguised.hdr"
        ],
        FileFormatError,
        ("disguised.hdr",),
    ),
    "tif-garbage": (_raw_file("bad.tif", b"II*\0" + os.urandom(100)), FileFormatError, ("bad.tif",)),
    # Links and paths
    "symlink-loop": (_loop, FileFormatError, ("loop.npz", "symbolic link")),
    "symlink-dangling": (_dangling, FileFormatError, ("gone.npz", "symbolic link")),
    "symlink-loop-in-walked-folder": (_loop_in_folder, FileFormatError, ("self.hdr", "symbolic link")),
    "missing-path": (lambda folder: [folder / "nothing-here.npz"], FileFormatError, ("nothing-here.npz",)),
    "folder-without-cubes": (
        lambda folder: [_folder_with(folder / "notes", "a.txt")],
        FileFormatError,
        ("notes",),
    ),
}


def _truncate(path: Path) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _folder_with(folder: Path, name: str) -> Path:
    folder.mkdir()
    (folder / name).write_text("not a cube")
    return folder


@pytest.mark.parametrize("case", sorted(FILES))
def test_a_crafted_file_is_refused_by_the_library(case: str, store: Path, tmp_path: Path) -> None:
    build, error_type, fragments = FILES[case]
    folder = tmp_path / "in"
    folder.mkdir()
    paths = build(folder)
    before = tree_digest(store)
    with pytest.raises(error_type) as raised:
        ingest_files(paths, store)
    assert_house_message(str(raised.value), *fragments)
    assert tree_digest(store) == before


@pytest.mark.parametrize("case", sorted(FILES))
def test_a_crafted_file_is_one_line_and_exit_2_on_the_command_line(
    case: str, store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    build, _, fragments = FILES[case]
    folder = tmp_path / "in"
    folder.mkdir()
    paths = build(folder)
    before = tree_digest(store)
    code, err = run_cli(["ingest", *map(str, paths), "--store", str(store), "--quiet"], capsys)
    assert code == EXIT_INPUT, err
    assert err.startswith("bandselect ingest: error: ") and len(err.strip().splitlines()) == 1, err
    assert_house_message(err, *fragments)
    assert tree_digest(store) == before


# -- command-line arguments ---------------------------------------------------------------------------
def _wavelength_list(n_bands: int) -> str:
    return ",".join(f"{400 + 2.5 * i:g}" for i in range(n_bands))


def _npy(folder: Path, n_bands: int) -> Path:
    path = folder / "cube.npy"
    np.save(path, cube(n_bands=n_bands))
    return path


def test_a_long_wavelength_list_is_a_list_not_a_file_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The documented comma list for 120 bands (a 1 KB argument: once an OSError 'File name too long')."""
    npy = _npy(tmp_path, 120)
    values = _wavelength_list(120)
    assert len(values) > 255
    code, err = run_cli(
        ["ingest", str(npy), "--store", str(tmp_path / "s.zarr"), "--wavelengths", values, "--quiet"], capsys
    )
    assert code == 0, err
    stored = open_campaign(tmp_path / "s.zarr").wavelengths
    np.testing.assert_allclose(stored, 400 + 2.5 * np.arange(120))


def test_a_wavelength_file_is_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    npy = _npy(tmp_path, 70)
    listing = tmp_path / "bands.txt"
    listing.write_text("\n".join(f"{400 + 2.5 * i:g}" for i in range(70)))
    code, err = run_cli(
        ["ingest", str(npy), "--store", str(tmp_path / "s.zarr"), "--wavelengths", str(listing), "--quiet"],
        capsys,
    )
    assert code == 0, err
    assert open_campaign(tmp_path / "s.zarr").wavelengths.size == 70


ARGUMENTS: dict[str, tuple[list[str], tuple[str, ...]]] = {
    "wavelengths-missing-file": (
        ["--wavelengths", "bands.txt"],
        ("neither a list of numbers nor an existing file",),
    ),
    "wavelengths-missing-path": (["--wavelengths", "/no/such/dir/bands.csv"], ("bands.csv",)),
    "wavelengths-text": (["--wavelengths", "red,green,blue,x,y"], ("not a list of numbers",)),
    "wavelengths-count": (["--wavelengths", _wavelength_list(4)], ("5",)),
    "wavelengths-70-for-5-bands": (["--wavelengths", _wavelength_list(70)], ("70",)),
    "wavelengths-negative": (["--wavelengths=-1,-2,-3,-4,-5"], ("wavelength",)),
    "wavelengths-micrometres": (["--wavelengths", "0.45,0.46,0.47,0.48,0.49"], ("nm",)),
    "chunk-zero": (["--chunk", "0"], ("chunk",)),
    "chunk-negative": (["--chunk", "-8"], ("chunk",)),
}


@pytest.mark.parametrize("case", sorted(ARGUMENTS))
def test_a_bad_argument_is_one_line_and_exit_2(
    case: str, store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    extra, fragments = ARGUMENTS[case]
    npy = _npy(tmp_path, 5)
    before = tree_digest(store)
    code, err = run_cli(["ingest", str(npy), "--store", str(store), "--quiet", *extra], capsys)
    assert code == EXIT_INPUT, err
    assert len(err.strip().splitlines()) == 1, err
    assert_house_message(err, *fragments)
    assert tree_digest(store) == before


STORES: dict[str, tuple[Callable[[Path], Path], tuple[str, ...]]] = {
    "store-is-a-file": (lambda tmp: _file(tmp / "file.zarr"), ("a file, not a directory",)),
    "store-is-a-folder-of-other-things": (
        lambda tmp: _folder_with(tmp / "other", "x.txt"),
        ("without zarr.json",),
    ),
    "store-marker-garbage": (lambda tmp: _marker(tmp / "bad.zarr", b"\x00{not json"), ("unreadable",)),
    "store-marker-other-format": (
        lambda tmp: _marker(
            tmp / "v9.zarr",
            b'{"zarr_format": 3, "node_type": "group", "attributes": {"bandselect_campaign": 9}}',
        ),
        ("version",),
    ),
}


def _file(path: Path) -> Path:
    path.write_text("not a store")
    return path


def _marker(path: Path, content: bytes) -> Path:
    path.mkdir()
    (path / "zarr.json").write_bytes(content)
    return path


@pytest.mark.parametrize("command", ["ingest", "info"])
@pytest.mark.parametrize("case", sorted(STORES))
def test_a_path_that_is_not_a_store_is_refused(
    case: str, command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make, fragments = STORES[case]
    target = make(tmp_path)
    before = tree_digest(target)
    argv = (
        ["info", str(target)]
        if command == "info"
        else ["ingest", str(write_npz(tmp_path)), "--store", str(target), "--quiet"]
    )
    code, err = run_cli(argv, capsys)
    assert code == EXIT_INPUT, err
    assert_house_message(err, str(target), *fragments)
    assert tree_digest(target) == before


def test_info_of_a_missing_store_is_exit_2_and_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = run_cli(["info", str(tmp_path / "none.zarr")], capsys)
    assert code == EXIT_INPUT
    assert_house_message(err, "none.zarr", "no such path")
    assert not (tmp_path / "none.zarr").exists()


# -- disk full ----------------------------------------------------------------------------------------
def test_disk_full_while_staging_is_exit_1_and_publishes_nothing(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import zarr

    original = zarr.Array.__setitem__

    def full(self: zarr.Array, key: object, value: object) -> None:
        if str(self.path).endswith("cube"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "c/0/0/0")
        original(self, key, value)

    monkeypatch.setattr(zarr.Array, "__setitem__", full)
    source = write_npz(tmp_path, "big", cube=cube(seed=5))
    before = tree_digest(store)
    with pytest.raises(ResourceError) as raised:
        ingest_files([source], store)
    assert_house_message(str(raised.value), "free space", "ENOSPC", "nothing was published")
    code, err = run_cli(["ingest", str(source), "--store", str(store), "--quiet"], capsys)
    assert code == EXIT_ENVIRONMENT and len(err.strip().splitlines()) == 1, err
    assert "ENOSPC" in err and "Fix:" in err
    assert tree_digest(store) == before and not any((store / ".staging").iterdir())


@pytest.fixture
def tiny_tmpfs(tmp_path: Path) -> Path:
    """A 1 MiB tmpfs (root only: skipped where mounting is not allowed)."""
    mount_point = tmp_path / "tmpfs"
    mount_point.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount_point)], capture_output=True, check=False
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.decode().strip() or done.returncode})")
    yield mount_point
    subprocess.run(["umount", str(mount_point)], check=False)


def test_a_real_full_disk_is_exit_1_and_leaves_no_acquisition(
    tiny_tmpfs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    big = write_npz(tmp_path, "big", cube=np.random.default_rng(0).random((300, 300, 5)).astype(np.float32))
    target = tiny_tmpfs / "store.zarr"
    code, err = run_cli(["ingest", str(big), "--store", str(target), "--quiet"], capsys)
    assert code == EXIT_ENVIRONMENT, err
    assert "ENOSPC" in err and "Fix:" in err and len(err.strip().splitlines()) == 1
    assert open_campaign(target).ids() == []
    assert not any((target / ".staging").iterdir())


# -- weights and checkpoints --------------------------------------------------------------------------
def _torch_bytes(value: object) -> bytes:
    import io

    import torch

    buffer = io.BytesIO()
    torch.save(value, buffer)
    return buffer.getvalue()


def _pickled_object() -> bytes:
    import pickle

    return pickle.dumps({"model": {1, 2, 3}}, protocol=2)  # a set: not among what weights_only loads


WEIGHTS: dict[str, Callable[[], bytes]] = {
    "empty": lambda: b"",
    "garbage": lambda: os.urandom(256),
    "text": lambda: b"these are not weights\n",
    "truncated": lambda: _torch_bytes({"nodes.selector.logits": __import__("torch").ones(61)})[:100],
    "pickled-object": _pickled_object,
    "a-list": lambda: _torch_bytes([1, 2, 3]),
}


def _saved_pipeline(folder: Path) -> Path:
    from bandselect.pipeline import Pipeline

    text = "nodes:\n  selector: {type: SoftChannelSelector, config: {n_select: 3, input_channels: 8}}\n"
    text += "connections:\n  - [data.cube, selector.data]\n"
    return Pipeline.from_yaml(text).save(folder / "pipeline")


@pytest.mark.parametrize("case", sorted(WEIGHTS))
def test_garbage_weights_are_a_file_format_error_naming_the_file(case: str, tmp_path: Path) -> None:
    from bandselect.pipeline import Pipeline

    directory = _saved_pipeline(tmp_path)
    (directory / "weights.pt").write_bytes(WEIGHTS[case]())
    before = tree_digest(directory)
    with pytest.raises(FileFormatError) as raised:
        Pipeline.load(directory)
    assert_house_message(str(raised.value), "weights.pt")
    assert tree_digest(directory) == before


CHECKPOINTS: dict[str, Callable[[], bytes]] = {
    **WEIGHTS,
    "missing-entries": lambda: _torch_bytes({"epoch": 3, "model": {}}),
    "wrong-types": lambda: _torch_bytes(
        {"epoch": "x", "model": {}, "optimizer": {}, "history": 5, "rng": {}, "trainable": []}
    ),
}


@pytest.mark.parametrize("case", sorted(CHECKPOINTS))
def test_a_garbage_checkpoint_is_a_file_format_error_naming_the_file(case: str, tmp_path: Path) -> None:
    from bandselect.training.checkpoint import CHECKPOINT_FILE, read_checkpoint

    path = tmp_path / CHECKPOINT_FILE
    path.write_bytes(CHECKPOINTS[case]())
    with pytest.raises(FileFormatError) as raised:
        read_checkpoint(path)
    assert_house_message(str(raised.value), CHECKPOINT_FILE)
