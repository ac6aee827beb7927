"""An HTML page from an MLflow run: its artifacts, and its child runs' for a selector comparison.

Behind ``bandselect report RUN_ID``. The run's artifacts (and those of every child run, found by the
``mlflow.parentRunId`` tag) are downloaded with :class:`mlflow.tracking.MlflowClient`; the page is written
by :func:`bandselect.reports.write_html_report` with every PNG embedded, so it stands alone.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from bandselect.errors import FileFormatError, InputError
from bandselect.reports import ReportImage, ReportSection, ReportTable, write_html_report

__all__ = ["REPORT_FILENAME", "default_tracking_uri", "write_run_report"]

REPORT_FILENAME = "report.html"
_PARENT_TAG = "mlflow.parentRunId"
_SHOWN_TAGS = (
    "bandselect.campaign",
    "prefect.flow_run_id",
    "prefect.flow_run_name",
    "prefect.flow_run_url",
    "bandselect.status",
    "bandselect.unstable_selectors",
    "bandselect.not_applicable_selectors",
    "bandselect.stability.unstable",
)


def default_tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI`` when set, else the embedded store of the current folder (as the flows use)."""
    from bandselect.tracking import resolve_tracking_uri

    return resolve_tracking_uri(None, Path.cwd())


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise FileFormatError(
            f"artifact {path.name}",
            expected="a readable JSON file",
            found=f"{type(error).__name__}: {error}",
            fix="re-run the flow that logged it",
        ) from error


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _images(folder: Path, exclude: Sequence[Path] = (), seen: set[str] | None = None) -> list[ReportImage]:
    """PNGs under ``folder`` not in ``exclude`` and (by content) not in ``seen``; ``seen`` is updated."""
    skip = {path.resolve() for path in exclude}
    images = []
    for path in sorted(folder.rglob("*.png")):
        if path.resolve() in skip:
            continue
        if seen is not None:
            digest = _digest(path)
            if digest in seen:
                continue
            seen.add(digest)
        images.append(ReportImage(path, caption=path.relative_to(folder).as_posix()))
    return images


def _selection_paragraphs(folder: Path) -> list[str]:
    path = folder / "selection.json"
    if not path.is_file():
        return []
    content = _read_json(path)
    indices = content.get("indices", [])
    wavelengths = content.get("wavelengths_nm")
    text = "Selected bands: " + ", ".join(str(i) for i in indices)
    if wavelengths:
        text += " (" + ", ".join(f"{w:.1f}" for w in wavelengths) + " nm)"
    paragraphs = [text]
    stability = content.get("stability")
    if isinstance(stability, dict) and "reason" in stability:
        flag = "UNSTABLE" if stability.get("unstable") else "stable"
        paragraphs.append(f"Stability: {flag}; {stability['reason']}")
    return paragraphs


def _key_values(mapping: dict[str, Any], caption: str) -> ReportTable:
    return ReportTable(
        columns=("name", "value"), rows=[(k, mapping[k]) for k in sorted(mapping)], caption=caption
    )


def _without_empty_columns(columns: list[str], rows: list[list[Any]]) -> ReportTable:
    """The leaderboard table less the columns no row fills (e.g. stability without a bootstrap)."""
    keep = [i for i in range(len(columns)) if any(row[i] not in ("", None) for row in rows)] if rows else []
    keep = keep or list(range(len(columns)))
    return ReportTable(
        [columns[i] for i in keep],
        [[row[i] for i in keep] for row in rows],
        caption="selectors and baselines",
    )


def write_run_report(
    run_id: str, *, tracking_uri: str | None = None, out_dir: str | os.PathLike[str] | None = None
) -> Path:
    """Download a run's artifacts (and its child runs') and write ``report.html``.

    Parameters
    ----------
    run_id
        MLflow run id (for a comparison: the parent run).
    tracking_uri
        Tracking URI; default :func:`default_tracking_uri`.
    out_dir
        Output folder (default ``report-<run_id>``); artifacts go to ``<out_dir>/artifacts/<run id>``.

    Returns
    -------
    pathlib.Path
        The written HTML page.

    Raises
    ------
    InputError
        No such run in the tracking store.
    """
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    uri = tracking_uri or default_tracking_uri()
    parsed = urlparse(uri)
    database = Path(parsed.path) if parsed.scheme == "sqlite" else None
    if database is not None and not database.is_file():
        # Opening a missing sqlite store would create an empty database there.
        raise InputError(
            f"MLflow tracking store {uri}",
            expected="an existing sqlite database",
            found=f"no file {database}",
            fix="pass --tracking-uri of the store the flow logged to (its summary prints it)",
        )
    client = MlflowClient(tracking_uri=uri)
    try:
        run = client.get_run(run_id)
    except MlflowException as error:
        raise InputError(
            f"MLflow run {run_id!r}",
            expected=f"a run in the tracking store {uri}",
            found=str(error).splitlines()[0],
            fix="check the run id; pass --tracking-uri (or MLFLOW_TRACKING_URI) of the store holding it",
        ) from error
    out = Path(out_dir) if out_dir is not None else Path(f"report-{run_id}")
    artifacts = out / "artifacts"
    folder = Path(client.download_artifacts(run_id, "", str(_fresh(artifacts / run_id))))
    children = client.search_runs(
        [run.info.experiment_id],
        filter_string=f"tags.`{_PARENT_TAG}` = '{run_id}'",
        order_by=["attributes.start_time ASC"],
        max_results=1000,
    )

    tags = {key: value for key, value in run.data.tags.items() if key in _SHOWN_TAGS}
    overview = [
        f"Run {run.info.run_name or run_id} ({run_id}), status {run.info.status}, experiment "
        f"{run.info.experiment_id}, tracking store {uri}.",
    ]
    if children:
        overview.append(f"{len(children)} child runs (one per selector) follow the leaderboard.")
    sections = [ReportSection("Run", paragraphs=overview, tables=[_key_values(tags, "tags")] if tags else [])]

    shown: list[Path] = []
    leaderboard_path = folder / "leaderboard.json"
    title = f"bandselect run {run.info.run_name or run_id}"
    if leaderboard_path.is_file():
        board = _read_json(leaderboard_path)
        title = str(board.get("title", title))
        labels = board.get("measure_labels", {})
        summary = board.get("summary", {})
        paragraphs = [f"Ranked by {board['measures'][0]}."] + [f"{m}: {text}." for m, text in labels.items()]
        if summary.get("task") == "multiclass":
            # A classification: classes and folds, no positives or single train/test part.
            classes = ", ".join(
                f"{c}: {n}"
                for c, n in zip(summary.get("classes", []), summary.get("class_pixels", []), strict=False)
            )
            ignored = summary.get("ignore_label")
            paragraphs.append(
                f"Scene {summary.get('height')} × {summary.get('width')} pixels, "
                f"{summary.get('n_bands')} bands; {summary.get('labelled_pixels')} labelled pixels in "
                f"classes {classes}"
                + ("" if ignored is None else f" (label {ignored} counts nowhere)")
                + f"; {summary.get('folds')} block folds, {summary.get('classifier')} classifier."
            )
        elif summary:
            paragraphs.append(
                f"Scene {summary.get('height')} × {summary.get('width')} pixels, "
                f"{summary.get('n_bands')} bands; "
                f"train {summary.get('train_pixels')} pixels ({summary.get('train_positives')} positive), "
                f"test {summary.get('test_pixels')} pixels ({summary.get('test_positives')} positive)"
                + (
                    f"; {summary['ignored_pixels']} pixels count nowhere (ignore_label, invalid)."
                    if summary.get("ignored_pixels")
                    else "."
                )
            )
        charts = sorted((folder / "plots").glob("leaderboard*.png"))
        shown += charts
        sections.append(
            ReportSection(
                "Leaderboard",
                paragraphs=paragraphs,
                tables=[_without_empty_columns(board["columns"], board["table"])],
                images=[ReportImage(path, caption=path.name) for path in charts],
            )
        )
        previews = folder / "plots" / "rgb_previews.png"
        if previews.is_file():
            shown.append(previews)
            sections.append(
                ReportSection("Composites", images=[ReportImage(previews, caption=previews.name)])
            )
        stability_folder = folder / "plots" / "stability"
        if stability_folder.is_dir():
            stability_images = _images(stability_folder)
            shown += [Path(image.path) for image in stability_images]
            sections.append(
                ReportSection(
                    "Band stability",
                    paragraphs=["How often each band is chosen when the scene's blocks are resampled."],
                    images=stability_images,
                )
            )
    else:
        sections.extend(_plain_run_sections(client, run, folder, shown))
    seen = {_digest(path) for path in shown}
    rest = _images(folder, exclude=shown, seen=seen)
    if rest:
        sections.append(ReportSection("Plots", images=rest))

    for child in children:
        child_id = child.info.run_id
        child_folder = _fresh(artifacts / child_id)
        if client.list_artifacts(child_id):  # a baseline has none (MLflow logs "No artifacts found")
            child_folder = Path(client.download_artifacts(child_id, "", str(child_folder)))
        status = child.data.tags.get("bandselect.status", "")
        paragraphs = [f"Run {child_id}; status: {status}."] if status else [f"Run {child_id}."]
        paragraphs += _selection_paragraphs(child_folder)
        tables = []
        if child.data.metrics:
            metrics = {key: round(value, 6) for key, value in child.data.metrics.items()}
            tables.append(_key_values(metrics, "metrics"))
        if child.data.params:
            tables.append(_key_values(child.data.params, "params"))
        sections.append(
            ReportSection(
                f"Selector {child.info.run_name or child_id}",
                paragraphs=paragraphs,
                tables=tables,
                # The parent already shows each selector's stability plot: identical files appear once.
                images=_images(child_folder, seen=seen),
            )
        )
    return write_html_report(out / REPORT_FILENAME, title, sections)


_LEADING_PLOTS = ("band_scores.png", "rgb_previews.png", "weight_evolution.png", "temperature_schedule.png")


def _kept_epoch_metrics(client: Any, run: Any, epoch: int | None) -> dict[str, float]:
    """Each metric at the kept epoch (its step), else its last value: the numbers that go with the
    selection, not those of whatever epoch training ended on."""
    values: dict[str, float] = {}
    for key, last in run.data.metrics.items():
        value = last
        if epoch is not None:
            at_epoch = [m.value for m in client.get_metric_history(run.info.run_id, key) if m.step == epoch]
            value = at_epoch[-1] if at_epoch else last
        values[key] = round(float(value), 6)
    return values


def _plain_run_sections(client: Any, run: Any, folder: Path, shown: list[Path]) -> list[ReportSection]:
    """A flow run's page: the selection and its plots first, then the kept epoch's metrics, then params."""
    content = _read_json(folder / "selection.json") if (folder / "selection.json").is_file() else {}
    kept = content.get("kept_epoch")
    paragraphs = _selection_paragraphs(folder)
    if content.get("rgb_wavelengths_nm"):
        paragraphs.append(
            "Composite: "
            + ", ".join(
                f"{channel} {w:.1f} nm"
                for channel, w in zip("RGB", content["rgb_wavelengths_nm"], strict=False)
            )
        )
    if content.get("selector_type"):
        trained = "trained (two-phase)" if content.get("trained") else "fitted from statistics"
        paragraphs.append(f"Selector {content.get('selector', '')} ({content['selector_type']}), {trained}.")
    if kept is not None:
        paragraphs.append(f"Weights kept from epoch {int(kept) + 1} (the best by the validation monitor).")
    plots = [folder / "plots" / name for name in _LEADING_PLOTS if (folder / "plots" / name).is_file()]
    shown += plots
    sections = [
        ReportSection(
            "Selection",
            paragraphs=paragraphs,
            images=[ReportImage(path, caption=path.name) for path in plots],
        )
    ]
    metrics = _kept_epoch_metrics(client, run, None if kept is None else int(kept))
    if metrics:
        caption = "metrics (last value)" if kept is None else f"metrics of the kept epoch ({int(kept) + 1})"
        sections.append(ReportSection("Metrics", tables=[_key_values(metrics, caption)]))
    if run.data.params:
        sections.append(ReportSection("Parameters", tables=[_key_values(run.data.params, "params")]))
    return sections


def _fresh(folder: Path) -> Path:
    """An existing, empty download folder (a previous report's files of the same run are replaced)."""
    import shutil

    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    return folder
