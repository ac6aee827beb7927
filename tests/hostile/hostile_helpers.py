"""Helpers of the hostile-input suites: store digests, message checks, small source files."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from bandselect.cli import main

#: The grid every crafted file and store of the suites shares (5 bands, 450–490 nm).
GRID_NM = 450.0 + 10.0 * np.arange(5)


def tree_digest(path: Path) -> str:
    """A digest of every file under ``path`` (relative name and bytes); ``"absent"`` when missing.

    Empty directories do not count (a writer may leave an empty ``.staging`` behind): what matters is
    that no file was added, removed or changed.
    """
    if not path.exists():
        return "absent"
    digest = hashlib.sha256()
    for root, _, names in sorted(os.walk(path)):
        for name in sorted(names):
            file = Path(root) / name
            digest.update(str(file.relative_to(path)).encode())
            digest.update(file.read_bytes() if not file.is_symlink() else b"link")
    return digest.hexdigest()


def assert_house_message(message: str, *fragments: str) -> None:
    """The message says expected / found / fix, names ``fragments``, and is one bounded line."""
    assert "expected" in message and "found" in message and "Fix:" in message, message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    assert "\n" not in message.strip() and len(message) < 3000, message
    assert "Traceback" not in message


def run_cli(argv: Sequence[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """``bandselect.cli.main(argv)``: the exit code and stderr (what the user sees)."""
    capsys.readouterr()
    code = main(list(argv))
    return code, capsys.readouterr().err


def cube(height: int = 12, width: int = 10, n_bands: int = 5, seed: int = 0) -> np.ndarray:
    """A uint16 cube whose values all differ."""
    rng = np.random.default_rng(seed)
    return (rng.permutation(height * width * n_bands).reshape(height, width, n_bands) + 1).astype(np.uint16)


def write_envi(
    folder: Path,
    name: str = "scene",
    *,
    values: np.ndarray | None = None,
    fields: dict[str, str] | None = None,
    remove: Sequence[str] = (),
    data: bytes | None = None,
    first_line: str = "ENVI",
) -> Path:
    """An ENVI BSQ pair written by hand (header fields overridable), little-endian uint16 by default."""
    values = cube() if values is None else values
    height, width, n_bands = values.shape
    header = {
        "samples": str(width),
        "lines": str(height),
        "bands": str(n_bands),
        "header offset": "0",
        "file type": "ENVI Standard",
        "data type": "12",
        "interleave": "bsq",
        "byte order": "0",
        "wavelength units": "Nanometers",
        "wavelength": "{" + ", ".join(f"{w:g}" for w in GRID_NM[:n_bands]) + "}",
    }
    header.update(fields or {})
    for key in remove:
        header.pop(key, None)
    text = first_line + "\n" + "".join(f"{key} = {value}\n" for key, value in header.items())
    path = folder / f"{name}.hdr"
    path.write_text(text)
    raw = np.ascontiguousarray(values.transpose(2, 0, 1)).astype("<u2").tobytes() if data is None else data
    (folder / f"{name}.raw").write_bytes(raw)
    return path


def write_npz(folder: Path, name: str = "scene", **arrays: object) -> Path:
    """An ``.npz`` with ``cube`` and ``wavelengths_nm`` (overridable, or left out with ``None``)."""
    content: dict[str, object] = {"cube": cube(), "wavelengths_nm": GRID_NM}
    content.update(arrays)
    path = folder / f"{name}.npz"
    np.savez(path, **{k: v for k, v in content.items() if v is not None})  # type: ignore[arg-type]
    return path
