"""The ``compare_selectors`` flow: which selector should I use on this labelled scene, and how sure is it?

One pydantic config (loadable from YAML, see ``configs/compare_selectors.yaml``) names the scene, the
class to detect (or ``multiclass: true`` to compare every class), an ``ignore_label`` for unlabelled
pixels (a store's invalid pixels count nowhere either), the selectors with their configs, the spatial
split and the stability bootstrap.
The flow fits every selector on the train blocks, scores it on the held-out blocks
(:func:`bandselect.evaluation.compare.compare_selections`: AUROC of one class against the rest;
:func:`bandselect.evaluation.compare_classes.compare_classes`: overall accuracy and kappa of a
classifier, every block held out once, for ``k`` in ``multiclass_k`` beside all bands and random
``k``), and logs **one parent MLflow run** (tagged
with the Prefect flow run and the campaign) with **one child run per selector**. The leaderboard goes to
MLflow (``leaderboard.json``, ``leaderboard.csv``, ``plots/leaderboard*.png``), to Prefect (a table
artifact) and to the output folder; ``bandselect report PARENT_RUN_ID`` turns the run into an HTML page.

Selectors that do not apply to the sensor (wavelength targets or windows outside its range) stay in the
leaderboard as ``"not applicable: <message>"``; any other error fails the flow.

Example
-------
>>> from bandselect.flows.compare_selectors import CompareSelectorsConfig, compare_selectors
>>> config = CompareSelectorsConfig.from_yaml("configs/compare_selectors.yaml")  # doctest: +SKIP
>>> result = compare_selectors(config)                                             # doctest: +SKIP
>>> result.parent_run_id, result.leaderboard_json                                  # doctest: +SKIP
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from prefect import flow
from prefect.task_runners import ThreadPoolTaskRunner
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bandselect._yaml import is_yaml_path, parse_yaml_mapping, read_yaml_source
from bandselect.errors import ConfigError, InputError
from bandselect.evaluation.classification import CLASSIFIERS
from bandselect.evaluation.compare import (
    MEASURES,
    SELECTOR_TYPES,
    SelectorSpec,
    SplitSettings,
    StabilitySettings,
    default_selector_specs,
)
from bandselect.evaluation.compare_classes import DEFAULT_KS, default_multiclass_selector_specs
from bandselect.evaluation.leaderboard import CLASSIFICATION_MEASURES
from bandselect.flows._ephemeral import guard_ephemeral_server
from bandselect.flows.config import local_path_field, resolve_against, validate_model
from bandselect.settings import SettingsModel
from bandselect.training.config import TrainingConfig

__all__ = [
    "CompareSelectorsConfig",
    "ComparisonResult",
    "SceneConfig",
    "SelectorConfig",
    "compare_selectors",
]

_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class _Strict(SettingsModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SceneConfig(_Strict):
    """The labelled scene: a file (``.npz`` with ``gt``/``mask``, ENVI, ``.mat``) or a campaign store.

    Attributes
    ----------
    path
        The scene's file, or a campaign store (then ``acquisition`` names the group).
    acquisition
        In a campaign store: the acquisition to compare on; ``None``: the store's only acquisition.
    """

    path: Path
    acquisition: str | None = None
    label: int | None = Field(
        default=None, description="class to detect against the rest; None when the mask is binary"
    )
    multiclass: bool = Field(default=False, description="compare every class (no label): a classification")
    ignore_label: int | None = Field(
        default=None,
        description="the label of unlabelled pixels (e.g. 0), left out of everything (binary or multi-class)",
    )
    sort_bands: bool = Field(
        default=False,
        description="a file listing its bands out of wavelength order (overlapping spectrometers, e.g. "
        "AVIRIS): read them sorted by wavelength (a campaign store is sorted already)",
    )

    @field_validator("path", mode="before")
    @classmethod
    def _local_scene(cls, value: Any) -> Any:
        return local_path_field(value)  # a URL would become a local path named "s3:"

    @model_validator(mode="after")
    def _one_task(self) -> SceneConfig:
        if self.multiclass and self.label is not None:
            raise ValueError("scene.label and scene.multiclass exclude each other: one class, or every class")
        if self.ignore_label is not None and self.label is not None and self.ignore_label == self.label:
            raise ValueError("scene.ignore_label equals scene.label: the class to detect cannot be ignored")
        return self


class SelectorConfig(_Strict):
    """A selector: registered type and constructor arguments (band counts are filled in from the cube).

    Attributes
    ----------
    type
        A registered selector type, e.g. ``SupervisedFullSpectrumBandSelector``.
    config
        Its constructor arguments (band counts are filled in from the cube when absent).
    train
        A learnable selector (``SoftChannelSelector``, ``ConcreteBandSelector``) is trained on the train
        blocks; ``false``: its statistical initialisation is compared instead.
    training
        Fields of its training settings to override (see ``learnable_training``), e.g. ``{epochs: 80}``.
    bootstrap
        Whether the stability bootstrap refits it; ``None``: yes, except for a trained learnable selector
        (each resample would retrain it).
    """

    type: str
    config: dict[str, Any] = Field(default_factory=dict)
    train: bool = True
    training: dict[str, Any] | None = None
    bootstrap: bool | None = None

    @field_validator("type")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in SELECTOR_TYPES:
            raise ValueError(f"unknown selector type {value!r}; expected one of {', '.join(SELECTOR_TYPES)}")
        return value

    @field_validator("training")
    @classmethod
    def _training_fields(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        unknown = sorted(set(value or {}) - set(TrainingConfig.model_fields))
        if unknown:
            raise ValueError(
                f"unknown training fields {unknown}; expected fields of TrainingConfig, e.g. epochs"
            )
        return value


class CompareSelectorsConfig(_Strict):
    """Compare band selectors on one labelled scene: held-out spatial blocks, baselines, stability.

    Attributes
    ----------
    scene
        The labelled scene.
    campaign
        Name tagged on the MLflow runs (``bandselect.campaign``); default the scene's file name.
    k
        Bands of the selectors whose count is configurable, in the default selector set.
    multiclass_k
        Multi-class scenes: the band counts of the default selector set (each configurable selector once
        per ``k``; the random baseline likewise).
    classifier
        Multi-class scenes: ``"logistic"`` or ``"lda"``, the classifier behind overall accuracy and kappa.
    selectors
        Leaderboard name → selector; ``None``: every seed selector that applies
        (:func:`bandselect.evaluation.compare.default_selector_specs`). Names may hold letters, digits,
        ``_ . -`` (they become MLflow keys and file names).
    split, stability
        Split and bootstrap settings.
    measures
        Measures to compute; the first ranks the leaderboard. Multi-class scenes: overall accuracy and
        kappa (the binary default is replaced by them).
    n_random_draws, folds, seed
        Random-baseline draws, cross-validation folds (multi-class: block folds), seed of both.
    experiment
        MLflow experiment name.
    tracking_uri
        MLflow tracking URI; ``None``: ``MLFLOW_TRACKING_URI`` when set, else the embedded store
        ``sqlite:///<cwd>/.mlflow/mlflow.db``.
    output_dir
        Folder for the PNGs, ``leaderboard.json`` and ``leaderboard.csv`` (one subfolder per parent run).
    """

    scene: SceneConfig
    campaign: str | None = None
    k: int = Field(default=3, ge=3)
    multiclass_k: tuple[int, ...] = DEFAULT_KS
    classifier: str = "logistic"
    selectors: dict[str, SelectorConfig] | None = None
    split: SplitSettings = SplitSettings()
    stability: StabilitySettings = StabilitySettings()
    measures: tuple[str, ...] = MEASURES
    n_random_draws: int = Field(default=20, ge=1)
    folds: int = Field(default=5, ge=2)
    seed: int = 0
    experiment: str = "compare-selectors"
    tracking_uri: str | None = None
    output_dir: Path = Path(".compare")

    @field_validator("output_dir", mode="before")
    @classmethod
    def _local_output(cls, value: Any) -> Any:
        return local_path_field(value)

    @field_validator("selectors")
    @classmethod
    def _names(cls, value: dict[str, SelectorConfig] | None) -> dict[str, SelectorConfig] | None:
        if value is not None:
            if not value:
                raise ValueError("selectors is empty; omit it for the default set or name at least one")
            bad = [name for name in value if not _NAME_PATTERN.match(name)]
            if bad:
                raise ValueError(f"selector names {bad} must match {_NAME_PATTERN.pattern}")
        return value

    @field_validator("measures")
    @classmethod
    def _measures(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        known = (*MEASURES, *CLASSIFICATION_MEASURES)
        unknown = [m for m in value if m not in known]
        if not value or unknown:
            raise ValueError(f"measures {list(value)}: expected a non-empty subset of {list(known)}")
        return value

    @field_validator("multiclass_k")
    @classmethod
    def _band_counts(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if not value or any(k < 3 for k in value):
            raise ValueError(f"multiclass_k {list(value)}: expected band counts >= 3 (composites need three)")
        return value

    @field_validator("classifier")
    @classmethod
    def _classifier(cls, value: str) -> str:
        if value not in CLASSIFIERS:
            raise ValueError(f"classifier {value!r}: expected one of {list(CLASSIFIERS)}")
        return value

    @model_validator(mode="after")
    def _campaign(self) -> CompareSelectorsConfig:
        if self.scene.multiclass:
            if self.measures == MEASURES:  # the binary default: a classification has its own measures
                object.__setattr__(self, "measures", CLASSIFICATION_MEASURES)
            wrong = [m for m in self.measures if m not in CLASSIFICATION_MEASURES]
            if wrong:
                raise ValueError(
                    f"measures {wrong} are binary (AUROC); a multi-class scene has "
                    f"{list(CLASSIFICATION_MEASURES)}"
                )
        elif any(m in CLASSIFICATION_MEASURES for m in self.measures):
            raise ValueError(
                f"measures {list(CLASSIFICATION_MEASURES)} need a multi-class scene (scene.multiclass: true)"
            )
        if self.campaign is None:
            suffix = "" if self.scene.label is None else f"-class{self.scene.label}"
            if self.scene.multiclass:
                suffix = "-multiclass"
            object.__setattr__(self, "campaign", f"{self.scene.path.stem}{suffix}")
        return self

    def resolved_selectors(self) -> dict[str, dict[str, Any]]:
        """The selectors to run as ``{name: {"type", "config", "train", "training", "bootstrap"}}``.

        Defaults expanded (:func:`bandselect.evaluation.compare.default_selector_specs`, or
        :func:`~bandselect.evaluation.compare.default_multiclass_selector_specs` for a multi-class scene).
        """
        chosen: Mapping[str, SelectorConfig | SelectorSpec]
        if self.selectors is not None:
            chosen = self.selectors
        elif self.scene.multiclass:
            chosen = default_multiclass_selector_specs(self.multiclass_k)
        else:
            chosen = default_selector_specs(self.k)
        return {
            name: {
                "type": s.type,
                "config": dict(s.config),
                "train": s.train,
                "training": None if s.training is None else dict(s.training),
                "bootstrap": s.bootstrap,
            }
            for name, s in chosen.items()
        }

    @classmethod
    def from_yaml(cls, path_or_text: str | os.PathLike[str]) -> CompareSelectorsConfig:
        """Load from a YAML file (or YAML text), with ``yaml.safe_load``.

        Relative ``scene.path`` and ``output_dir`` in a file are relative to the file's folder, as in
        every flow config (``bandselect run`` takes them so); in YAML text, to the working folder.

        Raises
        ------
        ConfigError
            Unreadable YAML or a config that does not validate; the message lists every problem.
        """
        text, where = read_yaml_source(
            path_or_text, "compare_selectors config", error=ConfigError, fix="check the path"
        )
        data = parse_yaml_mapping(
            text,
            f"compare_selectors config ({where})",
            expected="a mapping with at least scene: {path: ...}",
            fix="see configs/compare_selectors.yaml",
            yaml_fix="fix the YAML",
        )
        if is_yaml_path(path_or_text):
            data = _relative_paths(data, Path(path_or_text).resolve().parent)
        return _validated(data, f"compare_selectors config ({where})")


def _relative_paths(data: dict[str, Any], base: Path) -> dict[str, Any]:
    """``data`` with its relative ``scene.path`` and ``output_dir`` made relative to ``base``."""
    resolved = dict(data)
    scene = resolved.get("scene")
    if isinstance(scene, dict) and "path" in scene:  # a missing path stays missing (a "required" error)
        resolved["scene"] = {**scene, "path": resolve_against(scene["path"], base)}
    if "output_dir" in resolved:
        resolved["output_dir"] = resolve_against(resolved["output_dir"], base)
    return resolved


def _validated(data: Any, where: str) -> CompareSelectorsConfig:
    return validate_model(
        CompareSelectorsConfig,
        data,
        where,
        expected="a valid configuration",
        fix="see configs/compare_selectors.yaml",
    )


class ComparisonResult(BaseModel):
    """What :func:`compare_selectors` returns: MLflow run ids, output files and the leaderboard records."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    parent_run_id: str
    child_run_ids: dict[str, str]
    tracking_uri: str
    output_dir: Path
    leaderboard_json: Path
    table_artifact_key: str
    records: list[dict[str, Any]]
    #: The leaderboard's measures, ranking measure first (AUROCs, or accuracy and kappa for classes).
    measures: list[str] = []
    #: The parent run's page in the MLflow UI (a local store: where `mlflow ui` serves).
    mlflow_link: str | None = None


def _check_scene_path(path: Path) -> None:
    """Before any task: the scene exists (a typo fails in a second, not after the Prefect task starts)."""
    if not path.exists():
        raise InputError(
            f"scene {path}",
            expected="an existing scene file (.npz, ENVI, .mat, GeoTIFF, HDF5) or campaign store",
            found="no such path",
            fix="check scene.path (in a config file, relative paths are relative to the file's folder)",
        )


def _coerce(
    config: CompareSelectorsConfig | dict[str, Any] | str | os.PathLike[str],
) -> CompareSelectorsConfig:
    if isinstance(config, CompareSelectorsConfig):
        return config
    if isinstance(config, dict):
        return _validated(config, "compare_selectors config")
    return CompareSelectorsConfig.from_yaml(config)


#: Selectors compared at once (each task's torch and BLAS use the cores too).
PARALLEL_SELECTORS = max(1, min(4, (os.cpu_count() or 1) // 2))


@flow(
    name="compare-selectors",
    validate_parameters=False,
    task_runner=ThreadPoolTaskRunner(max_workers=PARALLEL_SELECTORS),
)
def compare_selectors(
    config: CompareSelectorsConfig | dict[str, Any] | str | os.PathLike[str],
) -> ComparisonResult:
    """Compare selectors on one labelled scene; log a parent MLflow run with one child per selector.

    Parameters
    ----------
    config
        A :class:`CompareSelectorsConfig`, its dict form, or a YAML path.

    Returns
    -------
    ComparisonResult
        Parent and child run ids, where the files are, the Prefect table artifact key and the
        leaderboard records (best first).
    """
    from prefect.futures import as_completed

    from bandselect import tracking
    from bandselect.evaluation.leaderboard import selector_progress
    from bandselect.progress import SELECTORS_STEP, report
    from bandselect.tasks.compare import (
        compare_task,
        log_comparison_task,
        merge_leaderboards_task,
        publish_table_task,
        render_comparison_task,
    )
    from bandselect.tasks.progress import prefect_progress

    guard_ephemeral_server()  # a killed run must not leave Prefect's temporary server behind
    settings = _coerce(config)
    _check_scene_path(settings.scene.path)
    campaign = str(settings.campaign)
    selectors = settings.resolved_selectors()
    # The scene's fields are load_labelled_scene's arguments: every task loads it from them.
    scene = settings.scene.model_dump(mode="json")
    common: dict[str, Any] = {
        "classifier": settings.classifier,
        "split": settings.split,
        "stability": settings.stability,
        "measures": list(settings.measures),
        "n_random_draws": settings.n_random_draws,
        "folds": settings.folds,
        "seed": settings.seed,
    }
    # One task per selector (each logs its own progress and training epochs), then the baselines for
    # every k the selectors chose; the parts merge into one leaderboard.
    futures = {
        name: compare_task.with_options(task_run_name=f"compare-{name}").submit(
            scene, {name: spec}, baselines=False, **common
        )
        for name, spec in selectors.items()
    }
    parts = []
    with prefect_progress(campaign, "comparison", SELECTORS_STEP):
        for done, future in enumerate(as_completed(list(futures.values())), start=1):
            part = future.result()
            parts.append(part)
            report(SELECTORS_STEP, done, len(futures), "; ".join(map(selector_progress, part.selector_rows)))
    order = list(futures)
    parts.sort(key=lambda part: order.index(part.selector_rows[0].name))
    ks = sorted(
        {row.selection.k for part in parts for row in part.selector_rows if row.selection is not None}
    )
    baseline_part = compare_task.with_options(task_run_name="compare-baselines")(
        scene, {}, baselines=True, random_ks=ks, **common
    )
    leaderboard = merge_leaderboards_task([*parts, baseline_part])
    uri = tracking.resolve_tracking_uri(settings.tracking_uri, Path.cwd())
    logged_config = settings.model_dump(mode="json")
    logged_config["selectors"] = selectors
    logged_config["tracking_uri"] = uri
    with tracking.start_run(
        settings.experiment,
        campaign=campaign,
        tracking_uri=uri,
        tags={"bandselect.flow": "compare-selectors"},
    ) as parent:
        parent_run_id = parent.info.run_id
        output_dir = Path(settings.output_dir) / parent_run_id
        figures = render_comparison_task(
            leaderboard,
            scene,
            str(output_dir),
            title=f"Selector comparison, {campaign}",
        )
        children = log_comparison_task(leaderboard, figures, parent_run_id, logged_config)
        key = publish_table_task(leaderboard, campaign, parent_run_id)
    return ComparisonResult(
        parent_run_id=parent_run_id,
        child_run_ids=children,
        tracking_uri=uri,
        output_dir=output_dir,
        leaderboard_json=figures.leaderboard_json,
        table_artifact_key=key,
        records=leaderboard.records(),
        measures=list(leaderboard.measures),
        mlflow_link=tracking.mlflow_run_link(uri, parent.info.experiment_id, parent_run_id),
    )
