"""Statistical initialisation of pipeline nodes from data-set-wide band statistics.

Two routes lead to the same ``node.fit_from_statistics(stats, wavelengths=...)`` call:

- :class:`StatisticalTrainer` streams a datamodule's batches through the already-initialised upstream
  nodes and merges one :class:`~bandselect.stats.BandStatistics` partial per batch (bounded memory);
- :func:`initialize_from_statistics` takes statistics computed elsewhere, e.g. with Dask over a campaign
  store (``bandselect.stats.compute_statistics``), for nodes fed directly by ``data.cube``.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterable, Iterator, Mapping, Sequence, Sized
from typing import Any

import numpy as np
import torch

from bandselect.errors import ConfigError, LabelError, PipelineError, TrainingError, WavelengthError
from bandselect.labels import check_classes
from bandselect.names import DATA_NODE, PORT_CUBE, PORT_LABELS, PORT_MASK, PORT_VALID, PORT_WAVELENGTHS
from bandselect.pipeline import Pipeline, StatisticsRequest
from bandselect.pipeline.node import needs_statistics
from bandselect.stats import (
    DEFAULT_N_BINS,
    BandStatistics,
    data_edges,
    histograms_from_arrays,
    merge_histograms,
)
from bandselect.stats.compute import HistogramPartial
from bandselect.training.protocols import DataModule
from bandselect.validation import check_int

__all__ = ["DataModule", "StatisticalTrainer", "initialize_from_statistics"]


#: Inputs of the histograms the first pass keeps for them (:class:`StatisticalTrainer` ``replay_bytes``):
#: a region's training rows are a few hundred MB at most as a rule, and reading them again costs more.
REPLAY_BYTES = 1 << 30

_Inputs = tuple[Any, Any, Any]  # (cube, mask, valid) of one batch for one node


def _nbytes(value: Any) -> int:
    # Tensors and arrays both have nbytes; anything else is held as the array it becomes.
    return int(value.nbytes) if hasattr(value, "nbytes") else int(np.asarray(value).nbytes)


class _Replay:
    """The first pass's inputs of the nodes that need histograms, kept while they total at most
    ``budget`` bytes: the histograms are then binned from them, without reading the data (and running
    the upstream nodes) a second time. Past the budget the inputs are dropped (``complete`` False) and a
    second pass bins instead; the histograms are the same either way (same inputs, same merge order)."""

    def __init__(self, names: Sequence[str], budget: int) -> None:
        self.inputs: dict[str, list[_Inputs]] = {name: [] for name in names}  # {}: dropped
        self.budget, self.size = int(budget), 0
        self._held: set[int] = set()  # ids of the values held (nodes fed the same tensor count it once)

    @property
    def complete(self) -> bool:
        """Whether every input of the pass is kept (not dropped past the budget)."""
        return bool(self.inputs)

    def add(self, name: str, inputs: _Inputs) -> None:
        if not self.complete:
            return
        for value in inputs:
            if value is not None and id(value) not in self._held:
                self._held.add(id(value))
                self.size += _nbytes(value)
        if self.size > self.budget:
            self.inputs, self._held = {}, set()
            return
        self.inputs[name].append(inputs)


def _merged(
    merged: BandStatistics | HistogramPartial | None, partial: BandStatistics | HistogramPartial
) -> BandStatistics | HistogramPartial:
    """``partial`` added to what was merged so far (None: nothing yet)."""
    if merged is None:
        return partial
    if isinstance(merged, BandStatistics):
        return merged.merge(partial)  # type: ignore[arg-type]
    return merge_histograms(merged, partial)  # type: ignore[arg-type]


def _is_binary(mask: Any) -> bool:
    """Whether a batch's mask is a bool mask (torch or NumPy)."""
    if isinstance(mask, torch.Tensor):
        return mask.dtype == torch.bool
    return np.asarray(mask).dtype == np.bool_


def _as_numpy(value: Any) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def _request_of(pipeline: Pipeline, name: str) -> StatisticsRequest:
    node = pipeline.nodes[name]
    request = node.statistics_request()
    if request is None:
        raise TrainingError(
            f"node {name!r} ({type(node).__name__}) requires an initial fit but requests no statistics",
            expected="statistics_request() returning a StatisticsRequest",
            found="None",
            fix="implement statistics_request() or set requires_initial_fit = False",
        )
    for port in (request.cube_port, request.mask_port, request.wavelengths_port):
        if port is not None and port not in node.INPUT_PORTS:
            raise PipelineError(
                f"node {name!r} ({type(node).__name__}) requests statistics of port {port!r}",
                expected=f"one of its input ports {sorted(node.INPUT_PORTS)}",
                found=repr(port),
                fix="fix the node's statistics_request()",
            )
    return request


def _check_connected(pipeline: Pipeline, name: str, request: StatisticsRequest) -> None:
    kind = type(pipeline.nodes[name]).__name__
    # (port, what it carries, the error type, the data port that usually feeds it)
    needs = [
        (request.cube_port, "data", PipelineError, "cube"),
        (request.mask_port, "labels", LabelError, "mask"),
        (request.wavelengths_port, "wavelengths", WavelengthError, "wavelengths"),
    ]
    for port, what, error, data_port in needs:
        if port is not None and pipeline.source_of(name, port) is None:
            raise error(
                f"node {name!r} ({kind}) needs {what} on input {port!r} for its initialisation",
                expected=f"a connection feeding the {what}",
                found="no connection",
                fix=f"connect the {what}: pipeline.connect(('data.{data_port}', '{name}.{port}'))",
            )


class StatisticalTrainer:
    """Initialise every node that needs it from data-set-wide statistics of the training data.

    For each node that asks for statistics and has not had them
    (:func:`~bandselect.pipeline.node.needs_statistics`), in dependency order, the datamodule's
    ``train_dataloader()`` batches are passed through the (already initialised) upstream nodes; the
    values arriving at the node's requested ports are reduced batch by batch into
    :class:`~bandselect.stats.BandStatistics` partials and merged, so memory stays bounded by one batch.
    When the node asks for histograms (AUC, MI), the values are binned on the edges the engine's
    binning rule (:func:`~bandselect.stats.binning.data_edges`) gives the first pass's per-band minimum
    and maximum: from the first pass's inputs, kept while they total at most ``replay_bytes`` (the data
    is read once), else by a second pass over the batches (same histograms). Then
    ``node.fit_from_statistics(stats, wavelengths=...)`` runs.

    Batches with a ``valid`` entry (a datamodule with ``ignore_label``, or over acquisitions with a
    validity flag: :data:`~bandselect.names.PORT_VALID`)
    leave the pixels where it is False out of every statistic of every node, supervised or not (the
    minimum and maximum, hence the histogram edges, included), exactly as ``fit(..., ignore_label=...)``
    does: their values never matter, the spatial contrast terms (``contrast`` requests) included (a
    left-out pixel is no Laplacian centre and adds nothing as a neighbour,
    :func:`~bandselect.stats.spatial.laplacian_abs_sums`). A supervised node then needs two classes
    among the counted pixels (a ``LabelError`` naming it otherwise).

    Nodes that do not depend on each other are initialised from the same passes. Upstream nodes run in
    evaluation mode without gradients (no Gumbel noise, deterministic); the pipeline's train/eval mode
    is restored afterwards.

    Parameters
    ----------
    pipeline
        The pipeline whose nodes to initialise.
    datamodule
        A :class:`~bandselect.training.protocols.DataModule`: ``train_dataloader()`` yielding ``{"cube",
        "mask" (optional), "wavelengths"}`` dicts, and ``"valid"`` (optional, see above).
    max_batches
        Use only the first ``max_batches`` batches per pass (None: all).
    nodes
        Names of the nodes to initialise (default: every node that needs statistics); the nodes
        upstream of them must be initialised already. :func:`~bandselect.training.train_two_phase` passes
        the ones not initialised yet.
    progress
        Show a tqdm progress bar per pass.
    device
        Where the partials are computed: None (NumPy), ``"auto"`` (CUDA when present) or a torch device
        (``"cuda"``, ``"cpu"``), see :mod:`bandselect.stats.torch_backend`.
    replay_bytes
        How many bytes of the first pass's inputs (the values arriving at the nodes that need histograms)
        may be kept to bin them without a second pass (default :data:`REPLAY_BYTES`, 1 GiB; 0: always a
        second pass). The batches must not be changed in place after they are yielded.

    Attributes
    ----------
    statistics_
        After :meth:`fit`: the merged statistics each node was initialised from, by node name.

    Examples
    --------
    >>> import numpy as np
    >>> from bandselect.pipeline import Pipeline
    >>> from bandselect.selectors import SoftChannelSelector
    >>> from bandselect.training import ArrayDataModule, StatisticalTrainer
    >>> cube = np.random.default_rng(0).random((2, 8, 8, 5), dtype=np.float32)
    >>> datamodule = ArrayDataModule(cube, wavelengths=[450.0, 500.0, 550.0, 600.0, 650.0])
    >>> pipeline = Pipeline()
    >>> selector = SoftChannelSelector(n_select=2, input_channels=5, init_method="variance")
    >>> pipeline.add_node(selector)
    'soft_channel_selector'
    >>> pipeline.connect(("data.cube", selector.data))
    >>> StatisticalTrainer(pipeline=pipeline, datamodule=datamodule).fit()
    ['soft_channel_selector']
    >>> selector.is_initialized
    True
    """

    def __init__(
        self,
        pipeline: Pipeline,
        datamodule: DataModule,
        max_batches: int | None = None,
        *,
        nodes: Sequence[str] | None = None,
        progress: bool = False,
        device: str | None = None,
        replay_bytes: int = REPLAY_BYTES,
    ) -> None:
        if not isinstance(pipeline, Pipeline):
            raise ConfigError(
                "StatisticalTrainer pipeline",
                expected="a bandselect.pipeline.Pipeline",
                found=type(pipeline).__name__,
                fix="build the nodes into a Pipeline first",
            )
        if not isinstance(datamodule, DataModule):
            raise ConfigError(
                "StatisticalTrainer datamodule",
                expected="a DataModule (an object with train_dataloader())",
                found=type(datamodule).__name__,
                fix="pass an ArrayDataModule or CampaignDataModule",
            )
        if max_batches is not None:
            max_batches = check_int("StatisticalTrainer", "max_batches", max_batches, minimum=1)
        self.replay_bytes = check_int("StatisticalTrainer", "replay_bytes", replay_bytes, minimum=0)
        if nodes is not None:
            nodes = list(nodes)
            unknown = [n for n in nodes if n not in pipeline.nodes]
            if unknown:
                raise PipelineError(
                    f"cannot initialise nodes {unknown}",
                    expected=f"names among {list(pipeline.nodes)}",
                    found=unknown,
                    fix="pass names of nodes in the pipeline",
                )
            needless = [n for n in nodes if pipeline.nodes[n].statistics_request() is None]
            if needless:
                raise ConfigError(
                    f"nodes {needless} need no statistical initialisation",
                    expected="nodes that request statistics (statistics_request() not None)",
                    found=[type(pipeline.nodes[n]).__name__ for n in needless],
                    fix="list only nodes that require an initial fit, or pass nodes=None",
                )
        self.pipeline = pipeline
        self.datamodule = datamodule
        self.max_batches = max_batches
        self.nodes = nodes
        self.progress = progress
        self.device = device
        self.statistics_: dict[str, BandStatistics] = {}
        self._with_validity = False  # whether the last pass saw batches with a validity

    def fit(self) -> list[str]:
        """Initialise the nodes; return their names in the order they were initialised."""
        pipeline = self.pipeline
        wanted = self.nodes
        pending = [
            name
            for name in pipeline.topological_order()
            if (wanted is None and needs_statistics(pipeline.nodes[name]))
            or (wanted is not None and name in wanted)
        ]
        requests = {name: _request_of(pipeline, name) for name in pending}
        for name in pending:
            _check_connected(pipeline, name, requests[name])
        done: list[str] = []
        was_training = pipeline.training
        pipeline.eval()
        try:
            with torch.no_grad():
                while pending:
                    # Nodes with no uninitialised node upstream can share the passes over the data.
                    wave = [n for n in pending if not (pipeline.upstream_of(n) & set(pending))]
                    self._fit_wave(wave, requests)
                    done.extend(wave)
                    pending = [n for n in pending if n not in wave]
        finally:
            pipeline.train(was_training)
        return done

    def _batches(self, description: str) -> Iterator[Mapping[str, Any]]:
        loader: Iterable[Mapping[str, Any]] = self.datamodule.train_dataloader()
        if loader is None:
            raise TrainingError(
                "the datamodule's train_dataloader() returned None",
                expected="an iterable of batches",
                found="None",
                fix="give the datamodule training data",
            )
        batches: Iterable[Mapping[str, Any]] = (
            itertools.islice(loader, self.max_batches) if self.max_batches is not None else loader
        )
        if self.progress:
            from tqdm.auto import tqdm

            total = len(loader) if isinstance(loader, Sized) else None
            if total is not None and self.max_batches is not None:
                total = min(total, self.max_batches)
            batches = tqdm(batches, desc=description, total=total)
        yield from batches

    def _pass(
        self,
        wave: Sequence[str],
        requests: Mapping[str, StatisticsRequest],
        edges: Mapping[str, np.ndarray] | None,
        wavelengths: dict[str, Any],
        keep: _Replay | None = None,
    ) -> dict[str, Any]:
        """One pass over the training batches: merged statistics per node, or merged histogram partials
        (:data:`HistogramPartial`) per node when ``edges`` are given. ``keep`` collects the inputs of
        its nodes for the histograms (:class:`_Replay`)."""
        ports: list[tuple[str, str]] = []
        for name in wave:
            request = requests[name]
            ports.append((name, request.cube_port))
            if request.mask_port is not None:
                ports.append((name, request.mask_port))
            if request.wavelengths_port is not None:
                ports.append((name, request.wavelengths_port))
        merged: dict[str, Any] = {}
        n_batches = 0
        self._with_validity = False
        label = "statistics" if edges is None else "histograms"
        for batch in self._batches(f"{label} for {', '.join(wave)}"):
            if not isinstance(batch, Mapping):
                raise TrainingError(
                    "datamodule batch",
                    expected="a dict with keys 'cube', 'mask' (optional), 'wavelengths'",
                    found=type(batch).__name__,
                    fix="yield dict batches from train_dataloader()",
                )
            n_batches += 1
            # The validity is no port of the pipeline's data node: the statistics consume it here.
            data = {key: value for key, value in batch.items() if key != PORT_VALID}
            self._with_validity |= batch.get(PORT_VALID) is not None
            values = self.pipeline.port_values(ports, **data)
            for name in wave:
                inputs = self._inputs(name, requests[name], values, batch, wavelengths)
                if keep is not None and name in keep.inputs:
                    keep.add(name, inputs)
                partial = self._reduce(requests[name], inputs, None if edges is None else edges[name])
                merged[name] = _merged(merged.get(name), partial)
        if n_batches == 0:
            raise TrainingError(
                f"cannot initialise {', '.join(wave)}",
                expected="at least one training batch",
                found="train_dataloader() yielded none",
                fix="give the datamodule training data",
            )
        return merged

    def _inputs(
        self,
        name: str,
        request: StatisticsRequest,
        values: Mapping[tuple[str, str], Any],
        batch: Mapping[str, Any],
        wavelengths: dict[str, Any],
    ) -> _Inputs:
        """What node ``name``'s statistics reduce in one batch: ``(cube, mask, valid)``, checked."""
        kind = type(self.pipeline.nodes[name]).__name__
        source = self.pipeline.source_of(name, request.cube_port)
        cube = values.get((name, request.cube_port))
        if cube is None:
            raise TrainingError(
                f"node {name!r} ({kind}) got no value on {request.cube_port!r} for its initialisation",
                expected=f"{source[0]}.{source[1]} to have a value" if source else "a connection",
                found=f"batch keys {sorted(batch)}",
                fix="yield 'cube' in every batch of the datamodule",
            )
        mask = None
        if request.mask_port is not None:
            mask = values.get((name, request.mask_port))
            if mask is None:
                fed_by = self.pipeline.source_of(name, request.mask_port)
                raise LabelError(
                    f"node {name!r} ({kind}) needs labels on {request.mask_port!r} for its initialisation",
                    expected=f"a mask arriving from {fed_by[0]}.{fed_by[1]}" if fed_by else "a mask",
                    found=f"the datamodule yields no mask (batch keys {sorted(batch)})",
                    fix="give the datamodule a mask (labels, positive > 0) for the training data",
                )
            if getattr(self.pipeline.nodes[name], "multiclass", False):
                mask = self._class_ids(name, kind, request.mask_port, mask, batch)
        if request.wavelengths_port is not None:
            current = values.get((name, request.wavelengths_port))
            if current is None:
                raise WavelengthError(
                    f"node {name!r} ({kind}) needs wavelengths on {request.wavelengths_port!r}",
                    expected="wavelengths in every batch",
                    found=f"batch keys {sorted(batch)}",
                    fix="give the datamodule the wavelengths of the bands",
                )
            first = wavelengths.setdefault(name, current)
            if first is not current and not np.array_equal(_as_numpy(first), _as_numpy(current)):
                raise WavelengthError(
                    f"wavelengths for node {name!r} differ between batches",
                    expected="the same wavelengths in every batch",
                    found=f"{_as_numpy(first).tolist()} and {_as_numpy(current).tolist()}",
                    fix="use acquisitions of one sensor configuration in one datamodule",
                )
        return cube, mask, batch.get(PORT_VALID)

    def _reduce(
        self, request: StatisticsRequest, inputs: _Inputs, edges: np.ndarray | None
    ) -> BandStatistics | HistogramPartial:
        """One batch's partial: statistics (``edges`` None), else histograms on ``edges``."""
        cube, mask, valid = inputs
        if edges is None:
            return BandStatistics.from_arrays(
                cube, mask, valid=valid, contrast=request.contrast, device=self.device
            )
        return histograms_from_arrays(cube, mask, hist_edges=edges, valid=valid, device=self.device)

    def _class_ids(self, name: str, kind: str, port: str, mask: Any, batch: Mapping[str, Any]) -> Any:
        """What a multi-class node's statistics compare: the batch's class ids where its mask port is the
        data's bool ``mask`` (the binary label rule would compare "label > 0" against the rest)."""
        if self.pipeline.source_of(name, port) == (DATA_NODE, PORT_MASK) and PORT_LABELS in batch:
            return batch[PORT_LABELS]
        if not _is_binary(mask):
            return mask
        fed_by = self.pipeline.source_of(name, port)
        source = f" from {fed_by[0]}.{fed_by[1]}" if fed_by else ""
        raise LabelError(
            f"node {name!r} ({kind}) compares every class (multiclass=True)",
            expected=f"class ids: the batches' {PORT_LABELS!r} beside data.mask, or integer ids on {port!r}",
            found=f"a bool mask{source}, batch keys {sorted(batch)}",
            fix=f"yield {PORT_LABELS!r} (the class ids, (B, H, W, 1) int64) in the datamodule's batches, as "
            "ArrayDataModule and CampaignDataModule do, or fit the node with selector.fit(cube, labels)",
        )

    def _check_classes(self, name: str, request: StatisticsRequest, stats: BandStatistics) -> None:
        """A supervised node fed batches with ignored pixels needs two classes among the counted ones."""
        if request.mask_port is None or not self._with_validity:
            return
        kind = type(self.pipeline.nodes[name]).__name__
        check_classes(
            stats.classes,
            stats.counts,
            n_left_out=stats.n_invalid,
            what=f"training labels of node {name!r} ({kind})",
        )

    def _fit_wave(self, wave: Sequence[str], requests: Mapping[str, StatisticsRequest]) -> None:
        wavelengths: dict[str, Any] = {}
        with_histograms = [name for name in wave if requests[name].histograms]
        keep = _Replay(with_histograms, self.replay_bytes) if with_histograms else None
        stats = self._pass(wave, requests, None, wavelengths, keep)
        for name in wave:
            self._check_classes(name, requests[name], stats[name])
        if with_histograms:
            edges = {
                name: data_edges(
                    stats[name].minimum, stats[name].maximum, requests[name].n_bins or DEFAULT_N_BINS
                )
                for name in with_histograms
            }
            # The histograms bin only; the moments of the first pass are kept, not recomputed. From the
            # kept inputs when they fit the budget (one read of the data), else by a second pass.
            if keep is not None and keep.complete:
                histograms = {
                    name: functools.reduce(
                        _merged,
                        (self._reduce(requests[name], kept, edges[name]) for kept in keep.inputs[name]),
                    )
                    for name in with_histograms
                }
            else:
                histograms = self._pass(with_histograms, requests, edges, wavelengths)
            for name in with_histograms:
                stats[name] = stats[name].with_histograms(edges[name], *histograms[name])
        for name in wave:
            self.pipeline.nodes[name].fit_from_statistics(stats[name], wavelengths=wavelengths.get(name))
            self.statistics_[name] = stats[name]


def initialize_from_statistics(
    pipeline: Pipeline,
    stats: BandStatistics,
    wavelengths: Any = None,
    *,
    nodes: Sequence[str] | None = None,
) -> list[str]:
    """Initialise nodes from precomputed statistics of the raw cube (the Dask path).

    Statistics computed over a store (``bandselect.stats.compute_statistics``) describe ``data.cube``, so
    only nodes whose requested cube port is fed directly by ``data.cube`` (and mask port by ``data.mask``)
    can be initialised this way. The nodes are initialised in topological order.

    Parameters
    ----------
    pipeline
        The pipeline.
    stats
        Merged statistics of the training data (with a label mask for supervised nodes, with histograms
        for nodes that request them).
    wavelengths
        ``(C,)`` band wavelengths in nm, passed to nodes that request wavelengths.
    nodes
        Names of the nodes to initialise (default: every node that needs statistics).

    Returns
    -------
    list of str
        The initialised nodes' names.

    Raises
    ------
    PipelineError
        A node is fed through a transforming node, so statistics of the raw cube do not describe its
        input; use :class:`StatisticalTrainer` for it.
    LabelError
        A node needs labels but the statistics were computed without a mask.
    WavelengthError
        A node needs wavelengths and none were given.
    ConfigError
        A node needs histograms the statistics lack.

    Examples
    --------
    >>> import numpy as np
    >>> from bandselect.pipeline import Pipeline
    >>> from bandselect.selectors import SoftChannelSelector
    >>> from bandselect.stats import BandStatistics
    >>> cube = np.random.default_rng(0).random((1, 8, 8, 4), dtype=np.float32)
    >>> pipeline = Pipeline()
    >>> selector = SoftChannelSelector(n_select=2, input_channels=4, init_method="variance")
    >>> _ = pipeline.add_node(selector, name="selector")
    >>> pipeline.connect(("data.cube", "selector.data"))
    >>> initialize_from_statistics(pipeline, BandStatistics.from_arrays(cube))
    ['selector']
    """
    order = pipeline.topological_order()
    if nodes is None:
        names = [n for n in order if needs_statistics(pipeline.nodes[n])]
    else:
        unknown = [n for n in nodes if n not in pipeline.nodes]
        if unknown:
            raise PipelineError(
                f"cannot initialise nodes {unknown}",
                expected=f"names among {list(pipeline.nodes)}",
                found=unknown,
                fix="pass names of nodes in the pipeline",
            )
        names = [n for n in order if n in nodes]
    for name in names:
        node = pipeline.nodes[name]
        kind = type(node).__name__
        request = _request_of(pipeline, name)
        _check_connected(pipeline, name, request)
        # Statistics of the store describe data.cube/mask/wavelengths: each requested port must be fed by
        # them directly (a transforming node in between changes what the node would see).
        for port, data_port in (
            (request.cube_port, PORT_CUBE),
            (request.mask_port, PORT_MASK),
            (request.wavelengths_port, PORT_WAVELENGTHS),
        ):
            source = None if port is None else pipeline.source_of(name, port)
            if port is not None and source != (DATA_NODE, data_port):
                raise PipelineError(
                    f"node {name!r} ({kind}) cannot be initialised from precomputed statistics",
                    expected=f"its input {port!r} fed directly by data.{data_port}",
                    found=f"it is fed by {source[0]}.{source[1]}" if source else "no connection",
                    fix="statistics of the raw data do not describe a transformed input; initialise it with "
                    "StatisticalTrainer(pipeline=..., datamodule=...).fit()",
                )
        if request.mask_port is not None and np.asarray(stats.classes).size < 2:
            raise LabelError(
                f"node {name!r} ({kind}) needs labelled statistics",
                expected="statistics computed with a label mask (classes 0 and > 0)",
                found=f"classes {np.asarray(stats.classes).tolist()}",
                fix="compute the statistics over acquisitions with a mask",
            )
        if request.contrast and not stats.has_contrast:
            raise ConfigError(
                f"node {name!r} ({kind}) needs the spatial contrast terms",
                expected="statistics with contrast (Laplacian energy)",
                found="statistics without them",
                fix="compute them with contrast=True, e.g. compute_statistics(..., contrast=True)",
            )
        if request.histograms and not stats.has_histograms:
            raise ConfigError(
                f"node {name!r} ({kind}) needs per-class histograms (AUC, MI)",
                expected="statistics with histograms",
                found="statistics without histograms",
                fix="compute them with histograms, e.g. compute_statistics(..., n_bins=...)",
            )
        if request.wavelengths_port is not None and wavelengths is None:
            raise WavelengthError(
                f"node {name!r} ({kind}) needs wavelengths",
                expected="wavelengths=... (one per band, nm)",
                found="None",
                fix="pass the campaign's wavelengths, e.g. campaign.wavelengths",
            )
        node.fit_from_statistics(stats, wavelengths=wavelengths if request.wavelengths_port else None)
    return names
