"""The statistics partials in torch: moments, Gram matrices and per-class histograms on a torch device.

The CPU kernels (:mod:`bandselect.stats.kernels`: compiled loops and BLAS) are the default; this
backend computes the same partial — what :class:`~bandselect.stats.kernels.ChunkAccumulator` returns —
on any torch device, so a GPU does the arithmetic when one is present (``device="cuda"``) and CI runs
the very same code on the CPU (``device="cpu"``). Every entry point that builds statistics takes ``device=``
(:meth:`BandStatistics.from_arrays`, :func:`~bandselect.stats.statistics_of`,
:func:`~bandselect.stats.compute_statistics`, the campaign update, the statistical trainer, ``fit()``,
the flows' ``statistics.device``).

Same answers as NumPy: the moments use the same shifted sums in float64 (the Gram by a float64 matrix
product, so the 1e-9 correlation tolerance holds) and the histograms the same bins, value for value:
each value's bin is the number of edges at or below it (``torch.searchsorted`` on the float64 edges,
the value converted to float64 exactly), with ``numpy.histogram``'s closed last bin and the two extra
bins below and above the edges that give the clipped counts.

This module imports torch when first used; :mod:`bandselect.stats` never does.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bandselect.errors import ConfigError
from bandselect.stats.kernels import class_layout

__all__ = ["AUTO", "accumulate", "class_histograms", "resolve_device"]

#: ``device="auto"``: CUDA when torch sees a GPU, else the CPU kernels.
AUTO = "auto"

#: Values per slab sent through the device at once (bounds the float64 temporaries: 128 MB).
SLAB_VALUES = 1 << 24


def resolve_device(device: str | None) -> str | None:
    """The device a statistics job runs on: None (NumPy) or a torch device string that exists here.

    ``"auto"`` is ``"cuda"`` when CUDA is available, else None.

    Raises
    ------
    ConfigError
        Not a torch device, or a CUDA device that this machine does not have.

    Examples
    --------
    >>> resolve_device(None) is None, resolve_device("cpu")
    (True, 'cpu')
    """
    if device is None:
        return None
    import torch

    if device == AUTO:
        return "cuda" if torch.cuda.is_available() else None
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ConfigError(
            "statistics device",
            expected='None, "auto" or a torch device such as "cpu", "cuda", "cuda:1"',
            found=repr(device),
            fix='pass device="cuda" (GPU), device="cpu" (torch on the CPU) or leave it None (NumPy)',
        ) from error
    if parsed.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0 or (parsed.index is not None and parsed.index >= count):
            raise ConfigError(
                "statistics device",
                expected="a CUDA device this machine has",
                found=f"{device!r} with {count} CUDA device(s) visible",
                fix='pass device="auto" (CUDA when present, else NumPy) or device=None',
            )
    return str(parsed)


def _device(device: str) -> Any:
    import torch

    return torch.device(device)


def _as_tensor(pixels: Any, device: Any) -> Any:
    """Pixels as a tensor on ``device``, NumPy arrays converted as the CPU kernels convert them
    (:func:`~bandselect.stats.kernels.kernel_input`): torch has no uint16/uint32 reductions and takes no
    big-endian arrays, and raw sensor counts are usually uint16."""
    import torch

    from bandselect.stats.kernels import kernel_input

    if isinstance(pixels, torch.Tensor):
        return pixels.to(device)
    return torch.from_numpy(kernel_input(np.asarray(pixels))).to(device)


def _slabs(n_rows: int, n_bands: int) -> range:
    return range(0, n_rows, max(1, SLAB_VALUES // max(n_bands, 1)))


def _class_moments(rows: Any, step: int) -> tuple[int, Any, Any, Any, Any, Any]:
    """Count, shift, shifted sum, shifted Gram, min and max of one class's ``(n, C)`` rows (float64)."""
    import torch

    shift = rows[: min(rows.shape[0], step)].double().mean(dim=0)
    n_bands = rows.shape[1]
    total = torch.zeros(n_bands, dtype=torch.float64, device=rows.device)
    gram = torch.zeros((n_bands, n_bands), dtype=torch.float64, device=rows.device)
    for start in range(0, rows.shape[0], step):
        d = rows[start : start + step].double() - shift
        gram += d.T @ d
        total += d.sum(dim=0)
    low, high = torch.aminmax(rows, dim=0)
    return int(rows.shape[0]), shift, total, gram, low.double(), high.double()


def _extended_bins(values: Any, edges: Any) -> Any:
    """``(R, C)`` extended bins (0 below the edges, ``n_bins + 1`` above) of ``(R, C)`` values."""
    import torch

    v = values.double().T.contiguous()  # (C, R): one sorted edge row per band
    j = torch.searchsorted(edges, v, right=True)  # edges <= v
    j -= (v == edges[:, -1:]).to(j.dtype)  # numpy.histogram's last bin is closed
    return j.T


def _count(x: Any, class_index: Any, edges: Any, n_classes: int, step: int) -> tuple[np.ndarray, np.ndarray]:
    import torch

    n_bands, n_edges = edges.shape
    stride = n_edges + 1  # n_bins + 2 extended bins per (class, band)
    size = n_classes * n_bands * stride
    counts = torch.zeros(size, dtype=torch.int64, device=x.device)
    band_offset = torch.arange(n_bands, device=x.device, dtype=torch.int64) * stride
    for start in range(0, x.shape[0], step):
        index = _extended_bins(x[start : start + step], edges) + band_offset
        if class_index is not None:
            index += (class_index[start : start + step] * (n_bands * stride))[:, None]
        counts += torch.bincount(index.reshape(-1), minlength=size)
    extended = counts.reshape(n_classes, n_bands, stride).cpu().numpy()
    histograms = extended[:, :, 1:-1].copy()
    histograms[:, :, 0] += extended[:, :, 0]
    histograms[:, :, -1] += extended[:, :, -1]
    return histograms, extended[:, :, 0] + extended[:, :, -1]


def accumulate(
    pixels: Any, labels: np.ndarray, edges: np.ndarray | None, device: str
) -> dict[str, np.ndarray | None]:
    """The partial of ``(N, C)`` pixels with ``(N,)`` int labels, computed on ``device`` (resolved by
    :func:`resolve_device`).

    Returns
    -------
    dict
        ``classes``, ``counts``, ``class_means``, ``class_comoments``, ``class_minimum``,
        ``class_maximum``, ``histograms``, ``n_clipped`` (NumPy arrays; the last two None without
        ``edges``), as :class:`~bandselect.stats.BandStatistics` takes them.
    """
    import torch

    target = _device(device)
    n_bands = int(pixels.shape[1])
    classes, class_index = class_layout(np.asarray(labels))
    k = classes.size
    step = max(1, SLAB_VALUES // max(n_bands, 1))
    x = _as_tensor(pixels, target)
    index = None if class_index is None else torch.from_numpy(np.asarray(class_index)).to(target)
    counts = np.zeros(k, np.int64)
    means = np.zeros((k, n_bands))
    comoments = np.zeros((k, n_bands, n_bands))
    low = np.full((k, n_bands), np.inf)
    high = np.full((k, n_bands), -np.inf)
    for position in range(k):
        rows = x if index is None else x[index == position]
        if rows.shape[0] == 0:
            continue
        n, shift, total, gram, lo, hi = _class_moments(rows, step)
        counts[position] = n
        means[position] = (shift + total / n).cpu().numpy()
        comoments[position] = (gram - torch.outer(total, total) / n).cpu().numpy()
        low[position], high[position] = lo.cpu().numpy(), hi.cpu().numpy()
    histograms = clipped = None
    if edges is not None:
        edge_tensor = _edge_tensor(edges, target)
        histograms, clipped = _count(x, index, edge_tensor, k, step)
    return {
        "classes": classes,
        "counts": counts,
        "class_means": means,
        "class_comoments": comoments,
        "class_minimum": low,
        "class_maximum": high,
        "histograms": histograms,
        "n_clipped": clipped,
    }


def class_histograms(
    pixels: Any, labels: np.ndarray, edges: np.ndarray, device: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(classes, histograms (K, C, n_bins), n_clipped (K, C))`` of prepared pixels, on ``device``."""
    import torch

    target = _device(device)
    classes, class_index = class_layout(np.asarray(labels))
    n_bands = int(pixels.shape[1])
    step = max(1, SLAB_VALUES // max(n_bands, 1))
    x = _as_tensor(pixels, target)
    index = None if class_index is None else torch.from_numpy(np.asarray(class_index)).to(target)
    histograms, clipped = _count(x, index, _edge_tensor(edges, target), classes.size, step)
    return classes, histograms, clipped


def _edge_tensor(edges: np.ndarray, target: Any) -> Any:
    """The edges as a float64 tensor on ``target`` (a copy: the engine's edges are read-only arrays,
    which ``torch.from_numpy`` would share and warn about)."""
    import torch

    return torch.tensor(np.asarray(edges, dtype=np.float64), dtype=torch.float64, device=target)
