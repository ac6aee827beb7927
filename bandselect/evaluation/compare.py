"""Compare band selectors on one labelled scene: fit on a spatial train part, score the held-out part.

:func:`compare_selections` is the library half of the ``compare_selectors`` flow (no Prefect, no MLflow):

1. The scene is cut into a grid of contiguous blocks; a fraction of the blocks is held out for testing
   (:func:`bandselect.evaluation.spatial_block_split`, drawn so both classes are on both sides).
2. Every selector is fitted on the **train blocks only**. The train blocks are stacked as a batch
   ``(B, h, w, C)`` of equal-size tiles (each cropped to the smallest block, which drops at most one row
   and one column of a block), so selectors that look at spatial structure (``HighContrastBandSelector``)
   see real neighbourhoods and supervised selectors see only training labels.
3. The selected bands are scored on the **test blocks** by the measures in :data:`MEASURES`.
4. Baselines under the same measures: all bands, and ``n_random_draws`` random draws of ``k`` bands
   (mean ± standard deviation) for every ``k`` used by a selector.
5. Band stability per selector (:func:`bandselect.evaluation.band_stability`): bootstrap over the train
   tiles (each resample draws as many tiles, with replacement, and refits the selector), with the
   instability flag. The "full data" selection of the stability result is the selection that was scored.

A selector whose wavelength targets or windows the sensor does not cover raises
:class:`~bandselect.errors.WavelengthError`; its row stays in the leaderboard with the status
``"not applicable: <message>"`` and no scores (never a silent skip). Every other error propagates.

Every selector, whatever its type, goes through the same path: built from its spec, initialised from the
statistics it requests of the train tiles (:func:`bandselect.training.fitting.fit_node`), **trained when
it is a learnable selector** (recognised by its capabilities,
:func:`bandselect.training.learnable.is_learnable_selector`: ``SoftChannelSelector``,
``ConcreteBandSelector``), then asked for its :class:`~bandselect.selection.BandSelection`. A learnable
selector is trained on the train blocks only, by the shipped two-phase recipe
(:func:`bandselect.training.learnable.train_selector`): the train tiles side by side form one image,
the top ``LEARNABLE_VAL_ROWS[0]`` of every tile trains (gradient steps), the rest validates (picks the
epoch), and the held-out test blocks score it like every other selector. Its training curves are kept in
its row (:attr:`LeaderboardRow.history`). ``SelectorSpec(train=False)`` reports a learnable selector's
statistical initialisation instead (e.g. the variance initialisation's hard top-k); an untrained one
without any initialisation is refused. ``TopKIndices`` is a utility node, not a selector, and is refused.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from bandselect.errors import ConfigError, LabelError, ShapeError, WavelengthError
from bandselect.evaluation.leaderboard import (
    MEASURE_LABELS,
    MEASURES,
    NOT_APPLICABLE,
    STATUS_OK,
    Leaderboard,
    LeaderboardRow,
)
from bandselect.evaluation.metrics import (
    logistic_auroc,
    logistic_holdout_auroc,
    random_band_baseline,
    rx_auroc,
)
from bandselect.evaluation.split import SpatialSplit, _label_image, block_grid, spatial_block_split
from bandselect.evaluation.stability import band_stability
from bandselect.labels import binary_labels
from bandselect.pipeline.config import resolve_band_counts
from bandselect.selection import BandSelection
from bandselect.spectral import validate_wavelengths
from bandselect.training.config import TrainingConfig, load_recipe, training_config
from bandselect.training.fitting import fit_node
from bandselect.training.learnable import is_learnable_selector, train_selector
from bandselect.training.samplers import row_range
from bandselect.training.two_phase import TwoPhaseResult

__all__ = [
    "LEARNABLE_VAL_ROWS",
    "MEASURES",
    "MEASURE_LABELS",
    "SELECTOR_TYPES",
    "STATUS_OK",
    "Leaderboard",
    "LeaderboardRow",
    "SelectorSpec",
    "SplitSettings",
    "StabilitySettings",
    "compare_selections",
    "default_selector_specs",
    "fit_selector",
    "learnable_training",
    "select_bands",
]

#: The node types a comparison accepts.
SELECTOR_TYPES: tuple[str, ...] = (
    "SoftChannelSelector",
    "ConcreteBandSelector",
    "BaselineFalseRGBSelector",
    "CIRFalseColorSelector",
    "HighContrastBandSelector",
    "SupervisedCIRBandSelector",
    "SupervisedWindowedFalseRGBSelector",
    "SupervisedFullSpectrumBandSelector",
)


#: Rows of every train tile a learnable selector trains on, and the rows that pick its epoch.
LEARNABLE_TRAIN_ROWS = (0.0, 0.75)
LEARNABLE_VAL_ROWS = (0.75, 1.0)


@dataclass(frozen=True)
class SelectorSpec:
    """A selector to compare: a registered node type, its constructor arguments, how it is fitted.

    ``num_spectral_bands`` (supervised selectors) and ``input_channels`` (the learnable selectors) are
    filled in from the cube when absent.

    Attributes
    ----------
    type, config
        The node type and its constructor arguments.
    train
        Train a learnable selector on the train blocks (default); False: report its statistical
        initialisation. Ignored for selectors that do not learn.
    training
        Fields of :class:`~bandselect.training.TrainingConfig` overriding :func:`learnable_training`'s
        settings for the train tiles (e.g. ``{"epochs": 80}``); None: those settings.
    bootstrap
        Whether the stability bootstrap refits this selector; None: yes, except for a trained learnable
        selector (each resample would retrain it: 20 trainings for the default 20 resamples).
    """

    type: str
    config: Mapping[str, Any] = field(default_factory=dict)
    train: bool = True
    training: Mapping[str, Any] | None = None
    bootstrap: bool | None = None

    def __post_init__(self) -> None:
        if self.type not in SELECTOR_TYPES:
            hint = (
                "TopKIndices is a utility that turns weights into indices, not a selector; "
                if self.type == "TopKIndices"
                else ""
            )
            raise ConfigError(
                f"selector type {self.type!r}",
                expected=f"one of {', '.join(SELECTOR_TYPES)}",
                found=repr(self.type),
                fix=hint + "use one of the listed selector types",
            )
        if not isinstance(self.config, Mapping):
            raise ConfigError(
                f"config of selector type {self.type}",
                expected="a mapping of constructor arguments",
                found=type(self.config).__name__,
                fix="write config as {name: value}",
            )
        if self.training is not None:
            unknown = sorted(set(self.training) - set(TrainingConfig.model_fields))
            if not isinstance(self.training, Mapping) or unknown:
                raise ConfigError(
                    f"training of selector type {self.type}",
                    expected=f"a mapping of TrainingConfig fields ({', '.join(TrainingConfig.model_fields)})",
                    found=f"unknown fields {unknown}" if unknown else type(self.training).__name__,
                    fix="write training as {epochs: 60, lr: 0.2}",
                )


def default_selector_specs(k: int = 3) -> dict[str, SelectorSpec]:
    """Every seed selector that applies to a labelled scene, with ``k`` bands where it is configurable.

    Returns
    -------
    dict of str to SelectorSpec
        Names (as shown in the leaderboard) to specs: the two learnable selectors trained on the train
        blocks (``SoftChannelSelector`` from its variance initialisation and ``ConcreteBandSelector``,
        both seeded), the variance initialisation itself (hard top-``k``, untrained), true-colour and
        CIR fixed wavelengths, high contrast, and the three supervised selectors with
        ``criterion="mrmr"`` and ``criterion="separability"``.
    """
    specs = {
        "soft_trained": SelectorSpec(
            "SoftChannelSelector", {"n_select": k, "init_method": "variance", "seed": 0}
        ),
        "concrete_trained": SelectorSpec(
            "ConcreteBandSelector", {"n_select": k, "init_method": "variance", "seed": 0}
        ),
        "soft_variance_topk": SelectorSpec(
            "SoftChannelSelector", {"n_select": k, "init_method": "variance"}, train=False
        ),
        "baseline_rgb": SelectorSpec("BaselineFalseRGBSelector"),
        "cir_false_color": SelectorSpec("CIRFalseColorSelector"),
        "high_contrast": SelectorSpec("HighContrastBandSelector"),
    }
    for criterion in ("mrmr", "separability"):
        specs[f"supervised_cir_{criterion}"] = SelectorSpec(
            "SupervisedCIRBandSelector", {"criterion": criterion}
        )
        specs[f"supervised_windowed_rgb_{criterion}"] = SelectorSpec(
            "SupervisedWindowedFalseRGBSelector", {"criterion": criterion}
        )
        specs[f"supervised_full_{criterion}"] = SelectorSpec(
            "SupervisedFullSpectrumBandSelector", {"criterion": criterion, "k": k}
        )
    return specs


class SplitSettings(BaseModel):
    """The spatial train/test split: a ``n_blocks`` grid, ``test_fraction`` of the blocks held out."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    n_blocks: tuple[int, int] = Field((4, 4), description="block grid (rows, columns) cutting the scene")
    test_fraction: float = Field(0.25, gt=0.0, lt=1.0, description="fraction of the blocks held out")
    seed: int = Field(0, description="seed of the draw of the test blocks")


class StabilitySettings(BaseModel):
    """Band stability bootstrap (see :func:`~bandselect.evaluation.band_stability`); 0 resamples skip it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    n_bootstrap: int = Field(20, ge=0, description="bootstrap resamples of the train tiles (0: skip)")
    tolerance_bands: int = Field(1, ge=0, description="picks this many bands apart count as the same")
    seed: int = Field(0, description="seed of the resamples")


# -- selecting -------------------------------------------------------------------------------------------
def _build(spec: SelectorSpec, n_bands: int) -> Any:
    from bandselect.pipeline.registry import get_node_class

    cls = get_node_class(spec.type)
    config = resolve_band_counts(spec.config, n_bands, node_type=cls)
    try:
        node = cls(**config)
    except TypeError as error:
        raise ConfigError(
            f"config of {spec.type}",
            expected="the selector's constructor arguments",
            found=f"{sorted(config)} ({error})",
            fix=f"see help(bandselect.selectors.{spec.type})",
        ) from error
    if is_learnable_selector(node) and not spec.train and node.statistics_request() is None:
        raise ConfigError(
            f"untrained {spec.type} in a comparison",
            expected="a learnable selector that is trained (train: true) or statistically initialised "
            "(init_method='variance', compared as its hard top-k)",
            found=f"train: false with {config}: its untrained logits are all equal and would pick the "
            "first bands",
            fix="set train: true, or init_method: variance",
        )
    return node


def learnable_training(
    tiles_shape: Sequence[int], overrides: Mapping[str, Any] | None = None
) -> TrainingConfig:
    """The training settings of a learnable selector on train tiles ``(B, h, w, C)`` laid side by side.

    The recipe's settings with the rows of every tile split into :data:`LEARNABLE_TRAIN_ROWS` (gradient
    steps) and :data:`LEARNABLE_VAL_ROWS` (the epoch choice), no test rows (the comparison's held-out
    blocks are the test), and every step on the whole training part (one patch of all the tiles'
    training rows: a comparison's tiles are small, and a smaller patch would hold few pixels of each
    class); then ``overrides`` (fields of :class:`~bandselect.training.TrainingConfig`).

    Raises
    ------
    ConfigError
        Overrides that make invalid settings (each field named).
    """
    height, width = int(tiles_shape[1]), int(tiles_shape[0]) * int(tiles_shape[2])
    start, stop = row_range(height, LEARNABLE_TRAIN_ROWS)
    settings = {
        **load_recipe()["training"],
        "train_rows": LEARNABLE_TRAIN_ROWS,
        "val_rows": LEARNABLE_VAL_ROWS,
        "test_rows": None,
        "patch_size": (stop - start, width),
        "batch_size": 1,
    }
    return training_config({**settings, **dict(overrides or {})})


def _side_by_side(cube: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Tiles ``(B, h, w, C)`` as one image ``(1, h, B·w, C)``: every tile keeps its own rows."""
    batch, height, width, channels = cube.shape
    image = cube.transpose(1, 0, 2, 3).reshape(1, height, batch * width, channels)
    return image, labels.transpose(1, 0, 2).reshape(1, height, batch * width)


def fit_selector(
    spec: SelectorSpec, cube: np.ndarray, mask: np.ndarray, wavelengths_nm: np.ndarray
) -> tuple[BandSelection, TwoPhaseResult | None]:
    """Fit (and, when it learns, train) one selector on a batch of tiles; its selection and training.

    The node is built from ``spec``, initialised from the statistics it requests of exactly these pixels
    (:func:`bandselect.training.fitting.fit_node`, the in-memory twin of the flows' Dask statistics),
    trained when it is a learnable selector and ``spec.train`` (:func:`learnable_training`,
    :func:`bandselect.training.learnable.train_selector`), and asked for its :class:`BandSelection`:
    the same code path for every selector type.

    Parameters
    ----------
    spec
        The selector.
    cube
        ``(B, H, W, C)`` or ``(H, W, C)`` float tiles.
    mask
        Binary labels of the same pixels, ``(B, H, W)`` or ``(H, W)``; supervised and learnable
        selectors use them.
    wavelengths_nm
        ``(C,)`` band centres.

    Returns
    -------
    selection, training
        The selection, and the :class:`~bandselect.training.two_phase.TwoPhaseResult` of the training
        (None for a selector that was not trained).

    Raises
    ------
    WavelengthError
        The sensor does not cover the selector's targets or windows.
    """
    array = np.asarray(cube, dtype=np.float32)
    labels = binary_labels(mask)
    if array.ndim == 3:
        array, labels = array[None], labels[None]
    node = _build(spec, array.shape[-1])
    fit_node(node, array, labels, wavelengths_nm)
    result = None
    if spec.train and is_learnable_selector(node):
        image, image_labels = _side_by_side(array, labels)
        training = learnable_training(array.shape, spec.training)
        result = train_selector(node, image, image_labels, wavelengths_nm, training)
    return node.selection(wavelengths_nm), result


def select_bands(
    spec: SelectorSpec, cube: np.ndarray, mask: np.ndarray, wavelengths_nm: np.ndarray
) -> BandSelection:
    """Fit one selector on a batch of tiles and return its selection (see :func:`fit_selector`).

    Raises
    ------
    WavelengthError
        The sensor does not cover the selector's targets or windows.
    """
    return fit_selector(spec, cube, mask, wavelengths_nm)[0]


def _tiles(
    cube: np.ndarray, labels: np.ndarray, blocks: np.ndarray, chosen: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The chosen blocks as a batch of equal tiles, each cropped to the smallest chosen block."""
    boxes = []
    for block in chosen:
        rows, columns = np.nonzero(blocks == block)
        boxes.append(
            (rows.min(), columns.min(), rows.max() + 1 - rows.min(), columns.max() + 1 - columns.min())
        )
    height = min(box[2] for box in boxes)
    width = min(box[3] for box in boxes)
    tile_cubes = [cube[y : y + height, x : x + width] for y, x, _, _ in boxes]
    tile_labels = [labels[y : y + height, x : x + width] for y, x, _, _ in boxes]
    return np.stack(tile_cubes), np.stack(tile_labels)


def _binary(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    labels = _label_image(mask, shape)
    values = np.unique(labels)
    if labels.dtype != bool and not set(values.tolist()) <= {0, 1}:
        raise LabelError(
            "mask",
            expected="binary labels (0 negative, 1 positive)",
            found=f"labels {values.tolist()[:10]}",
            fix="pass one class against the rest: mask == label",
        )
    return labels.astype(bool)


def _measure_functions(
    split: SpatialSplit, positive: np.ndarray, folds: int, seed: int
) -> dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray | None], float]]:
    train, test = split.train, split.test

    def rx(cube: np.ndarray, mask: np.ndarray, indices: np.ndarray | None) -> float:
        return rx_auroc(cube, mask, indices, background=train & ~positive, evaluate=test)

    def logistic(cube: np.ndarray, mask: np.ndarray, indices: np.ndarray | None) -> float:
        return logistic_auroc(cube[test], mask[test], indices, folds=folds, seed=seed)

    def holdout(cube: np.ndarray, mask: np.ndarray, indices: np.ndarray | None) -> float:
        return logistic_holdout_auroc(cube, mask, indices, train, test)

    return {"rx_auroc": rx, "logistic_auroc": logistic, "logistic_holdout_auroc": holdout}


def compare_selections(
    cube: np.ndarray,
    mask: np.ndarray,
    wavelengths: Sequence[float] | np.ndarray,
    selectors: Mapping[str, SelectorSpec | Mapping[str, Any]],
    *,
    split: SplitSettings | None = None,
    measures: Sequence[str] = MEASURES,
    n_random_draws: int = 20,
    folds: int = 5,
    stability: StabilitySettings | None = None,
    seed: int = 0,
) -> Leaderboard:
    """Fit each selector on the train blocks of a spatial split and score its bands on the test blocks.

    Parameters
    ----------
    cube
        ``(H, W, C)`` scene.
    mask
        ``(H, W)`` binary labels (``mask == label`` for one class of a multi-class scene).
    wavelengths
        ``(C,)`` band centres in nm.
    selectors
        Leaderboard name → :class:`SelectorSpec` (or a mapping ``{"type": ..., "config": {...}}``).
    split
        Block grid, held-out fraction and seed of the split (default ``SplitSettings()``).
    measures
        Names from :data:`MEASURES`; the first ranks the rows.
    n_random_draws
        Draws of the random baseline (one baseline per distinct ``k`` of the selections).
    folds
        Folds of the cross-validated logistic AUROC; the test blocks need ``folds`` positive pixels.
    stability
        Bootstrap settings; ``StabilitySettings(n_bootstrap=0)`` skips stability.
    seed
        Seed of the random draws and of the cross-validation folds.

    Returns
    -------
    Leaderboard

    Raises
    ------
    ConfigError
        Unknown measure or selector type, bad names, bad selector arguments.
    LabelError
        Labels that are not binary, or a split that leaves fewer than ``folds`` positives in the test part.
    """
    split = split or SplitSettings()
    stability = stability or StabilitySettings()
    array = np.asarray(cube)
    if array.ndim != 3:
        raise ShapeError("cube", expected="(H, W, C)", found=f"shape {array.shape}", fix="pass one scene")
    array = array.astype(np.float32, copy=False)
    height, width, n_bands = array.shape
    wavelengths_nm = validate_wavelengths(wavelengths, n_bands)
    positive = _binary(mask, (height, width))
    measures = tuple(measures)
    unknown = [m for m in measures if m not in MEASURES]
    if not measures or unknown:
        raise ConfigError(
            "measures",
            expected=f"a non-empty subset of {MEASURES}",
            found=list(measures),
            fix="drop unknown names",
        )
    specs = {str(name): _as_spec(name, spec) for name, spec in selectors.items()}
    if not specs:
        raise ConfigError(
            "selectors", expected="at least one selector", found="none", fix="name some selectors"
        )

    spatial = spatial_block_split(
        height,
        width,
        n_blocks=split.n_blocks,
        test_fraction=split.test_fraction,
        seed=split.seed,
        mask=positive,
    )
    test_positives = int(np.count_nonzero(positive & spatial.test))
    if (
        "logistic_auroc" in measures
        and min(test_positives, int(np.count_nonzero(~positive & spatial.test))) < folds
    ):
        raise LabelError(
            "test blocks",
            expected=f"at least {folds} positive and {folds} negative pixels ({folds}-fold cross-validation)",
            found=f"{test_positives} positive pixels in the test blocks",
            fix="raise split.test_fraction, change split.seed, or lower folds",
        )
    blocks = block_grid(height, width, n_blocks=split.n_blocks)
    train_blocks = np.unique(blocks[spatial.train])
    train_cube, train_labels = _tiles(array, positive, blocks, train_blocks)
    if not train_labels.any():
        raise LabelError(
            "train blocks",
            expected="positive pixels inside the train tiles",
            found="none after cropping the blocks to equal tiles",
            fix="change split.seed or split.n_blocks",
        )
    functions = _measure_functions(spatial, positive, folds, seed)
    tiles = [(train_cube[i], train_labels[i]) for i in range(train_cube.shape[0])]

    rows: list[LeaderboardRow] = []
    ks: set[int] = set()
    for name, spec in specs.items():
        try:
            outcome, trained = fit_selector(spec, train_cube, train_labels, wavelengths_nm)
        except WavelengthError as error:
            rows.append(
                LeaderboardRow(
                    name=name,
                    kind="selector",
                    status=f"{NOT_APPLICABLE}: {error}",
                    scores={m: math.nan for m in measures},
                    selector_type=spec.type,
                    config=dict(spec.config),
                )
            )
            continue
        ks.add(outcome.k)
        scores = {m: functions[m](array, positive, outcome.indices) for m in measures}
        stability_result = None
        bootstrap = trained is None if spec.bootstrap is None else spec.bootstrap
        if stability.n_bootstrap > 0 and bootstrap:
            # Bootstrap over the train tiles the selector was fitted on, so the "full data" picks of the
            # stability result are the very bands scored in the leaderboard.
            stability_result = band_stability(
                _select_function(spec),
                tiles,
                None,
                wavelengths_nm,
                n_bootstrap=stability.n_bootstrap,
                seed=stability.seed,
                tolerance_bands=stability.tolerance_bands,
            )
        rows.append(
            LeaderboardRow(
                name=name,
                kind="selector",
                status=STATUS_OK,
                scores=scores,
                selector_type=spec.type,
                config=dict(spec.config),
                selection=outcome,
                stability=stability_result,
                history=() if trained is None else tuple(trained.history),
                best_epoch=None if trained is None else trained.best_epoch,
            )
        )
    rows.append(
        LeaderboardRow(
            name=f"all bands ({n_bands})",
            kind="all_bands",
            status=STATUS_OK,
            scores={m: functions[m](array, positive, None) for m in measures},
        )
    )
    for k in sorted(ks):
        results = {
            m: random_band_baseline(
                array, positive, k, n_draws=n_random_draws, seed=seed, measure=functions[m]
            )
            for m in measures
        }
        rows.append(
            LeaderboardRow(
                name=f"random {k} bands ({n_random_draws} draws)",
                kind="random",
                status=STATUS_OK,
                scores={m: result.mean for m, result in results.items()},
                scores_std={m: result.std for m, result in results.items()},
            )
        )
    primary = measures[0]
    ordered = sorted((row for row in rows if row.applicable), key=lambda row: -row.scores[primary])
    ordered += [row for row in rows if not row.applicable]
    summary = {
        "height": height,
        "width": width,
        "n_bands": n_bands,
        "train_pixels": int(spatial.train.sum()),
        "test_pixels": int(spatial.test.sum()),
        "train_positives": int(np.count_nonzero(positive & spatial.train)),
        "test_positives": test_positives,
        "train_tiles": [int(s) for s in train_cube.shape[:3]],
        "split": {"n_blocks": list(split.n_blocks), "test_fraction": split.test_fraction, "seed": split.seed},
        "stability": {
            "n_bootstrap": stability.n_bootstrap,
            "tolerance_bands": stability.tolerance_bands,
            "seed": stability.seed,
        },
        "folds": folds,
        "n_random_draws": n_random_draws,
        "measure_labels": {m: MEASURE_LABELS[m] for m in measures},
    }
    return Leaderboard(
        rows=tuple(ordered), measures=measures, wavelengths_nm=wavelengths_nm, split=spatial, summary=summary
    )


def _as_spec(name: object, spec: SelectorSpec | Mapping[str, Any]) -> SelectorSpec:
    text = str(name)
    if not text or text.startswith(("all bands", "random ")):
        raise ConfigError(
            f"selector name {text!r}",
            expected="a non-empty name other than the baselines' ('all bands ...', 'random ...')",
            found=repr(text),
            fix="rename the selector",
        )
    if isinstance(spec, SelectorSpec):
        return spec
    keys = {"type", "config", "train", "training", "bootstrap"}
    if isinstance(spec, Mapping) and "type" in spec and set(spec) <= keys:
        training = spec.get("training")
        return SelectorSpec(
            str(spec["type"]),
            dict(spec.get("config") or {}),
            train=bool(spec.get("train", True)),
            training=None if training is None else dict(training),
            bootstrap=spec.get("bootstrap"),
        )
    raise ConfigError(
        f"selector {text!r}",
        expected="a SelectorSpec or a mapping {'type': ..., 'config': {...}} (optional keys: train, "
        "training, bootstrap)",
        found=repr(spec),
        fix="write it as {type: SupervisedFullSpectrumBandSelector, config: {criterion: separability}}",
    )


def _select_function(spec: SelectorSpec) -> Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]:
    def select(cube: np.ndarray, mask: np.ndarray, wavelengths_nm: np.ndarray) -> np.ndarray:
        return np.asarray(select_bands(spec, cube, mask, wavelengths_nm).indices, dtype=np.int64)

    return select
