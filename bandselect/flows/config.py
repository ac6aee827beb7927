"""Flow configs: one pydantic model per flow, loadable from YAML (bounded, see ``bandselect._yaml``).

Relative paths in a YAML file are taken relative to that file's folder. Only ``campaign``, ``store`` and
``output`` (and ``archive`` for :class:`ProcessCampaignConfig`) are required; everything else has a
default, so a deployment can pass just those four. Unknown keys are errors (a typo never goes unnoticed).
"""

from __future__ import annotations

import copy
import os
import re
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from bandselect._yaml import load_yaml_text, parse_yaml_mapping, read_yaml_source
from bandselect.errors import ConfigError
from bandselect.products.plan import GeoTiffMode, ProductKind, ProductPlan
from bandselect.settings import SettingsModel
from bandselect.stats import DEFAULT_N_BINS
from bandselect.training.config import TrainingConfig, load_recipe
from bandselect.validation import describe_validation_error, unknown_field_hints

__all__ = [
    "DEFAULT_PIPELINE",
    "DEMO_PIPELINE",
    "ExportSettings",
    "FlowConfig",
    "IngestSettings",
    "ProcessCampaignConfig",
    "SelectBandsConfig",
    "StatisticsSettings",
    "TrackingSettings",
    "demo_config",
    "load_config",
]

#: The pipeline used when a config names none: supervised mRMR picks one band in each of a blue, a green
#: and a red window (needs label masks; ``positive_label`` says which class is the target).
DEFAULT_PIPELINE: dict[str, Any] = {
    "nodes": {
        "selector": {
            "type": "SupervisedWindowedFalseRGBSelector",
            "config": {"num_spectral_bands": "auto"},
        }
    },
    "connections": [
        ["data.cube", "selector.cube"],
        ["data.wavelengths", "selector.wavelengths"],
        ["data.mask", "selector.mask"],
    ],
}


class IngestSettings(SettingsModel):
    """How archive files are read (see :func:`bandselect.store.ingest`).

    Attributes
    ----------
    wavelengths
        Band centres in nm for files whose header has none (one per band); ``None``: the header's.
    mask_nonfinite
        Store NaN/inf pixels masked instead of refusing the file.
    sort_bands
        Reorder bands by wavelength when a file lists them out of order (instead of refusing it).
    chunk
        Spatial chunk edge of the campaign store, in pixels.
    byte_order
        ``little`` or ``big``: overrides ENVI headers' byte order; ``None``: the header's (little-endian
        when it has none, recorded as a warning).
    allow_trailing_bytes
        Accept ENVI data files longer than their header says (recorded); else such a file is refused.
    reader
        ``auto`` (by file type) or ``gdal`` (every file through GDAL/rasterio).
    """

    wavelengths: list[float] | None = None
    mask_nonfinite: bool = False
    sort_bands: bool = False
    chunk: int = Field(256, ge=1)
    byte_order: Literal["little", "big"] | None = None
    allow_trailing_bytes: bool = False
    reader: Literal["auto", "gdal"] = "auto"


#: The most histogram bins per band: the partials hold bins × bands × classes counts per chunk, so
#: 65,536 bins on 400 bands and 3 classes is already 600 MB per partial.
MAX_BINS = 65_536


class StatisticsSettings(SettingsModel):
    """Campaign statistics (histograms and moments per class, computed with Dask).

    Attributes
    ----------
    n_bins
        Histogram bins per band (mutual information, ROC AUC); at most 65,536.
    nan_policy
        ``raise``: a NaN in a labelled pixel is an error; ``omit``: such pixels are left out.
    scheduler_address
        A Dask scheduler (``tcp://host:8786``); ``None``: ``$BANDSELECT_DASK_ADDRESS`` when set, else
        in process.
    device
        Where each chunk's partial is computed: ``None`` (NumPy; ``$BANDSELECT_STATISTICS_DEVICE`` when
        set), ``auto`` (CUDA where the worker has a GPU) or a torch device (``cpu``, ``cuda``, ``cuda:1``).
    """

    n_bins: int = Field(DEFAULT_N_BINS, ge=2, le=MAX_BINS)
    nan_policy: Literal["raise", "omit"] = "raise"
    scheduler_address: str | None = None
    device: str | None = Field(None, pattern=r"^(auto|cpu|cuda(:\d+)?)$")


class TrackingSettings(SettingsModel):
    """Where runs are recorded in MLflow.

    Attributes
    ----------
    tracking_uri
        MLflow tracking URI; ``None``: ``$MLFLOW_TRACKING_URI`` when set, else the working folder's store
        ``./.mlflow/mlflow.db``, shared by every flow run from that folder so a campaign's runs compare
        in one MLflow UI.
    experiment
        MLflow experiment of the runs.
    registered_model
        Register each run's selection model under this name; ``None``: log it only.
    """

    tracking_uri: str | None = None
    experiment: str = "bandselect"
    registered_model: str | None = None


_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_URL_MESSAGE = (
    "a local path (flow configs take local folders: their locks are local flocks); an object-store URL "
    "such as s3://bucket/campaign.zarr is used through the library (open_campaign, compute_statistics, "
    "the exports), see docs/scale.md"
)


def local_path_field(value: Any) -> Any:
    """Refuse URLs where a flow config takes a local path (``Path("s3://b/c")`` is ``s3:/b/c``, a local
    folder named ``s3:``, which a run would silently create)."""
    if isinstance(value, str) and _URL.match(value):
        raise ValueError(f"expected {_URL_MESSAGE}; found the URL {value!r}")
    return value


class ExportSettings(SettingsModel):
    """What a run exports and how.

    Attributes
    ----------
    products
        ``composite`` (RGB composites, the default) and/or ``bands`` (the reduced cube of the k selected
        bands). The first product listed is written to the flow's ``output``; the others to
        ``outputs[kind]``, by default ``<output stem>-<kind>.zarr`` beside it.
    outputs
        Paths of the products' zarr stores, by kind (optional; see ``products``).
    geotiff
        ``none``; ``tiff`` or ``cog`` (Cloud-Optimised): one georeferenced GeoTIFF per acquisition and
        product in ``geotiff_dir/<kind>/<acquisition id>.tif``, band descriptions = wavelengths.
    geotiff_dir
        Folder of the GeoTIFFs; default ``<output stem>-geotiff`` beside the output.
    previews
        Write a PNG preview of every composite.
    percentiles
        Contrast stretch of the previews: low and high percentile per channel.
    batch_size
        Acquisitions per export task run.
    """

    products: list[ProductKind] = Field(default_factory=lambda: ["composite"], min_length=1)
    outputs: dict[ProductKind, Path] = Field(default_factory=dict)
    geotiff: GeoTiffMode = "none"
    geotiff_dir: Path | None = None
    previews: bool = True
    percentiles: tuple[float, float] = (1.0, 99.0)
    batch_size: int = Field(32, ge=1)

    @field_validator("geotiff_dir", mode="before")
    @classmethod
    def _local_geotiff_dir(cls, value: Any) -> Any:
        return local_path_field(value)

    @field_validator("outputs", mode="before")
    @classmethod
    def _local_outputs(cls, value: Any) -> Any:
        if isinstance(value, dict):
            for path in value.values():
                local_path_field(path)
        return value

    @field_validator("percentiles")
    @classmethod
    def _ordered(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not 0.0 <= value[0] < value[1] <= 100.0:
            raise ValueError("percentiles must satisfy 0 <= low < high <= 100, e.g. [1, 99]")
        return value

    @field_validator("products")
    @classmethod
    def _distinct(cls, value: list[ProductKind]) -> list[ProductKind]:
        if len(set(value)) != len(value):
            raise ValueError(f"each product once, e.g. [composite, bands] (found {value})")
        return value

    @model_validator(mode="after")
    def _outputs_of_products(self) -> ExportSettings:
        extra = sorted(set(self.outputs) - set(self.products))
        if extra:
            raise ValueError(
                f"outputs names {extra}, which products does not list: add it to products or drop it"
            )
        return self


class FlowConfig(SettingsModel):
    """Settings shared by the flows.

    Attributes
    ----------
    campaign
        Campaign name (tags in Prefect and MLflow, provenance).
    store
        Campaign store (zarr); created from ``archive`` when missing.
    output
        Store (zarr) of the first product of ``export.products`` (by default the composites), one group
        per acquisition; see ``export`` for the other products and GeoTIFFs.
    archive
        Folder of source cubes to ingest first (read only); ``None``: use the store as it is.
    work_dir
        Saved pipelines, plots and PNG previews; ``None``: ``<output>.work`` next to the output.
    pipeline
        Pipeline in the seed's YAML form: a mapping, or the path of a YAML file (with a ``pipeline:``
        section or ``nodes``/``connections`` at the top); ``None``: a supervised selector in blue, green
        and red windows (:data:`DEFAULT_PIPELINE`). ``input_channels: auto`` /
        ``num_spectral_bands: auto`` take the campaign's band count.
    selector
        Name of the selector node; ``None``: the first band selector of the pipeline.
    positive_label
        Which mask class is the target for supervised selectors: ``None`` means labels > 0 are positive
        (binary masks); an int makes that class positive and every other class negative.
    ignore_label
        A mask class whose pixels count nowhere, for example 0 for unlabelled ground truth or 255 for no
        data: the selection statistics leave it out before the target class is compared with the rest.
        ``None`` (default) ignores nothing. It may be absent from the campaign (nothing is then left
        out) but must differ from ``positive_label``; a pipeline whose training loss or metric reads the
        mask cannot train with it (the run stops before any work).
    ingest
        How archive files are read.
    statistics
        Campaign statistics.
    training
        Training of learnable selectors (patches, split, optimiser, schedule).
    tracking
        MLflow.
    export
        Products and previews.
    lock_timeout_s
        Seconds to wait for another run holding the store/output lock.
    """

    campaign: str = Field(min_length=1)
    store: Path
    output: Path
    archive: Path | None = None
    work_dir: Path | None = None
    pipeline: dict[str, Any] | str | None = None
    selector: str | None = None
    positive_label: int | None = Field(None, ge=1)
    ignore_label: int | None = Field(None, ge=0)
    ingest: IngestSettings = IngestSettings()
    statistics: StatisticsSettings = StatisticsSettings()
    training: TrainingConfig = TrainingConfig()
    tracking: TrackingSettings = TrackingSettings()
    export: ExportSettings = ExportSettings()
    lock_timeout_s: float = Field(3600.0, gt=0)

    @field_validator("store", "output", "archive", "work_dir", mode="before")
    @classmethod
    def _local_paths(cls, value: Any) -> Any:
        return local_path_field(value)

    @model_validator(mode="after")
    def _distinct_paths(self) -> FlowConfig:
        store, output = self.store.expanduser().absolute(), self.output.expanduser().absolute()
        if store == output:
            raise ValueError("store and output must be different paths (e.g. store.zarr and composites.zarr)")
        if self.archive is not None and self.archive.expanduser().absolute() in (store, output):
            raise ValueError("archive must be the folder of source files, not the store or the output")
        plan = self.product_plan()
        written = [Path(p).expanduser().absolute() for p in plan.outputs.values()]
        if plan.geotiff_dir is not None:
            written.append(Path(plan.geotiff_dir).expanduser().absolute())
        sources = {store} | ({self.archive.expanduser().absolute()} if self.archive is not None else set())
        if len(set(written)) != len(written) or sources & set(written):
            raise ValueError(
                "every product (export.products, export.outputs, export.geotiff_dir) needs a path of its "
                "own, apart from the store and the archive"
            )
        return self

    def product_plan(self) -> ProductPlan:
        """The products to export and where (see :class:`ExportSettings`)."""
        stem = self.output.name.removesuffix(".zarr")
        outputs: dict[str, str] = {}
        for position, kind in enumerate(self.export.products):
            default = self.output if position == 0 else self.output.with_name(f"{stem}-{kind}.zarr")
            outputs[kind] = str(self.export.outputs.get(kind, default))
        geotiff_dir = None
        if self.export.geotiff != "none":
            geotiff_dir = str(self.export.geotiff_dir or self.output.with_name(f"{stem}-geotiff"))
        return ProductPlan(outputs, geotiff=self.export.geotiff, geotiff_dir=geotiff_dir)

    @property
    def resolved_work_dir(self) -> Path:
        """``work_dir``, or ``<output>.work`` next to the output."""
        if self.work_dir is not None:
            return self.work_dir
        return self.output.with_name(self.output.name.removesuffix(".zarr") + ".work")

    @property
    def plots_dir(self) -> Path:
        """Where the run's figures are written."""
        return self.resolved_work_dir / "plots"

    @property
    def previews_dir(self) -> Path:
        """Where the per-acquisition RGB previews are written."""
        return self.resolved_work_dir / "previews"

    def pipeline_mapping(self) -> dict[str, Any]:
        """The pipeline as a mapping (read from its YAML file when ``pipeline`` is a path).

        Raises
        ------
        ConfigError
            The YAML file is missing or is not a pipeline mapping.
        """
        if self.pipeline is None:
            return copy.deepcopy(DEFAULT_PIPELINE)
        if isinstance(self.pipeline, dict):
            mapping = copy.deepcopy(self.pipeline)
        else:
            path = Path(self.pipeline).expanduser()
            if not path.is_file():
                raise ConfigError(
                    "pipeline",
                    expected="a mapping or the path of a pipeline YAML file",
                    found=f"{self.pipeline!r} (no such file)",
                    fix="give the path relative to the config file, or inline the nodes/connections",
                )
            mapping = load_yaml_text(
                path.read_text(encoding="utf-8"),
                f"pipeline file {path}",
                fix="fix the YAML at the line named (indentation, brackets, colons)",
            )
        if isinstance(mapping, dict) and "pipeline" in mapping and "nodes" not in mapping:
            mapping = mapping["pipeline"]
        if not isinstance(mapping, dict) or "nodes" not in mapping:
            raise ConfigError(
                "pipeline",
                expected="a mapping with 'nodes' and 'connections' (the seed's YAML form)",
                found=type(mapping).__name__ if not isinstance(mapping, dict) else f"keys {sorted(mapping)}",
                fix="see configs/select_bands.yaml",
            )
        return mapping

    def tracking_uri(self) -> str:
        """The MLflow tracking URI this run logs to."""
        from bandselect.tracking import resolve_tracking_uri

        return resolve_tracking_uri(self.tracking.tracking_uri, Path.cwd())


class SelectBandsConfig(FlowConfig):
    """Settings of the select-bands flow (:func:`bandselect.flows.select_bands`); ``archive`` optional."""


class ProcessCampaignConfig(FlowConfig):
    """Settings of the scheduled process-campaign flow (:func:`bandselect.flows.process_campaign`);
    ``archive`` required: it is watched for new files."""

    archive: Path  # type: ignore[assignment]


ConfigT = TypeVar("ConfigT", bound=FlowConfig)

_PATH_KEYS = ("store", "output", "archive", "work_dir")


def _resolve_relative(data: dict[str, Any], base: Path) -> dict[str, Any]:
    resolved = dict(data)
    for key in _PATH_KEYS:
        if key in resolved:
            resolved[key] = resolve_against(resolved[key], base)
    pipeline = resolved.get("pipeline")
    if isinstance(pipeline, str) and not Path(pipeline).expanduser().is_absolute():
        resolved["pipeline"] = os.path.normpath(base / pipeline)
    export = resolved.get("export")
    if isinstance(export, dict):
        export = dict(export)
        if isinstance(export.get("outputs"), dict):
            export["outputs"] = {k: resolve_against(v, base) for k, v in export["outputs"].items()}
        if "geotiff_dir" in export:
            export["geotiff_dir"] = resolve_against(export["geotiff_dir"], base)
        resolved["export"] = export
    return resolved


def resolve_against(value: Any, base: Path) -> Any:
    """``value`` as a path under ``base`` when it is a relative path string; anything else as it is."""
    if (
        isinstance(value, str)
        and value
        and not _URL.match(value)
        and not Path(value).expanduser().is_absolute()
    ):
        return os.path.normpath(base / value)
    return value


def load_config(source: str | os.PathLike[str] | dict[str, Any], model: type[ConfigT]) -> ConfigT:
    """Validate a config mapping or YAML file into ``model``.

    Parameters
    ----------
    source
        A mapping, or the path of a YAML file (relative paths inside are relative to the file).
    model
        :class:`SelectBandsConfig` or :class:`ProcessCampaignConfig`.

    Raises
    ------
    ConfigError
        Missing file, not YAML, not a mapping, or invalid fields (each one named with what was found).
    """
    if isinstance(source, dict):
        data, where = source, "config"
    else:
        path = Path(source)
        text, _ = read_yaml_source(
            path, "config", error=ConfigError, fix="check the path; start from configs/select_bands.yaml"
        )
        data = parse_yaml_mapping(
            text,
            f"config {path}",
            expected="a mapping of settings (campaign, store, output, ...)",
            fix="start from configs/select_bands.yaml",
            yaml_fix="fix the YAML syntax at the line named",
        )
        data, where = _resolve_relative(data, path.resolve().parent), f"config {path}"
    fields = ", ".join(sorted(model.model_fields))
    return validate_model(
        model,
        data,
        where,
        expected=f"a valid {model.__name__} (fields: {fields})",
        fix="correct the fields named above; see configs/select_bands.yaml for every setting",
    )


ModelT = TypeVar("ModelT", bound=BaseModel)


def validate_model(model: type[ModelT], data: Any, where: str, *, expected: str, fix: str) -> ModelT:
    """``model.model_validate(data)``; a :class:`ConfigError` naming every invalid field, with what was
    found, when it fails (used by every flow config)."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        problems = describe_validation_error(error)
        fix = "; ".join([*unknown_field_hints(model, error), fix])
        raise ConfigError(where, expected=expected, found=problems, fix=fix) from error


#: The demo's pipeline: the two-phase recipe (``bandselect/recipes/two_phase.yaml``): a
#: SoftChannelSelector from uniform logits, trained through an RX detector and a BCE loss against the
#: anomaly masks, with entropy and diversity regularizers; the epoch is kept by the held-out RX AUROC of
#: its hard selection on the validation rows.
DEMO_PIPELINE: dict[str, Any] = load_recipe()["pipeline"]


def demo_config(directory: str | os.PathLike[str]) -> SelectBandsConfig:
    """The config ``bandselect demo`` runs (``configs/demo.yaml`` holds the same settings).

    A synthetic campaign in ``<directory>/campaign.zarr``, composites in ``<directory>/composites.zarr``,
    plots and previews in ``<directory>/composites.work``, MLflow in ``<directory>/mlflow``; the two-phase
    pipeline trained for 20 epochs on 48 × 48 patches (lr 0.2), keeping the epoch whose hard selection
    scores best on the validation rows (the recipe's schedule; see ``bandselect/recipes/two_phase.yaml``).
    """
    root = Path(directory).resolve()
    database = root / "mlflow" / "mlflow.db"
    database.parent.mkdir(parents=True, exist_ok=True)
    return SelectBandsConfig(
        campaign="demo",
        store=root / "campaign.zarr",
        output=root / "composites.zarr",
        pipeline=copy.deepcopy(DEMO_PIPELINE),
        statistics=StatisticsSettings(n_bins=512),
        training=TrainingConfig(epochs=20),  # the recipe's schedule, 20 epochs
        tracking=TrackingSettings(tracking_uri=f"sqlite:///{database}", experiment="bandselect-demo"),
    )
