"""Ingest files into a campaign store: all-or-nothing per call, streamed, idempotent.

Three phases: (1) open and validate every file (headers, shapes, dtypes, wavelengths, masks, one shared
wavelength grid) before anything is written; (2) stage each acquisition block by block (NaN/Inf and
truncation are found here; any error discards everything staged by this call); (3) publish each by an
atomic rename (on an object store: a server-side copy that writes the group's marker last). Files already
in the store (same content, by the digest each group records) are reported as such and left alone.
Staging records each acquisition's per-band minimum and maximum (see :mod:`bandselect.store.writer`).

A file may *replace* an acquisition (``replaces=``: the archive's changed files, see
:mod:`bandselect.store.archive`): its new acquisition records the one it replaced (id, content digest,
time) and takes its place by :meth:`~bandselect.store.Campaign.replace`.

A call that fails publishes nothing (a store it had to create stays, empty); a full disk is a
:class:`~bandselect.errors.ResourceError` (the environment's fault: exit code 1 on the command line).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from tqdm.auto import tqdm

from bandselect import storage
from bandselect.errors import BandSelectError
from bandselect.names import ATTR_REPLACED_AT, ATTR_REPLACED_SHA256, ATTR_REPLACES, ATTR_SOURCE_SHA256
from bandselect.progress import INGEST_STEP, report
from bandselect.spectral import check_same_grid
from bandselect.store.campaign import Campaign, open_campaign
from bandselect.store.georef import campaign_georeference, check_same_crs
from bandselect.store.layout import DEFAULT_CHUNK_YX, AcquisitionSource, check_chunk_yx
from bandselect.store.readers import discover, open_source, parse_wavelengths
from bandselect.store.sources import ByteOrder, ReaderChoice
from bandselect.store.writer import StagedAcquisition

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class IngestResult:
    """What happened to one input file."""

    source: Path
    acquisition_id: str
    created: bool  # False: the same content was already in the store
    replaced: str | None = None  # the acquisition this file's content replaced (``replaces=``)
    source_sha256: str = ""  # sha256 of the source file's bytes (as recorded in the acquisition)


def ingest(
    paths: PathLike | Sequence[PathLike],
    store: PathLike | Campaign,
    *,
    wavelengths: object = None,
    mask_nonfinite: bool = False,
    sort_bands: bool = False,
    chunk_yx: object = DEFAULT_CHUNK_YX,
    progress: bool = False,
    byte_order: ByteOrder | None = None,
    allow_trailing_bytes: bool = False,
    reader: ReaderChoice = "auto",
) -> list[str]:
    """Ingest files (or directories of files) into a campaign store; return the acquisition ids.

    Parameters
    ----------
    paths
        Files (ENVI header or data file, ``.npz``, ``.npy``, ``.mat``) and/or directories (walked).
    store
        The campaign store (created when the path does not exist or is an empty directory): a folder or
        an object-store URL such as ``s3://bucket/campaign.zarr``.
    wavelengths
        Band centres in nm for every file (array, list, ``"430,438,..."`` or a file of numbers); they
        replace the files' own. Required for ENVI headers without wavelengths and for ``.npy``.
    mask_nonfinite
        Store NaN/Inf values as 0 and record the pixels in ``valid`` instead of raising.
    sort_bands
        Store the bands sorted by wavelength when a source lists them out of order (overlapping
        spectrometers); without it such a source is a :class:`WavelengthError`.
    chunk_yx
        Spatial chunk (rows, columns) of the stored arrays; the band axis is one chunk.
    progress
        Show a progress bar (bytes written).
    byte_order, allow_trailing_bytes, reader
        Reader options, as :func:`bandselect.store.open_source` (ENVI byte order override, ENVI data
        files longer than their header, reading through GDAL).

    Returns
    -------
    list[str]
        One id per input file, in input order (files already present return their existing id).

    Raises
    ------
    FileFormatError, WavelengthError, DTypeError, ShapeError, LabelError, NonFiniteError
        On bad input; the message names the file(s). Nothing is written by a call that raises.
    GeoreferenceError
        Acquisitions of different CRSs (among the files, or against the campaign's).
    StoreError
        ``store`` exists but is not a campaign store.
    """
    results = ingest_files(
        paths,
        store,
        wavelengths=wavelengths,
        mask_nonfinite=mask_nonfinite,
        sort_bands=sort_bands,
        chunk_yx=chunk_yx,
        progress=progress,
        byte_order=byte_order,
        allow_trailing_bytes=allow_trailing_bytes,
        reader=reader,
    )
    return [result.acquisition_id for result in results]


def ingest_files(
    paths: PathLike | Sequence[PathLike],
    store: PathLike | Campaign,
    *,
    wavelengths: object = None,
    mask_nonfinite: bool = False,
    sort_bands: bool = False,
    chunk_yx: object = DEFAULT_CHUNK_YX,
    progress: bool = False,
    byte_order: ByteOrder | None = None,
    allow_trailing_bytes: bool = False,
    reader: ReaderChoice = "auto",
    replaces: Mapping[PathLike, str] | None = None,
) -> list[IngestResult]:
    """Like :func:`ingest`, but report per file whether it was new or already present.

    ``replaces`` maps files to the id of the acquisition each one replaces (a changed source file): that
    acquisition is retired when the file's content is published (see :meth:`Campaign.replace`), and the
    new one records it (``replaces_acquisition``, ``replaced_content_sha256``, ``replaced_at``).
    """
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    chunk_yx = check_chunk_yx(chunk_yx)
    override = None if wavelengths is None else parse_wavelengths(wavelengths)
    campaign = store if isinstance(store, Campaign) else _existing_campaign(store)
    previous_of = {Path(path).resolve(): str(old) for path, old in (replaces or {}).items()}
    files = discover(paths)

    sources: list[tuple[Path, AcquisitionSource]] = []
    failures: list[tuple[Path, BandSelectError]] = []
    reference = campaign.wavelengths if campaign is not None else None
    reference_name = f"campaign {campaign.path}" if campaign is not None else ""
    found_crs = None if campaign is None else campaign_georeference(campaign.path, campaign.ids())
    crs, crs_name = (None, "") if found_crs is None else (found_crs[1], f"acquisition {found_crs[0]}")
    for path in files:
        try:
            source = open_source(
                path,
                wavelengths_nm=override,
                sort_bands=sort_bands,
                byte_order=byte_order,
                allow_trailing_bytes=allow_trailing_bytes,
                reader=reader,
            )
            check_same_grid(
                reference, source.wavelengths_nm, f"wavelengths of {path.name}", reference=reference_name
            )
            check_same_crs(crs, source.georeference, f"CRS of {path.name}", reference_name=crs_name)
        except BandSelectError as error:
            failures.append((path, error))
            continue
        if reference is None:
            reference, reference_name = source.wavelengths_nm, f"the first file ({path.name})"
        if crs is None and source.georeference is not None and source.georeference.crs_wkt is not None:
            crs, crs_name = source.georeference, f"the first georeferenced file ({path.name})"
        sources.append((path, source))
    if failures:
        raise _combined(failures, len(files))

    if campaign is None:
        campaign = open_campaign(store, create=True)  # type: ignore[arg-type]
    sources = [
        (path, _with_replacement(campaign, source, previous_of.get(path.resolve())))
        for path, source in sources
    ]
    staged: list[StagedAcquisition] = []
    total = sum(source.nbytes_float32 for _, source in sources)
    with tqdm(total=total, unit="B", unit_scale=True, desc="ingest", disable=not progress) as bar:
        try:
            for path, source in sources:
                bytes_per_row = source.shape[1] * source.shape[2] * 4
                try:
                    staged.append(
                        campaign.stage(
                            source,
                            mask_nonfinite=mask_nonfinite,
                            chunk_yx=chunk_yx,
                            on_rows=lambda rows, per_row=bytes_per_row: bar.update(rows * per_row),
                        )
                    )
                except BandSelectError as error:
                    raise _in_file(error, path) from error
                report(INGEST_STEP, len(staged), len(sources), f"{path.name}: {source.shape} staged")
        except BaseException:
            for item in staged:
                campaign.discard(item)
            raise
    results = []
    for index, ((path, source), item) in enumerate(zip(sources, staged, strict=True)):
        previous = previous_of.get(path.resolve())
        try:
            outcome = campaign.publish(item) if previous is None else campaign.replace(item, previous)
        except BaseException:
            for unpublished in staged[index:]:  # publish discards its own item; the rest are left
                campaign.discard(unpublished)
            raise
        replaced = previous if previous is not None and outcome.acquisition_id != previous else None
        sha = str(source.attrs.get(ATTR_SOURCE_SHA256, ""))
        results.append(IngestResult(path, outcome.acquisition_id, outcome.created, replaced, sha))
    return results


def _with_replacement(
    campaign: Campaign, source: AcquisitionSource, previous: str | None
) -> AcquisitionSource:
    """``source`` with the provenance of the acquisition it replaces (none: unchanged)."""
    if previous is None:
        return source
    replaced = {
        ATTR_REPLACES: previous,
        ATTR_REPLACED_SHA256: campaign.recorded_digest(previous) or "",
        ATTR_REPLACED_AT: datetime.now(UTC).isoformat(timespec="seconds"),
    }
    return dataclasses.replace(source, attrs={**source.attrs, **replaced})


def _existing_campaign(store: PathLike) -> Campaign | None:
    """The campaign at ``store``; ``None`` when it is still to be created (missing or empty directory,
    or an empty object-store prefix)."""
    where = storage.location(store)
    if isinstance(where, Path):
        if not where.exists() or (where.is_dir() and not any(where.iterdir())):
            return None
    elif not storage.exists(where):
        return None
    return open_campaign(where)  # raises StoreError when the path is something else


def _in_file(error: BandSelectError, path: Path) -> BandSelectError:
    """The same error type, its message prefixed with the file it is about."""
    located = type(error)(f"{path}: {error}")
    located.expected, located.found, located.fix = error.expected, error.found, error.fix
    return located


def _combined(failures: list[tuple[Path, BandSelectError]], n_files: int) -> BandSelectError:
    if len(failures) == 1:
        return _in_file(failures[0][1], failures[0][0])
    lines = "\n".join(f"  {path}: {type(error).__name__}: {error}" for path, error in failures)
    first = failures[0][1]
    combined = type(first)(
        f"{len(failures)} of {n_files} files cannot be ingested (nothing was written):\n{lines}"
    )
    combined.expected, combined.found, combined.fix = first.expected, first.found, first.fix
    return combined
