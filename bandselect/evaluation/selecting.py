"""The selector-fitting path of a comparison: what a selector spec is, and how every selector is fitted.

One code path for every selector type (:func:`fit_selector`): the node is built from its
:class:`SelectorSpec`, initialised from the statistics it requests of the train tiles
(:func:`bandselect.training.fitting.fit_node`), **trained when it is a learnable selector** (recognised
by its capabilities, :func:`bandselect.training.learnable.is_learnable_selector`:
``SoftChannelSelector``, ``ConcreteBandSelector``), then asked for its
:class:`~bandselect.selection.BandSelection`. A learnable selector is trained on the train tiles only,
by the shipped two-phase recipe (:func:`bandselect.training.learnable.train_selector`): the tiles side by
side form one image, the top :data:`LEARNABLE_TRAIN_ROWS` of every tile trains (gradient steps), the
rest (:data:`LEARNABLE_VAL_ROWS`) picks the epoch; the comparison's held-out test blocks then score it
like every other selector.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bandselect.errors import ConfigError
from bandselect.labels import binary_labels
from bandselect.pipeline.config import resolve_band_counts
from bandselect.selection import BandSelection
from bandselect.training.config import TrainingConfig, load_recipe, training_config
from bandselect.training.fitting import fit_node
from bandselect.training.learnable import is_learnable_selector, train_selector
from bandselect.training.samplers import row_range
from bandselect.training.two_phase import TwoPhaseResult

__all__ = [
    "LEARNABLE_TRAIN_ROWS",
    "LEARNABLE_VAL_ROWS",
    "SELECTOR_TYPES",
    "SelectorSpec",
    "as_selector_spec",
    "default_selector_specs",
    "fit_selector",
    "learnable_training",
    "select_bands",
    "select_function",
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
    "OrthogonalProjectionBandSelector",
    "CorrelationClusterBandSelector",
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
        blocks (``SoftChannelSelector`` from the recipe's uniform start and ``ConcreteBandSelector`` from
        its variance initialisation, both seeded), the soft selector's variance initialisation itself
        (hard top-``k``, untrained), true-colour and CIR fixed wavelengths, high contrast, and the three
        supervised selectors with ``criterion="mrmr"`` and ``criterion="separability"``.
    """
    specs = {
        # the recipe's start (bandselect/recipes/two_phase.yaml; why: docs/learnable.md)
        "soft_trained": SelectorSpec(
            "SoftChannelSelector", {"n_select": k, "init_method": "uniform", "seed": 0}
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
    spec: SelectorSpec,
    cube: np.ndarray,
    mask: np.ndarray,
    wavelengths_nm: np.ndarray,
    *,
    multiclass: bool = False,
    ignore_label: int | None = None,
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
        selectors use them. With ``multiclass``: the class ids, passed on as they are. With an
        ``ignore_label``: 0, 1 and that label.
    wavelengths_nm
        ``(C,)`` band centres.
    multiclass
        Keep the class ids (a multi-class comparison) instead of the binary rule.
    ignore_label
        Pixels of this label are left out of the statistics (:func:`~bandselect.training.fitting.fit_node`)
        and of a learnable selector's training (binary scenes).

    Returns
    -------
    selection, training
        The selection, and the :class:`~bandselect.training.two_phase.TwoPhaseResult` of the training
        (None for a selector that was not trained).

    Raises
    ------
    WavelengthError
        The sensor does not cover the selector's targets or windows.
    ConfigError
        A learnable selector to train with class ids (its training is binary).
    """
    array = np.asarray(cube, dtype=np.float32)
    # With an ignore label the labels stay integers: binarised first, the ignored class would be positive.
    labels = np.asarray(mask) if multiclass or ignore_label is not None else binary_labels(mask)
    if array.ndim == 3:
        array, labels = array[None], labels[None]
    node = _build(spec, array.shape[-1])
    learns = spec.train and is_learnable_selector(node)
    if learns and multiclass:
        raise ConfigError(
            f"trained {spec.type} in a comparison",
            expected="a binary scene (the learnable selectors train on one target)",
            found="a multi-class scene",
            fix="set train: false (compared as its statistical initialisation), or compare a binary scene",
        )
    fit_node(node, array, labels, wavelengths_nm, ignore_label=ignore_label)
    result = None
    if learns:
        image, image_labels = _side_by_side(array, labels)
        training = learnable_training(array.shape, spec.training)
        result = train_selector(
            node, image, image_labels, wavelengths_nm, training, ignore_label=ignore_label
        )
    return node.selection(wavelengths_nm), result


def select_bands(
    spec: SelectorSpec,
    cube: np.ndarray,
    mask: np.ndarray,
    wavelengths_nm: np.ndarray,
    *,
    multiclass: bool = False,
    ignore_label: int | None = None,
) -> BandSelection:
    """Fit one selector on a batch of tiles and return its selection (see :func:`fit_selector`).

    Raises
    ------
    WavelengthError
        The sensor does not cover the selector's targets or windows.
    """
    selection, _ = fit_selector(
        spec, cube, mask, wavelengths_nm, multiclass=multiclass, ignore_label=ignore_label
    )
    return selection


def as_selector_spec(name: object, spec: SelectorSpec | Mapping[str, Any]) -> SelectorSpec:
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


def select_function(
    spec: SelectorSpec, ignore_label: int | None = None
) -> Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]:
    """``spec``'s selection as a function of (cube, binary labels, wavelengths), for the bootstrap."""

    def select(cube: np.ndarray, mask: np.ndarray, wavelengths_nm: np.ndarray) -> np.ndarray:
        selection = select_bands(spec, cube, mask, wavelengths_nm, ignore_label=ignore_label)
        return np.asarray(selection.indices, dtype=np.int64)

    return select
