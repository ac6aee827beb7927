"""Fit one node from in-memory arrays, through the same statistics a campaign store would give.

:func:`fit_node` is what a comparison, a notebook or a test uses to initialise a single selector on a
cube held in memory: it asks the node what it needs (:meth:`~bandselect.pipeline.Node.statistics_request`),
builds exactly those statistics with :func:`bandselect.stats.statistics_of` (the in-memory twin of the
Dask path the flows use) and calls ``fit_from_statistics``. Nodes that need nothing are left as they are.
"""

from __future__ import annotations

from typing import Any

from bandselect.pipeline.node import Node, StatisticsRequest
from bandselect.stats import DEFAULT_N_BINS, BandStatistics, statistics_of

__all__ = ["fit_node", "statistics_for"]


def statistics_for(request: StatisticsRequest, cube: Any, mask: Any = None) -> BandStatistics:
    """The statistics ``request`` asks for, of a ``(B, H, W, C)`` cube and its labels.

    Histograms use ``request.n_bins`` (default: the engine's); labels are used only when the request
    has a mask port.
    """
    n_bins = (request.n_bins or DEFAULT_N_BINS) if request.histograms else None
    labels = mask if request.mask_port is not None else None
    return statistics_of(cube, labels, n_bins=n_bins, contrast=request.contrast)


def fit_node(node: Node, cube: Any, mask: Any = None, wavelengths: Any = None) -> bool:
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

    Raises
    ------
    LabelError
        A supervised node without usable labels (its own message).
    """
    request = node.statistics_request()
    if request is None:
        return False
    stats = statistics_for(request, cube, mask)
    node.fit_from_statistics(stats, wavelengths=wavelengths if request.wavelengths_port else None)
    return True
