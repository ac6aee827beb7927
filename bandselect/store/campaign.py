"""Campaign stores: open, list, read lazily, and append acquisitions atomically and idempotently.

A campaign store is a zarr v3 group whose attributes carry :data:`~bandselect.names.STORE_FORMAT_KEY`,
in a local folder or under an object-store URL (``s3://bucket/campaign.zarr``, through fsspec; see
:mod:`bandselect.storage` for credentials). Each acquisition is a child group named by its id.

Atomic append: an acquisition is written completely under ``<store>/.staging/<host>-<pid>-<random>``
and then published. Readers list ids by the groups' ``zarr.json`` markers (names that start with ``.``
are never ids), so they see either nothing or the whole acquisition, and a crash mid-write leaves only a
staging leftover, which readers ignore and the next append removes (when its process is gone, or after
a day).

- Local folder: publishing is one ``os.rename`` of the staged directory to ``<store>/<id>`` (atomic on
  one filesystem), then an ``fsync`` of the store directory.
- Object store (no rename): the staged objects are copied on the server side to ``<store>/<id>/`` with
  the group's ``zarr.json`` copied *last* (:func:`bandselect.storage.publish_tree`); until that one PUT
  lands, ``<id>`` has no marker and is not listed. A crash mid-copy leaves an unlisted prefix of the
  same content, which the next append of that content overwrites (the id is derived from the content,
  so every object it would write is the same).

Idempotent append: the id ends with a digest of the stored content (cube, wavelengths, mask, valid);
appending content whose digest is already present publishes nothing and returns the existing id.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr
import zarr

from bandselect import storage
from bandselect.errors import StoreError
from bandselect.names import (
    COORD_WAVELENGTH,
    STORE_FORMAT_KEY,
    STORE_FORMAT_VERSION,
)
from bandselect.spectral import check_same_grid
from bandselect.storage import StoreLocation
from bandselect.store.georef import check_campaign_crs
from bandselect.store.layout import (
    DEFAULT_CHUNK_YX,
    AcquisitionSource,
    digest_suffix,
    source_from_dataset,
    validate_acquisition_id,
)
from bandselect.store.writer import StagedAcquisition, host_tag, stage_acquisition, staging_name

STAGING_DIR = ".staging"
#: A staging leftover older than this is removed even when its owner cannot be checked (other host).
STALE_STAGING_SECONDS = 24 * 3600
_ZARR_JSON = "zarr.json"


@dataclass(frozen=True)
class AppendResult:
    """Outcome of one append: the id, and whether this call published it (False: already present)."""

    acquisition_id: str
    created: bool


class Campaign:
    """A campaign store in a local folder or on an object store. Create with :func:`open_campaign`.

    Attributes
    ----------
    path
        The store's location: a local :class:`~pathlib.Path`, or the object-store URL (``str``).
    remote
        Whether the store is on an object store.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path: StoreLocation = storage.location(path)
        self.remote = not isinstance(self.path, Path)
        self._wavelengths: np.ndarray | None = None

    def __repr__(self) -> str:
        return f"Campaign({str(self.path)!r}, {len(self)} acquisitions)"

    # -- reading -------------------------------------------------------------------------------------
    def ids(self) -> list[str]:
        """Sorted ids of the published acquisitions (never a partial or staged one)."""
        return [name for name in storage.marked_children(self.path) if _is_id(name)]

    def __len__(self) -> int:
        return len(self.ids())

    def __iter__(self) -> Iterator[str]:
        return iter(self.ids())

    def __contains__(self, acquisition_id: object) -> bool:
        return isinstance(acquisition_id, str) and acquisition_id in self.ids()

    def open(self, acquisition_id: str) -> xr.Dataset:
        """Open one acquisition lazily (Dask arrays chunked as stored; the wavelengths are loaded).

        Raises
        ------
        StoreError
            A malformed id, or an id that is not in the campaign.
        """
        validate_acquisition_id(acquisition_id)
        if not storage.has_marker(storage.join(self.path, acquisition_id)):
            known = self.ids()
            shown = ", ".join(known[:5]) + (", ..." if len(known) > 5 else "")
            raise StoreError(
                f"acquisition {acquisition_id!r} in {self.path}",
                expected="one of the campaign's ids",
                found=f"no such acquisition ({len(known)} present: {shown or 'none'})",
                fix="list the ids with Campaign.ids() or `bandselect info STORE`",
            )
        # decode_coords="all": the georeference (``spatial_ref``, named by ``grid_mapping``) is a coordinate.
        dataset = xr.open_zarr(
            str(self.path), group=acquisition_id, consolidated=False, chunks={}, decode_coords="all"
        )
        # The wavelength grid is tiny and used everywhere: load it instead of leaving a Dask array.
        return dataset.assign_coords({COORD_WAVELENGTH: dataset[COORD_WAVELENGTH].load()})

    def iter_datasets(self, ids: Sequence[str] | None = None) -> Iterator[xr.Dataset]:
        """Yield the acquisitions as lazy Datasets, in id order (each carries its id in ``attrs``)."""
        for acquisition_id in self.ids() if ids is None else ids:
            yield self.open(acquisition_id)

    def items(self) -> Iterator[tuple[str, xr.Dataset]]:
        """Yield ``(id, lazy Dataset)`` pairs in id order."""
        for acquisition_id in self.ids():
            yield acquisition_id, self.open(acquisition_id)

    @property
    def wavelengths(self) -> np.ndarray | None:
        """The campaign's wavelength grid in nm (shared by all acquisitions), ``None`` while empty."""
        if self._wavelengths is None:
            ids = self.ids()
            if not ids:
                return None
            array = zarr.open_array(str(storage.join(self.path, ids[0], COORD_WAVELENGTH)), mode="r")
            self._wavelengths = np.asarray(array[:], dtype=np.float64)
        return self._wavelengths.copy()

    def check_wavelengths(self, wavelengths_nm: np.ndarray, what: str) -> None:
        """Raise :class:`WavelengthError` unless ``wavelengths_nm`` equals the campaign's grid."""
        check_same_grid(self.wavelengths, wavelengths_nm, what, reference=f"campaign {self.path}")

    # -- writing -------------------------------------------------------------------------------------
    def append(
        self,
        dataset: xr.Dataset,
        *,
        name: str | None = None,
        mask_nonfinite: bool = False,
        chunk_yx: object = DEFAULT_CHUNK_YX,
    ) -> str:
        """Append one acquisition Dataset; return its id.

        Parameters
        ----------
        dataset
            In the store layout (see :func:`bandselect.store.make_acquisition`); may be Dask-backed,
            it is then computed one block of rows at a time.
        name
            Readable prefix of the id; defaults to ``attrs["name"]`` or ``"acquisition"``.
        mask_nonfinite
            Store NaN/Inf values as 0 and record the pixels as invalid instead of raising.
        chunk_yx
            Spatial chunk (rows, columns); the band axis is one chunk.

        Returns
        -------
        str
            The content-derived id; the same content appended again returns the same id and writes
            nothing visible.

        Raises
        ------
        WavelengthError
            The wavelength grid differs from the campaign's.
        NonFiniteError, DTypeError, ShapeError, LabelError
            On data that does not fit the layout (nothing is published).
        """
        source = source_from_dataset(dataset, name=name)
        return self.append_source(source, mask_nonfinite=mask_nonfinite, chunk_yx=chunk_yx).acquisition_id

    def append_source(
        self,
        source: AcquisitionSource,
        *,
        mask_nonfinite: bool = False,
        chunk_yx: object = DEFAULT_CHUNK_YX,
        on_rows: Callable[[int], None] | None = None,
    ) -> AppendResult:
        """Append a block source (what readers and the synthetic generator produce)."""
        staged = self.stage(source, mask_nonfinite=mask_nonfinite, chunk_yx=chunk_yx, on_rows=on_rows)
        return self.publish(staged)

    def stage(
        self,
        source: AcquisitionSource,
        *,
        mask_nonfinite: bool = False,
        chunk_yx: object = DEFAULT_CHUNK_YX,
        on_rows: Callable[[int], None] | None = None,
    ) -> StagedAcquisition:
        """Write ``source`` under the staging area without publishing it (see :meth:`publish`)."""
        self.check_wavelengths(source.wavelengths_nm, f"wavelengths of {source.name}")
        check_campaign_crs(self.path, self.ids(), source.georeference, f"CRS of {source.name}")
        self.clean_staging()
        return stage_acquisition(
            storage.join(self.path, STAGING_DIR),
            source,
            chunk_yx=chunk_yx,
            mask_nonfinite=mask_nonfinite,
            on_rows=on_rows,
        )

    def publish(self, staged: StagedAcquisition) -> AppendResult:
        """Make a staged acquisition visible (one atomic rename, or a copy with the marker written last on
        an object store); a no-op when its content exists."""
        existing = self._id_with_digest(digest_suffix(staged.acquisition_id))
        if existing is not None:
            self.discard(staged)
            return AppendResult(existing, created=False)
        if self.remote:
            return self._publish_remote(staged)
        target = self.path / staged.acquisition_id
        try:
            os.rename(staged.path, target)
        except OSError as error:
            # Another writer published the same content first: idempotent, keep theirs.
            if error.errno in (errno.EEXIST, errno.ENOTEMPTY) and (target / _ZARR_JSON).is_file():
                self.discard(staged)
                return AppendResult(staged.acquisition_id, created=False)
            self.discard(staged)
            raise StoreError(
                f"publishing {staged.acquisition_id} in {self.path}",
                expected="an atomic rename inside the store directory",
                found=f"{type(error).__name__}: {error}",
                fix="check the store's permissions and that it lives on one local filesystem",
            ) from error
        _fsync_directory(self.path)
        return AppendResult(staged.acquisition_id, created=True)

    def _publish_remote(self, staged: StagedAcquisition) -> AppendResult:
        target = storage.join(self.path, staged.acquisition_id)
        if storage.has_marker(target):  # another writer published the same content first
            self.discard(staged)
            return AppendResult(staged.acquisition_id, created=False)
        try:
            storage.publish_tree(str(staged.path), str(target))
        except (OSError, StoreError) as error:
            self.discard(staged)
            raise StoreError(
                f"publishing {staged.acquisition_id} in {self.path}",
                expected="server-side copies of the staged objects, the group's zarr.json last",
                found=f"{type(error).__name__}: {error}",
                fix="check the credentials and the bucket's permissions; appending again completes it",
            ) from error
        return AppendResult(staged.acquisition_id, created=True)

    def discard(self, staged: StagedAcquisition) -> None:
        """Remove a staged acquisition that will not be published."""
        storage.remove_tree(staged.path)

    def retire(self, name: str) -> bool:
        """Unpublish the group ``name`` (its marker first, so readers stop listing it) and delete it.

        Used by product stores that replace a group (:mod:`bandselect.export`). Returns whether there
        was one. On a local folder the group is first moved into the staging area by one rename.
        """
        validate_acquisition_id(name)
        group = storage.join(self.path, name)
        if self.remote:
            if not storage.exists(group):
                return False
            storage.remove_tree(storage.join(group, _ZARR_JSON))
            storage.remove_tree(group)
            return True
        retired = self.path / STAGING_DIR / staging_name()  # type: ignore[operator]
        retired.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.rename(group, retired)
        except FileNotFoundError:  # another writer retired it first
            return False
        shutil.rmtree(retired, ignore_errors=True)
        return True

    def clean_staging(self) -> list[str]:
        """Remove staging leftovers of crashed writes; return their names.

        A leftover is removed when it was made on this host by a process that no longer runs, or when
        it is older than a day (its owner cannot be checked from here). Live writers are left alone.
        """
        if self.remote:
            return self._clean_remote_staging()
        staging = self.path / STAGING_DIR  # type: ignore[operator]
        if not staging.is_dir():
            return []
        removed = []
        host = host_tag()
        now = time.time()
        for entry in staging.iterdir():
            parts = entry.name.split("-")
            owner_gone = (
                len(parts) == 3 and parts[0] == host and parts[1].isdigit() and not _pid_alive(int(parts[1]))
            )
            try:
                too_old = now - entry.stat().st_mtime > STALE_STAGING_SECONDS
            except FileNotFoundError:  # its owner just published or discarded it
                continue
            if owner_gone or too_old:
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry.name)
        return removed

    def _clean_remote_staging(self) -> list[str]:
        staging = storage.join(self.path, STAGING_DIR)
        removed = []
        host = host_tag()
        now = time.time()
        for name in storage.child_names(staging):
            parts = name.split("-")
            owner_gone = (
                len(parts) == 3 and parts[0] == host and parts[1].isdigit() and not _pid_alive(int(parts[1]))
            )
            changed = None if owner_gone else storage.modified_time(storage.join(staging, name))
            if owner_gone or (changed is not None and now - changed > STALE_STAGING_SECONDS):
                storage.remove_tree(storage.join(staging, name))
                removed.append(name)
        return removed

    def _id_with_digest(self, digest16: str) -> str | None:
        for acquisition_id in self.ids():
            if digest_suffix(acquisition_id) == digest16:
                return acquisition_id
        return None


def open_campaign(path: str | os.PathLike[str] | Campaign, create: bool = False) -> Campaign:
    """Open a campaign store, or create an empty one with ``create=True``.

    Parameters
    ----------
    path
        Directory of the store, or its object-store URL (``s3://bucket/campaign.zarr``; credentials
        from the environment, see :mod:`bandselect.storage`). An opened campaign is returned as is.
    create
        Create the store when ``path`` does not exist or is an empty directory (an empty prefix).

    Raises
    ------
    StoreError
        ``path`` is missing (and ``create`` is False), or exists but is not a campaign store, or has
        an unsupported format version.
    """
    if isinstance(path, Campaign):
        return path
    where = storage.location(path)
    if not isinstance(where, Path):
        return _open_remote(where, create)
    store_path = where
    if store_path.exists():
        if not store_path.is_dir():
            raise _not_a_store(store_path, "a file, not a directory")
        marker = store_path / _ZARR_JSON
        if marker.is_file():
            _check_store_marker(store_path, marker)
            return Campaign(store_path)
        if create and not any(store_path.iterdir()):
            return _create(store_path)
        raise _not_a_store(store_path, f"a directory without {_ZARR_JSON}")
    if not create:
        raise StoreError(
            f"campaign store {store_path}",
            expected="an existing campaign store",
            found="no such path",
            fix="ingest data first (`bandselect ingest FILES --store PATH`) or pass create=True",
        )
    return _create(store_path)


def _open_remote(url: str, create: bool) -> Campaign:
    marker = storage.join(url, _ZARR_JSON)
    try:
        content = storage.read_bytes(marker)
    except FileNotFoundError:
        content = None
    except OSError as error:  # no such bucket, no permission, no endpoint
        raise StoreError(
            f"campaign store {url}",
            expected="a reachable object store",
            found=f"{type(error).__name__}: {error}",
            fix="check the bucket and the AWS_* credentials / AWS_ENDPOINT_URL in the environment",
        ) from error
    if content is not None:
        _check_store_marker(url, content)
        return Campaign(url)
    if not create:
        raise StoreError(
            f"campaign store {url}",
            expected="an existing campaign store",
            found="no zarr.json at that prefix",
            fix="ingest data first (`bandselect ingest FILES --store URL`) or pass create=True",
        )
    if storage.exists(url):
        raise _not_a_store(url, f"a non-empty prefix without {_ZARR_JSON}")
    try:
        return _create(url)
    except OSError as error:  # no such bucket, no permission
        raise StoreError(
            f"campaign store {url}",
            expected="a reachable object store whose bucket exists and is writable",
            found=f"{type(error).__name__}: {error}",
            fix="create the bucket, or check the AWS_* credentials / AWS_ENDPOINT_URL in the environment",
        ) from error


def _create(store_path: StoreLocation) -> Campaign:
    if isinstance(store_path, Path):
        store_path.mkdir(parents=True, exist_ok=True)
    zarr.open_group(
        str(store_path), mode="w-", zarr_format=3, attributes={STORE_FORMAT_KEY: STORE_FORMAT_VERSION}
    )
    return Campaign(store_path)


def _check_store_marker(store_path: StoreLocation, marker: Path | bytes) -> None:
    try:
        text = marker.decode("utf-8") if isinstance(marker, bytes) else marker.read_text(encoding="utf-8")
        metadata = json.loads(text)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise _not_a_store(store_path, f"an unreadable {_ZARR_JSON} ({error})") from error
    attributes = metadata.get("attributes", {}) if isinstance(metadata, dict) else {}
    if metadata.get("node_type") != "group" or STORE_FORMAT_KEY not in attributes:
        raise _not_a_store(store_path, f"a zarr node without the {STORE_FORMAT_KEY!r} attribute")
    version = attributes[STORE_FORMAT_KEY]
    if version != STORE_FORMAT_VERSION:
        raise StoreError(
            f"campaign store {store_path}",
            expected=f"format version {STORE_FORMAT_VERSION}",
            found=f"version {version!r}",
            fix="open it with the bandselect version that wrote it, or re-ingest the sources",
        )


def _is_id(name: str) -> bool:
    if name.startswith("."):
        return False
    try:
        validate_acquisition_id(name)
    except StoreError:
        return False
    return True


def _not_a_store(store_path: StoreLocation, found: str) -> StoreError:
    return StoreError(
        f"campaign store {store_path}",
        expected=f"a campaign store (a zarr group whose attributes carry {STORE_FORMAT_KEY!r})",
        found=found,
        fix="pass the path of a campaign store, or a new or empty directory to create one",
    )


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _fsync_directory(path: Path) -> None:
    """Persist the rename itself (a crash right after publish must not lose the directory entry)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
