"""Fit one node from in-memory arrays, through the same statistics a campaign store would give.

:func:`fit_node` is what a comparison, a notebook or a test uses to initialise a single selector on a
cube held in memory: it asks the node what it needs (:meth:`~bandselect.pipeline.Node.statistics_request`),
builds exactly those statistics with :func:`bandselect.stats.statistics_of` (the in-memory twin of the
Dask path the flows use) and calls ``fit_from_statistics``. Nodes that need nothing are left as they are.

The label rule (:mod:`bandselect.labels`) applies on the way: ``positive_label`` makes one class against
the rest (as the flows' ``positive_label``), ``ignore_label`` leaves pixels out of every statistic.
"""

from __future__ import annotations

from typing import Any

from bandselect.pipeline.node import Node, StatisticsRequest
from bandselect.stats import DEFAULT_N_BINS, BandStatistics
from bandselect.stats.classes import labelled_statistics

__all__ = ["fit_node", "statistics_for"]


def statistics_for(
    request: StatisticsRequest,
    cube: Any,
    mask: Any = None,
    *,
    positive_label: int | None = None,
    ignore_label: int | None = None,
) -> BandStatistics:
    """The statistics ``request`` asks for, of a ``(B, H, W, C)`` cube and its labels.

    Histograms use ``request.n_bins`` (default: the engine's); labels are used only when the request
    has a mask port (``positive_label`` too), except that ``ignore_label`` pixels of ``mask`` are left
    out of the statistics of every node, supervised or not.
    """
    n_bins = (request.n_bins or DEFAULT_N_BINS) if request.histograms else None
    supervised = request.mask_port is not None
    if not supervised and ignore_label is not None and mask is not None:
        # Only the validity of the labels is used: the node sees one class.
        from bandselect.labels import valid_pixels

        valid = valid_pixels(mask, ignore_label)
        return labelled_statistics(cube, None, n_bins=n_bins, contrast=request.contrast, valid=valid)
    return labelled_statistics(
        cube,
        mask if supervised else None,
        positive_label=positive_label if supervised else None,
        ignore_label=ignore_label if supervised else None,
        n_bins=n_bins,
        contrast=request.contrast,
    )


def fit_node(
    node: Node,
    cube: Any,
    mask: Any = None,
    wavelengths: Any = None,
    *,
    positive_label: int | None = None,
    ignore_label: int | None = None,
) -> bool:
    """Initialise ``node`` from the statistics of ``cube`` (and ``mask``); return whether it needed any.

    Parameters
    ----------
    node
        Any node; one without a ``statistics_request()`` is left untouched.
    cube
        ``(B, H, W, C)`` (or ``(H, W, C)``) values the node's cube port receives.
    mask
        Labels of the same pixels (bool or class ids), for supervised nodes.
    wavelengths
        ``(C,)`` band wavelengths in nm, for nodes that request them.
    positive_label
        Supervised nodes: this class against every other class (None: the labels as they are).
    ignore_label
        Pixels of ``mask`` with this label are left out of every statistic.

    Raises
    ------
    LabelError
        A supervised node without usable labels (its own message), ``positive_label`` equal to
        ``ignore_label`` or absent from the counted pixels.
    """
    request = node.statistics_request()
    if request is None:
        return False
    stats = statistics_for(request, cube, mask, positive_label=positive_label, ignore_label=ignore_label)
    node.fit_from_statistics(stats, wavelengths=wavelengths if request.wavelengths_port else None)
    return True
