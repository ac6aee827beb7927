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
appending content already present publishes nothing and returns the existing id. "Already present" means
a group that *records* that digest (``content_sha256``), not one merely named after it; a group squatting
the exact id of other content is a :class:`StoreError`. Every group is checked against the layout when
first opened, and its chunks are read through checks (:mod:`bandselect.store.integrity`).
:meth:`Campaign.replace` puts a changed source file's new content in the old acquisition's place.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from bandselect import storage
from bandselect.errors import StoreError
from bandselect.names import (
    ATTR_CONTENT_SHA256,
)
from bandselect.spectral import check_same_grid
from bandselect.storage import StoreLocation
from bandselect.store.georef import check_campaign_crs
from bandselect.store.integrity import (
    AcquisitionLayout,
    damaged_group_fix,
    inspect_acquisition,
    open_checked_dataset,
)
from bandselect.store.layout import (
    DEFAULT_CHUNK_YX,
    ID_DIGEST_LENGTH,
    AcquisitionSource,
    digest_suffix,
    source_from_dataset,
    validate_acquisition_id,
)
from bandselect.store.staging import (
    STAGING_DIR,
    check_store_marker,
    clean_staging,
    create_store,
    fsync_directory,
    not_a_store,
    open_remote_store,
)
from bandselect.store.writer import StagedAcquisition, stage_acquisition, staging_name

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
        self._layouts: dict[str, AcquisitionLayout] = {}
        self._grid_source = ""  # the acquisition the campaign's grid was read from

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

    def layout(self, acquisition_id: str) -> AcquisitionLayout:
        """The checked layout of one acquisition (read once per :class:`Campaign` object).

        Raises
        ------
        StoreError
            A malformed id, an id that is not in the campaign, or a group outside the layout (see
            :func:`bandselect.store.integrity.inspect_acquisition`).
        """
        validate_acquisition_id(acquisition_id)
        if acquisition_id not in self._layouts:
            if not storage.has_marker(storage.join(self.path, acquisition_id)):
                known = self.ids()
                shown = ", ".join(known[:5]) + (", ..." if len(known) > 5 else "")
                raise StoreError(
                    f"acquisition {acquisition_id!r} in {self.path}",
                    expected="one of the campaign's ids",
                    found=f"no such acquisition ({len(known)} present: {shown or 'none'})",
                    fix="list the ids with Campaign.ids() or `bandselect info STORE`",
                )
            self._layouts[acquisition_id] = inspect_acquisition(self.path, acquisition_id)
        return self._layouts[acquisition_id]

    def open(self, acquisition_id: str) -> xr.Dataset:
        """Open one acquisition lazily (Dask arrays chunked as stored; the wavelengths are loaded).

        The group's layout is checked first, its grid against the campaign's, and its chunks are read
        through :class:`~bandselect.store.integrity.CheckedArray`.

        Raises
        ------
        StoreError
            A malformed id, an id that is not in the campaign, or a group outside the layout.
        WavelengthError
            The group's wavelength grid differs from the campaign's (its first acquisition's).
        """
        layout = self.layout(acquisition_id)
        grid = self.wavelengths  # read once per Campaign object, from its first acquisition
        if self._grid_source != acquisition_id:
            check_same_grid(
                grid,
                layout.wavelengths_nm,
                f"wavelengths of acquisition {acquisition_id!r}",
                reference=f"acquisition {self._grid_source!r} of campaign {self.path} (the campaign's grid)",
                fix="a campaign holds one wavelength grid: "
                + damaged_group_fix(self.path, acquisition_id, layout.source_file)
                + " into a campaign of its own sensor configuration",
            )
        return open_checked_dataset(self.path, layout)

    def attributes(self, acquisition_id: str) -> dict[str, object]:
        """The provenance attributes of one acquisition (its group's ``zarr.json`` only; nothing checked)."""
        validate_acquisition_id(acquisition_id)
        try:
            metadata = json.loads(storage.read_bytes(storage.join(self.path, acquisition_id, _ZARR_JSON)))
        except (FileNotFoundError, ValueError):
            return {}
        attributes = metadata.get("attributes", {}) if isinstance(metadata, dict) else {}
        return attributes if isinstance(attributes, dict) else {}

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
            self._wavelengths = self.layout(ids[0]).wavelengths_nm
            self._grid_source = ids[0]
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
        an object store); a no-op when its content exists.

        Raises
        ------
        StoreError
            Publishing failed, or a group already holds the staged acquisition's id but records other
            content (a crafted or damaged store; nothing is published).
        """
        existing = self._present(staged)
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
                self._check_not_squatted(staged)
                return AppendResult(staged.acquisition_id, created=False)
            self.discard(staged)
            raise StoreError(
                f"publishing {staged.acquisition_id} in {self.path}",
                expected="an atomic rename inside the store directory",
                found=f"{type(error).__name__}: {error}",
                fix="check the store's permissions and that it lives on one local filesystem",
            ) from error
        fsync_directory(self.path)
        return AppendResult(staged.acquisition_id, created=True)

    def _publish_remote(self, staged: StagedAcquisition) -> AppendResult:
        target = storage.join(self.path, staged.acquisition_id)
        if storage.has_marker(target):  # another writer published the same content first
            self.discard(staged)
            self._check_not_squatted(staged)
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

    def replace(self, staged: StagedAcquisition, previous_id: str) -> AppendResult:
        """Publish ``staged`` in place of the acquisition ``previous_id`` (a changed source file).

        The previous group is retired first (one rename out of sight), then the staged one published, so
        a reader never sees both; a crash between the two leaves neither (the next ingest publishes the
        new content). When the staged content is already present, only the previous group is retired.
        """
        existing = self._present(staged)
        if existing is not None:
            self.discard(staged)
            if existing != previous_id:
                self.retire(previous_id)
            return AppendResult(existing, created=False)
        self.retire(previous_id)
        return self.publish(staged)

    def recorded_digest(self, acquisition_id: str) -> str | None:
        """The content digest a group records (``content_sha256``); None when it records none."""
        digest = self.attributes(acquisition_id).get(ATTR_CONTENT_SHA256)
        return digest if isinstance(digest, str) else None

    def _content_addressed(self, staged: StagedAcquisition) -> bool:
        # Campaign acquisitions are named after their content; product groups (which publish through this
        # class too, see bandselect.export) are named after their source acquisition.
        return digest_suffix(staged.acquisition_id) == staged.digest[:ID_DIGEST_LENGTH]

    def _present(self, staged: StagedAcquisition) -> str | None:
        """The id of a group that records the staged content (not one that is merely named after it)."""
        suffix = digest_suffix(staged.acquisition_id)
        if not self._content_addressed(staged):
            return self._id_with_digest(suffix)
        for acquisition_id in self.ids():
            if (
                digest_suffix(acquisition_id) == suffix
                and self.recorded_digest(acquisition_id) == staged.digest
            ):
                return acquisition_id
        self._check_not_squatted(staged)
        return None

    def _check_not_squatted(self, staged: StagedAcquisition) -> None:
        name = staged.acquisition_id
        if not self._content_addressed(staged) or not storage.has_marker(storage.join(self.path, name)):
            return
        recorded = self.recorded_digest(name)
        if recorded != staged.digest:
            self.discard(staged)
            raise StoreError(
                f"group {name!r} of campaign {self.path}",
                expected=f"the content its name stands for (content digest {staged.digest})",
                found=f"a group that records {recorded!r}: renamed, copied in or damaged by hand",
                fix=damaged_group_fix(self.path, name) + "; nothing was published",
            )

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
        return clean_staging(self.path)

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
        open_remote_store(where, create)
        return Campaign(where)
    store_path = where
    if store_path.exists():
        if not store_path.is_dir():
            raise not_a_store(store_path, "a file, not a directory")
        marker = store_path / _ZARR_JSON
        if marker.is_file():
            check_store_marker(store_path, marker)
            return Campaign(store_path)
        if create and not any(store_path.iterdir()):
            create_store(store_path)
            return Campaign(store_path)
        raise not_a_store(store_path, f"a directory without {_ZARR_JSON}")
    if not create:
        raise StoreError(
            f"campaign store {store_path}",
            expected="an existing campaign store",
            found="no such path",
            fix="ingest data first (`bandselect ingest FILES --store PATH`) or pass create=True",
        )
    create_store(store_path)
    return Campaign(store_path)


def _is_id(name: str) -> bool:
    if name.startswith("."):
        return False
    try:
        validate_acquisition_id(name)
    except StoreError:
        return False
    return True
