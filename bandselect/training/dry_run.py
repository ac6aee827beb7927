"""A pipeline tried on the campaign's band grid in a second, before any real work.

A flow validates its pipeline this way before it ingests, computes statistics, creates an output or
opens an MLflow run: every node is built (constructor checks), every node that needs statistics is
initialised from a small synthetic sample on the campaign's wavelengths (band windows, targets, ``k``
against the band count), the pipeline runs forward once (channel counts between connected nodes, loss
and metric nodes) and the selector states its selection (what the products are made of). Any error a
real run would meet because of the configuration is met here, on 2 × 8 × 8 pixels instead of the
campaign. The sample is synthetic on purpose: its labels hold every class, so a check never fails for
want of positives in a crop.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from bandselect.errors import BandSelectError, PipelineError
from bandselect.labels import check_label_roles
from bandselect.names import PORT_VALID
from bandselect.pipeline import Pipeline
from bandselect.pipeline.config import resolve_pipeline_band_counts
from bandselect.selection import BandSelection
from bandselect.training.campaign import is_learnable
from bandselect.training.datamodules import ArrayDataModule
from bandselect.training.gradient import require_validity
from bandselect.training.roles import selector_node
from bandselect.training.statistical import StatisticalTrainer

__all__ = ["DryRun", "dry_run"]

_FRAMES, _SIZE = 2, 8


@dataclass(frozen=True)
class DryRun:
    """What the dry run found: the selector's name and type, and its selection on the sample."""

    selector: str
    selector_type: str
    selection: BandSelection
    learnable: bool


def _sample(
    wavelengths_nm: np.ndarray, positive_label: int | None, ignore_label: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """A smooth random cube on the grid and labels holding 0, 1 and ``positive_label`` (checkerboard);
    with ``ignore_label``, also that class and class 2 (two classes remain besides the ignored one)."""
    rng = np.random.default_rng(0)
    n_bands = wavelengths_nm.size
    base = rng.uniform(0.05, 0.6, size=(_FRAMES, _SIZE, _SIZE, 1)).astype(np.float32)
    cube = base + 0.05 * rng.standard_normal((_FRAMES, _SIZE, _SIZE, n_bands)).astype(np.float32)
    labels = [0, 1] if positive_label in (None, 0, 1) else [0, 1, int(positive_label)]
    if ignore_label is not None:
        labels = sorted({*labels, 2, int(ignore_label)})
    yy, xx = np.meshgrid(np.arange(_SIZE), np.arange(_SIZE), indexing="ij")
    mask = np.broadcast_to(np.asarray(labels)[(yy + xx) % len(labels)], (_FRAMES, _SIZE, _SIZE)).copy()
    positive = mask == (positive_label if positive_label is not None else 1)
    cube[positive] += 0.2  # the positives differ, as a target does
    return cube, mask.astype(np.int64)


def dry_run(
    pipeline_config: Mapping[str, Any],
    wavelengths_nm: Sequence[float] | np.ndarray,
    *,
    selector: str | None = None,
    positive_label: int | None = None,
    ignore_label: int | None = None,
) -> DryRun:
    """Build, initialise and run ``pipeline_config`` on a synthetic sample of the grid ``wavelengths_nm``.

    Parameters
    ----------
    pipeline_config
        The pipeline in the seed's YAML form (``auto`` band counts take the grid's).
    wavelengths_nm
        The campaign's band centres.
    selector
        The selector node's name (None: the first selector).
    positive_label
        The target class of supervised nodes, as the flow passes it.
    ignore_label
        The class left out of every statistic, as the flow passes it (the sample then holds it).

    Raises
    ------
    BandSelectError
        What the real run would raise for this configuration (a typed error of the node at fault).
    LabelError
        ``ignore_label`` equal to ``positive_label``, or given for a learnable pipeline whose gradient
        phase would count the ignored pixels (a node reading the mask or batch statistics without
        ``data.valid``).
    PipelineError
        A node failed on its inputs with an error of its own (e.g. torch's shape mismatch between two
        connected nodes): named, with the node's inputs' shapes.
    """
    grid = np.asarray(wavelengths_nm, dtype=np.float64)
    positive_label, ignore_label = check_label_roles(positive_label, ignore_label, what="flow config")
    mapping = resolve_pipeline_band_counts(pipeline_config, int(grid.size))
    pipeline = Pipeline.from_config(mapping)
    name = selector_node(pipeline, selector)
    if ignore_label is not None:
        _check_trainable_with_ignored(pipeline, ignore_label)
    cube, mask = _sample(grid, positive_label, ignore_label)
    module = ArrayDataModule(
        cube,
        mask=mask,
        wavelengths=grid.astype(np.float32),
        batch_size=_FRAMES,
        positive_label=positive_label,
        ignore_label=ignore_label,
    )
    shape = f"{_FRAMES}×{_SIZE}×{_SIZE}×{grid.size}"
    try:
        StatisticalTrainer(pipeline, module).fit()
        batch = next(iter(module.train_dataloader()))
        pipeline.eval()
        with torch.no_grad():
            pipeline.forward(**{key: value for key, value in batch.items() if key != PORT_VALID})
        selection = pipeline.nodes[name].selection(grid)
    except BandSelectError:
        raise
    except (RuntimeError, ValueError, TypeError, IndexError) as error:
        raise PipelineError(
            f"pipeline tried on a {shape} sample of the campaign's bands",
            expected="every node to accept what its inputs send it",
            found=f"{type(error).__name__}: {error}",
            fix="check the band counts (input_channels, n_select, k) and the connections between nodes",
        ) from error
    return DryRun(name, type(pipeline.nodes[name]).__name__, selection, is_learnable(pipeline))


def _check_trainable_with_ignored(pipeline: Pipeline, ignore_label: int) -> None:
    """A learnable pipeline that would count ignored pixels in its gradient phase cannot train with an
    ignore_label: say so before any work (a campaign may gain the ignored class later, so this does not
    depend on the data)."""
    if not is_learnable(pipeline):
        return
    require_validity(pipeline, what=f"ignore_label={ignore_label} with a learnable pipeline")
