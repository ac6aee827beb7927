"""Campaign stores: zarr v3 groups of acquisitions, appended atomically and idempotently.

>>> from bandselect.store import ingest, open_campaign
>>> ids = ingest(["scene.hdr"], "campaign.zarr")          # doctest: +SKIP
>>> campaign = open_campaign("campaign.zarr")              # doctest: +SKIP
>>> ds = campaign.open(ids[0])                              # lazy, Dask-backed  # doctest: +SKIP

The store hands out windows: :class:`Window`, read by the sources of one protocol (:class:`WindowSource`):
:class:`StoreSource` (a campaign store, through the chunk reader and its :class:`ChunkCache`),
:class:`ArraySource` (in memory) and :class:`DatasetSource` (xarray Datasets in the store layout).

Cubes are stored as float32 with their raw values (integer sources such as uint16 are converted without
scaling, so a round trip is exact after the float32 cast).
"""

from __future__ import annotations

import os
from pathlib import Path

from bandselect import storage
from bandselect.errors import StoreError
from bandselect.store.campaign import AppendResult, Campaign, open_campaign
from bandselect.store.chunk_reader import DEFAULT_CACHE_BYTES, ChunkCache, StoreSource
from bandselect.store.ingest import IngestResult, ingest, ingest_files
from bandselect.store.layout import (
    DEFAULT_CHUNK_YX,
    AcquisitionSource,
    make_acquisition,
    source_from_dataset,
)
from bandselect.store.readers import open_source, parse_wavelengths
from bandselect.store.staging import remote_prefix_exists
from bandselect.store.windows import (
    ArraySource,
    DatasetSource,
    Window,
    WindowSource,
    check_acquisition_ids,
    dataset_ids,
    stack_frames,
)


def create_campaign(path: str | os.PathLike[str], exist_ok: bool = True) -> Campaign:
    """Create an empty campaign store (or open it when it exists and ``exist_ok``).

    Raises
    ------
    StoreError
        The path exists and is not a campaign store, or exists and ``exist_ok`` is False, or the object
        store cannot be reached.
    """
    if exist_ok:
        return open_campaign(path, create=True)
    where = storage.location(path)
    if isinstance(where, Path):
        occupied = where.exists() and (not where.is_dir() or any(where.iterdir()))
    else:
        occupied = remote_prefix_exists(where)  # any object under the prefix
    if occupied:
        raise StoreError(
            f"campaign store {path}",
            expected="a new path",
            found="an existing one",
            fix="choose another path or pass exist_ok=True",
        )
    return open_campaign(path, create=True)


__all__ = [
    "DEFAULT_CACHE_BYTES",
    "DEFAULT_CHUNK_YX",
    "AcquisitionSource",
    "AppendResult",
    "ArraySource",
    "Campaign",
    "ChunkCache",
    "DatasetSource",
    "IngestResult",
    "StoreSource",
    "Window",
    "WindowSource",
    "check_acquisition_ids",
    "create_campaign",
    "dataset_ids",
    "ingest",
    "ingest_files",
    "make_acquisition",
    "open_campaign",
    "open_source",
    "parse_wavelengths",
    "source_from_dataset",
    "stack_frames",
]
