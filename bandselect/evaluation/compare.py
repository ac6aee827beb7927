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

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import ConfigDict, Field

from bandselect.errors import ConfigError, LabelError, ShapeError, WavelengthError
from bandselect.evaluation.leaderboard import (
    MEASURE_LABELS,
    MEASURES,
    STATUS_OK,
    Leaderboard,
    LeaderboardRow,
    all_bands_row,
    not_applicable_row,
    random_bands_row,
    ranked_rows,
    selector_progress,
)
from bandselect.evaluation.metrics import (
    logistic_auroc,
    logistic_holdout_auroc,
    random_band_draws,
    rx_auroc,
)
from bandselect.evaluation.selecting import (
    LEARNABLE_TRAIN_ROWS,
    LEARNABLE_VAL_ROWS,
    SELECTOR_TYPES,
    SelectorSpec,
    as_selector_spec,
    default_selector_specs,
    fit_selector,
    learnable_training,
    select_bands,
    select_function,
)
from bandselect.evaluation.split import SpatialSplit, _label_image, block_grid, spatial_block_split
from bandselect.evaluation.stability import SelectFunction, StabilityResult, band_stability
from bandselect.progress import COMPARISON_STEP, report
from bandselect.selection import BandSelection
from bandselect.settings import SettingsModel
from bandselect.spectral import validate_wavelengths
from bandselect.training.records import EpochRecord

#: The label of the train tiles' pixels that do not count (``valid`` False), given to every fit, training
#: and bootstrap as their ``ignore_label`` (the tiles' other labels are 0 and 1).
IGNORED = 2

__all__ = [
    "LEARNABLE_TRAIN_ROWS",
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


class SplitSettings(SettingsModel):
    """The spatial train/test split: a ``n_blocks`` grid, ``test_fraction`` of the blocks held out."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    n_blocks: tuple[int, int] = Field((4, 4), description="block grid (rows, columns) cutting the scene")
    test_fraction: float = Field(0.25, gt=0.0, lt=1.0, description="fraction of the blocks held out")
    seed: int = Field(0, description="seed of the draw of the test blocks")


class StabilitySettings(SettingsModel):
    """Band stability bootstrap (see :func:`~bandselect.evaluation.band_stability`); 0 resamples skip it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    n_bootstrap: int = Field(20, ge=0, description="bootstrap resamples of the train tiles (0: skip)")
    tolerance_bands: int = Field(1, ge=0, description="picks this many bands apart count as the same")
    seed: int = Field(0, description="seed of the resamples")

    def bootstrap(
        self,
        select: SelectFunction,
        tiles: Sequence[tuple[np.ndarray, np.ndarray]],
        wavelengths_nm: np.ndarray,
        ignore_label: int | None = None,
    ) -> StabilityResult | None:
        """The stability of ``select`` over bootstrap resamples of ``tiles`` (None for 0 resamples);
        ``ignore_label``: the tiles' label of pixels that count nowhere (no class a resample must hold)."""
        if self.n_bootstrap == 0:
            return None
        return band_stability(
            select,
            tiles,
            None,
            wavelengths_nm,
            n_bootstrap=self.n_bootstrap,
            seed=self.seed,
            ignore_label=ignore_label,
            tolerance_bands=self.tolerance_bands,
        )


@dataclass(frozen=True)
class ScoredSelection:
    """One selector's outcome in a comparison: its scores, its bands and what its training recorded."""

    scores: Mapping[str, float]
    selection: BandSelection
    stability: StabilityResult | None = None
    history: tuple[EpochRecord, ...] = ()
    best_epoch: int | None = None


def selector_rows(
    specs: Mapping[str, SelectorSpec],
    measures: Sequence[str],
    score: Callable[[str, SelectorSpec], ScoredSelection],
) -> tuple[list[LeaderboardRow], set[int]]:
    """The leaderboard rows of ``specs`` scored by ``score`` (the binary and the multi-class comparison).

    A selector whose wavelength windows the sensor does not cover gets a not-applicable row; each
    selector is reported as it finishes (:mod:`bandselect.progress`). Also returns the band counts of the
    selections, for the random baselines.
    """
    rows: list[LeaderboardRow] = []
    ks: set[int] = set()
    for done, (name, spec) in enumerate(specs.items(), start=1):
        try:
            scored = score(name, spec)
        except WavelengthError as error:
            rows.append(not_applicable_row(name, spec.type, spec.config, error, measures))
            report(COMPARISON_STEP, done, len(specs), f"{name}: not applicable on this sensor")
            continue
        ks.add(scored.selection.k)
        rows.append(
            LeaderboardRow(
                name=name,
                kind="selector",
                status=STATUS_OK,
                scores=dict(scored.scores),
                selector_type=spec.type,
                config=dict(spec.config),
                selection=scored.selection,
                stability=scored.stability,
                history=scored.history,
                best_epoch=scored.best_epoch,
            )
        )
        report(COMPARISON_STEP, done, len(specs), selector_progress(rows[-1]))
    return rows, ks


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
    split: SpatialSplit, positive: np.ndarray, valid: np.ndarray, folds: int, seed: int
) -> dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray | None], float]]:
    # Only pixels that count: ignored (ignore_label) and invalid pixels are no background and no test.
    train, test = split.train & valid, split.test & valid

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
    baselines: bool = True,
    random_ks: Sequence[int] = (),
    valid: np.ndarray | None = None,
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
    baselines
        Score the all-bands and random-bands baselines (``False``: the selector rows only, e.g. one
        selector of a mapped comparison; :func:`~bandselect.evaluation.leaderboard.merge_leaderboards`
        joins the parts).
    random_ks
        Band counts of random baselines besides the selections' own (a baselines-only part of a mapped
        comparison gets the ``k`` of every selector).
    valid
        ``(H, W)`` bool, the pixels that count (None: all): pixels where it is False (unlabelled,
        no-data) are in no statistic, no training and no measure, and their values never matter.

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
    counted = np.ones((height, width), bool) if valid is None else _label_image(valid, (height, width)) > 0
    positive = _binary(mask, (height, width)) & counted
    measures = tuple(measures)
    unknown = [m for m in measures if m not in MEASURES]
    if not measures or unknown:
        raise ConfigError(
            "measures",
            expected=f"a non-empty subset of {MEASURES}",
            found=list(measures),
            fix="drop unknown names",
        )
    specs = {str(name): as_selector_spec(name, spec) for name, spec in selectors.items()}
    if not specs and not baselines:
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
        and min(test_positives, int(np.count_nonzero(~positive & counted & spatial.test))) < folds
    ):
        raise LabelError(
            "test blocks",
            expected=f"at least {folds} positive and {folds} negative pixels ({folds}-fold cross-validation)",
            found=f"{test_positives} positive pixels in the test blocks",
            fix="raise split.test_fraction, change split.seed, or lower folds",
        )
    blocks = block_grid(height, width, n_blocks=split.n_blocks)
    train_blocks = np.unique(blocks[spatial.train])
    # The tiles' labels: 0/1, and IGNORED on the pixels that do not count (left out by the fit, the
    # training and the bootstrap alike, as an ignore_label).
    ignore = None if valid is None else IGNORED
    labels = positive.astype(np.int64) if ignore is None else np.where(counted, positive, IGNORED)
    if ignore is not None:  # their values never matter, NaN included (the measures check finiteness)
        array = np.where(counted[..., None], array, np.float32(0))
    train_cube, train_labels = _tiles(array, labels, blocks, train_blocks)
    if not (train_labels == 1).any():
        raise LabelError(
            "train blocks",
            expected="positive pixels inside the train tiles",
            found="none after cropping the blocks to equal tiles",
            fix="change split.seed or split.n_blocks",
        )
    functions = _measure_functions(spatial, positive, counted, folds, seed)
    tiles = [(train_cube[i], train_labels[i]) for i in range(train_cube.shape[0])]

    def score(name: str, spec: SelectorSpec) -> ScoredSelection:
        outcome, trained = fit_selector(spec, train_cube, train_labels, wavelengths_nm, ignore_label=ignore)
        bootstrap = trained is None if spec.bootstrap is None else spec.bootstrap
        return ScoredSelection(
            scores={m: functions[m](array, positive, outcome.indices) for m in measures},
            selection=outcome,
            # over the train tiles the selector was fitted on, so the "full data" picks of the stability
            # result are the very bands scored in the leaderboard
            stability=stability.bootstrap(select_function(spec, ignore), tiles, wavelengths_nm, ignore)
            if bootstrap
            else None,
            history=() if trained is None else tuple(trained.history),
            best_epoch=None if trained is None else trained.best_epoch,
        )

    rows, ks = selector_rows(specs, measures, score)
    ks |= {int(k) for k in random_ks}
    if baselines:
        rows.append(all_bands_row(n_bands, {m: functions[m](array, positive, None) for m in measures}))
        for k in sorted(ks):
            draws = random_band_draws(n_bands, k, n_random_draws, seed)
            scores = [{m: float(functions[m](array, positive, draw)) for m in measures} for draw in draws]
            rows.append(random_bands_row(k, scores))
    primary = measures[0]
    summary = {
        "height": height,
        "width": width,
        "n_bands": n_bands,
        "train_pixels": int((spatial.train & counted).sum()),
        "test_pixels": int((spatial.test & counted).sum()),
        "ignored_pixels": int((~counted).sum()),
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
        rows=ranked_rows(rows, primary),
        measures=measures,
        wavelengths_nm=wavelengths_nm,
        split=spatial,
        summary=summary,
    )
