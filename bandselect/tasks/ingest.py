"""Task: ingest the new files of an archive folder (:func:`bandselect.store.archive.ingest_new_files`)."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from bandselect.store.archive import IngestReport, ingest_new_files
from bandselect.store.sources import ByteOrder, ReaderChoice
from bandselect.tasks._logging import run_logger
from bandselect.tasks._retry import retry_transient

__all__ = ["ingest_archive"]


@task(
    name="ingest-archive",
    retries=2,
    retry_delay_seconds=2,
    retry_condition_fn=retry_transient,
    cache_policy=NO_CACHE,
)
def ingest_archive(
    archive: str,
    store: str,
    wavelengths: list[float] | None = None,
    mask_nonfinite: bool = False,
    sort_bands: bool = False,
    chunk_yx: int = 256,
    byte_order: ByteOrder | None = None,
    allow_trailing_bytes: bool = False,
    reader: ReaderChoice = "auto",
) -> IngestReport:
    """Ingest the archive's new or changed files one by one (a changed file replaces its acquisition; one
    gone from the archive is kept); per-file failures and vanished files are logged as warnings."""
    report = ingest_new_files(
        archive,
        store,
        wavelengths=wavelengths,
        mask_nonfinite=mask_nonfinite,
        sort_bands=sort_bands,
        chunk_yx=chunk_yx,
        byte_order=byte_order,
        allow_trailing_bytes=allow_trailing_bytes,
        reader=reader,
    )
    logger = run_logger(__name__)
    logger.info(
        "ingest %s: %d new, %d replaced, %d already stored, %d unchanged, %d missing, %d failed",
        archive,
        len(report.added),
        len(report.replaced),
        len(report.already_present),
        report.unchanged_files,
        len(report.missing),
        len(report.failures),
    )
    for replaced in report.replaced:
        logger.info("replaced %s: %s -> %s", replaced.path, replaced.previous_id, replaced.acquisition_id)
    for missing in report.missing:
        logger.warning(
            "gone from the archive (acquisition kept): %s (%s)", missing.path, missing.acquisition_id
        )
    for failure in report.failures:
        logger.warning("skipped %s: %s: %s", failure.path, failure.error_type, failure.message)
    return report
