"""The plan of a flow run: everything a configuration can get wrong, checked in seconds before any work.

:func:`plan_flow` runs first in every flow run, before the ingest reads a file, statistics touch the
store, an output store, work folder or lock file is created or an MLflow run is opened. It finds the
campaign's band grid (the store's, ``ingest.wavelengths``, or the first readable file of the archive,
read without its cube), tries the pipeline on it (:func:`bandselect.training.dry_run.dry_run`: band
counts, windows, targets, ``k``, channel counts between connected nodes), checks that the products can
be made of the selection, that every output path is free or of the right kind and writable, that the
training device exists and that a configured Dask scheduler answers. A failing plan raises the typed
error of what is wrong, and nothing has been written.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import torch

from bandselect.errors import BandSelectError, FileFormatError, ResourceError, StoreError
from bandselect.export import open_composites
from bandselect.products import check_products
from bandselect.products.bands import open_bands
from bandselect.products.plan import ProductPlan
from bandselect.store import open_campaign
from bandselect.store.readers import discover, open_source
from bandselect.tasks.statistics import resolve_scheduler_address, resolve_statistics_device
from bandselect.training.dry_run import DryRun, dry_run

from .config import FlowConfig

__all__ = ["FlowPlan", "plan_flow"]

#: Seconds a configured Dask scheduler has to accept a connection before the run is refused.
SCHEDULER_TIMEOUT_S = 5.0
_DASK_ADDRESS_ENV = "BANDSELECT_DASK_ADDRESS"


@dataclass(frozen=True)
class FlowPlan:
    """What the plan established: the band grid (and where it came from), the dry run, the products."""

    wavelengths_nm: np.ndarray
    grid_source: str
    dry: DryRun
    products: ProductPlan


def _archive_grid(config: FlowConfig) -> tuple[np.ndarray, str]:
    """The band grid of the first archive file that opens (header only; the cube is not read)."""
    assert config.archive is not None
    files = discover([config.archive])
    errors: list[str] = []
    for path in files:
        try:
            source = open_source(
                path,
                wavelengths_nm=config.ingest.wavelengths,
                sort_bands=config.ingest.sort_bands,
                byte_order=config.ingest.byte_order,
                allow_trailing_bytes=config.ingest.allow_trailing_bytes,
                reader=config.ingest.reader,
            )
        except BandSelectError as error:
            errors.append(f"{path.name}: {error}")
            continue
        return np.asarray(source.wavelengths_nm, dtype=np.float64), f"archive file {path.name}"
    raise FileFormatError(
        f"archive {config.archive}",
        expected="at least one readable cube to start the campaign store from",
        found=f"{len(files)} files, none readable; first: {errors[0] if errors else 'none'}",
        fix="follow the file's own fix above (its options go under the config's ingest:), or remove it; "
        "bandselect ingest FILE --store S shows each file's problem",
    )


def _grid(config: FlowConfig) -> tuple[np.ndarray, str]:
    store = Path(config.store)
    if (store / "zarr.json").is_file():
        wavelengths = open_campaign(store).wavelengths
        if wavelengths is not None:
            return np.asarray(wavelengths, dtype=np.float64), f"campaign store {store}"
    if config.ingest.wavelengths is not None:
        return np.asarray(config.ingest.wavelengths, dtype=np.float64), "ingest.wavelengths"
    if config.archive is None:
        raise StoreError(
            f"campaign store {store}",
            expected="an existing campaign store with acquisitions (or an archive to ingest from)",
            found="no such store" if not store.exists() else "a store without acquisitions",
            fix="set `archive:` to the folder of source cubes, or ingest first (bandselect ingest)",
        )
    return _archive_grid(config)


def _check_writable(path: Path, what: str) -> None:
    """``path`` can be created: its nearest existing ancestor is a writable folder."""
    ancestor = path
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir() or not os.access(ancestor, os.W_OK | os.X_OK):
        raise StoreError(
            f"{what} {path}",
            expected="a path inside a writable folder",
            found=f"{ancestor} is {'not a folder' if not ancestor.is_dir() else 'not writable'}",
            fix=f"choose another {what} path or fix the permissions of {ancestor}",
        )


def _check_outputs(config: FlowConfig, products: ProductPlan) -> None:
    openers = {"composite": open_composites, "bands": open_bands}
    for kind, path in products.outputs.items():
        if Path(path).exists():
            openers[kind](path, create=False)  # raises when it is another kind of store
        else:
            _check_writable(Path(path), f"{kind} output")
    if products.geotiff_dir is not None and products.geotiff != "none":
        _check_writable(Path(products.geotiff_dir), "GeoTIFF folder")
    _check_writable(config.resolved_work_dir, "work folder")


def _check_scheduler(config: FlowConfig) -> None:
    address = config.statistics.scheduler_address or os.environ.get(_DASK_ADDRESS_ENV)
    if not address:
        return
    parsed = urlparse(address if "://" in address else f"tcp://{address}")
    if parsed.scheme not in ("tcp", "tls") or parsed.hostname is None or parsed.port is None:
        return  # inproc:// and other transports: Dask itself says what is wrong
    try:
        with socket.create_connection((parsed.hostname, parsed.port), timeout=SCHEDULER_TIMEOUT_S):
            pass
    except OSError as error:
        raise ResourceError(
            f"Dask scheduler {address}",
            expected=f"a scheduler accepting connections within {SCHEDULER_TIMEOUT_S:g} s",
            found=f"{type(error).__name__}: {error}",
            fix="start it (bandselect servers start) or unset statistics.scheduler_address / "
            f"${_DASK_ADDRESS_ENV} to compute in process",
        ) from error


def _check_device(config: FlowConfig, dry: DryRun) -> None:
    statistics_device = resolve_statistics_device(config.statistics.device)
    in_process = resolve_scheduler_address(config.statistics.scheduler_address) is None
    if statistics_device is not None and in_process:
        # Computed here: a device this machine lacks (or a misspelt $BANDSELECT_STATISTICS_DEVICE) is a
        # ConfigError now, not a failure inside every Dask task. A cluster's workers may have GPUs that
        # this host has not: there the workers resolve it.
        from bandselect.stats import torch_backend

        torch_backend.resolve_device(statistics_device)
    device = config.training.device
    if dry.learnable and device.startswith("cuda") and not torch.cuda.is_available():
        raise ResourceError(
            f"training.device {device!r}",
            expected="a CUDA device (the pipeline trains)",
            found="no CUDA device on this machine",
            fix="set training.device to 'auto' or 'cpu', or run where a GPU is",
        )


def plan_flow(config: FlowConfig) -> FlowPlan:
    """Check ``config`` against its campaign before any work (see the module); return the plan.

    Raises
    ------
    BandSelectError
        The typed error of the first problem found (input: exit 2; environment: ResourceError, exit 1).
    """
    products = config.product_plan()
    _check_outputs(config, products)
    wavelengths, source = _grid(config)
    dry = dry_run(
        config.pipeline_mapping(),
        wavelengths,
        selector=config.selector,
        positive_label=config.positive_label,
        ignore_label=config.ignore_label,
    )
    check_products(
        dry.selection.k, config.export.products, what=f"selector {dry.selector!r} ({dry.selector_type})"
    )
    _check_device(config, dry)
    _check_scheduler(config)
    return FlowPlan(wavelengths, source, dry, products)
