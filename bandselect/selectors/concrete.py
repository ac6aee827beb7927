"""ConcreteBandSelector: ``n_select`` Concrete (Gumbel-softmax) one-hot choices of a band each.

The seed's "alternative selector" (the concrete autoencoder's selector layer: Abid, Balin and Zou,
"Concrete Autoencoders", ICML 2019). Each of the ``n_select`` outputs holds its own logits over the ``C``
input bands and becomes, as the temperature falls, a one-hot choice of one band: a true dimension
reduction ``(B, H, W, C) → (B, H, W, n_select)``, usable directly as the 3-channel input of an RGB model.
"""

from __future__ import annotations

from typing import Any, Literal

import torch

from bandselect.errors import ConfigError, NotFittedError
from bandselect.nodes.ports import sized_ports
from bandselect.pipeline.node import PortSpec, StatisticsRequest
from bandselect.pipeline.registry import register_node
from bandselect.selection import BandSelection
from bandselect.selectors.annealing import AnnealedSelector, check_schedule, variance_logits
from bandselect.validation import (
    check_bool,
    check_choice,
    check_float,
    check_int,
    validate_cube,
    validate_node_wavelengths,
)

__all__ = ["ConcreteBandSelector", "resolve_distinct_bands"]

INIT_METHODS = ("uniform", "variance")


def resolve_distinct_bands(
    probabilities: torch.Tensor | None = None, *, log_probabilities: torch.Tensor | None = None
) -> tuple[list[int], list[int]]:
    """One distinct band per row of an ``(n_select, C)`` probability matrix, given as exactly one of
    ``probabilities`` or ``log_probabilities``.

    Rows choose in order of confidence (largest row maximum first, ties to the lower row); each takes its
    most probable band that no earlier row took (ties to the lower band). A row whose favourite band was
    taken by a more confident row therefore gets its next-best band instead of a duplicate.

    Confidence is compared in log space (pass ``log_probabilities``, e.g. ``log_softmax`` of the logits
    in float64, where probabilities saturate): at the trainer's floor temperature the largest
    probabilities of several rows round to exactly 1.0, and the order would fall to the row index. Rows
    whose largest log-probability is equal even so (both 0.0) are ordered by the gap between their two
    best log-probabilities.

    Returns
    -------
    bands_by_row, resolution_order
        ``bands_by_row[j]`` is row ``j``'s band; ``resolution_order`` the rows in the order they chose.

    Raises
    ------
    ConfigError
        Both or neither of ``probabilities`` and ``log_probabilities`` given.

    Examples
    --------
    >>> p = torch.tensor([[0.1, 0.8, 0.1], [0.2, 0.7, 0.1], [0.5, 0.4, 0.1]])
    >>> resolve_distinct_bands(p)
    ([1, 0, 2], [0, 1, 2])
    """
    if (probabilities is None) == (log_probabilities is None):
        raise ConfigError(
            "resolve_distinct_bands",
            expected="exactly one of probabilities or log_probabilities",
            found="both" if probabilities is not None else "neither",
            fix="pass the (n_select, C) matrix once: resolve_distinct_bands(log_probabilities=log_p)",
        )
    if probabilities is not None:
        rows = torch.log(probabilities.detach().to(torch.float64).cpu())
    else:
        assert log_probabilities is not None  # checked above
        rows = log_probabilities.detach().to(torch.float64).cpu()
    top2 = torch.topk(rows, k=min(2, rows.shape[1]), dim=1).values
    margin = (top2[:, 0] - top2[:, -1]).tolist()
    order = sorted(range(rows.shape[0]), key=lambda j: (-float(rows[j].max()), -margin[j], j))
    taken: set[int] = set()
    bands = [0] * rows.shape[0]
    for j in order:
        ranked = torch.sort(-rows[j], stable=True).indices.tolist()
        band = next(b for b in ranked if b not in taken)
        taken.add(band)
        bands[j] = band
    return bands, order


@register_node
class ConcreteBandSelector(AnnealedSelector):
    """``n_select`` learnable one-hot band choices (Concrete / Gumbel-softmax), annealed by the trainer.

    Output ``j`` is ``selected[..., j] = Σ_c W[j, c] · data[..., c]`` with ``W[j] = softmax((logits[j] + g_j)
    / T)`` in training (``g_j`` Gumbel(0, 1) noise, one draw per output and band per forward call, shared
    by the batch) and ``softmax(logits[j] / T)`` in evaluation; with ``hard=True`` (default) evaluation
    uses the one-hot rows of :meth:`get_selected_bands`, so the output is exactly ``n_select`` bands of the
    input. The gradient trainer anneals ``T`` every epoch (``update_temperature``, the
    :class:`~bandselect.pipeline.node.Annealed` protocol), ``unfreeze()`` / ``freeze()`` make ``logits``
    trainable and back (same ``state_dict`` key), and the temperature is a buffer (a resumed run continues
    its schedule).

    Duplicates. Two outputs may prefer the same band (nothing forbids it during training; connect
    ``channel_weights`` to :class:`~bandselect.selectors.SelectorDiversityRegularizer`, which penalises a
    band carrying more than one output). :meth:`get_selected_bands` always returns ``n_select`` distinct
    bands: outputs choose in order of confidence (largest probability first), each taking its most
    probable band not yet taken (:func:`resolve_distinct_bands`).

    Training (:func:`bandselect.training.learnable.training_pipeline`): RX on the ``n_select`` outputs
    with the detector's own ridge (1e-3; the outputs become the selected bands, so a larger ridge would
    train a blurred version of the detector they are judged by), the regularizers on
    ``channel_weights``, and an increasing score head (``ScoreToLogit(positive=True)``): Concrete's first
    bands can rank the anomalies *below* the background, and with a free sign the loss then inverted RX
    and trained the outputs to hide the anomalies (planted campaign: test AUROC 0.46, 0.9998 with it).

    Parameters
    ----------
    input_channels : int
        Number of input bands ``C``.
    n_select : int, default 3
        Number of outputs (selected bands), ``1 <= n_select <= input_channels``.
    init_method : {"uniform", "variance"}, default "uniform"
        ``"uniform"``: zero logits (before training every output prefers band 0; duplicates resolve to
        bands ``0 .. n_select-1``). ``"variance"``: every output's logits are ``log(variance + eps)`` of
        the training data (as :class:`~bandselect.selectors.SoftChannelSelector`; before training the
        selection is the ``n_select`` highest-variance bands), computed by the statistical initialisation.
    temperature_init, temperature_min, temperature_decay : float, default 5.0, 0.1, 0.9
        The schedule ``T = max(temperature_min, temperature_init · temperature_decay ** epoch)``.
    hard : bool, default True
        Evaluation mode outputs the exact selected bands (one-hot rows); False: the soft rows.
    eps : float, default 1e-6
        Variance floor of the log and Gumbel uniform clamp.
    seed : int or None, default None
        Seed of the node's own generator for the Gumbel noise (None: torch's global generator).

    Shape
    -----
    - data: ``(B, H, W, C)`` float32
    - selected: ``(B, H, W, n_select)`` float32
    - weights: ``(n_select, C)`` float32, each row summing to 1
    - channel_weights: ``(C,)`` float32, the column sums of ``weights`` (summing to ``n_select``)

    Examples
    --------
    >>> import torch
    >>> from bandselect.selectors import ConcreteBandSelector
    >>> selector = ConcreteBandSelector(input_channels=6, n_select=3, seed=0)
    >>> logits = [[0.0, 0, 0, 0, 9, 0], [0, 9, 0, 0, 8, 0], [0, 0, 0, 0, 9, 0]]
    >>> with torch.no_grad():
    ...     _ = selector.logits.copy_(torch.tensor(logits))
    >>> selector.get_selected_bands()  # outputs 0 and 2 both prefer band 4: output 2 takes its next best
    [4, 1, 0]
    >>> out = selector.eval().forward(data=torch.rand(2, 4, 4, 6))
    >>> tuple(out["selected"].shape), tuple(out["weights"].shape), float(out["channel_weights"].sum())
    ((2, 4, 4, 3), (3, 6), 3.0)
    """

    LOGITS = "logits"
    INPUT_PORTS = (PortSpec("data", torch.float32, ("B", "H", "W", "C"), "Input hyperspectral cube"),)
    OUTPUT_PORTS = (
        PortSpec("selected", torch.float32, ("B", "H", "W", "n_select"), "The n_select selected bands"),
        PortSpec("weights", torch.float32, ("n_select", "C"), "Band weights of each output (rows sum to 1)"),
        PortSpec(
            "channel_weights",
            torch.float32,
            ("C",),
            "Weight each band carries over all outputs (sums to n_select; for the regularizers)",
        ),
    )

    def __init__(
        self,
        input_channels: int,
        n_select: int = 3,
        init_method: Literal["uniform", "variance"] = "uniform",
        temperature_init: float = 5.0,
        temperature_min: float = 0.1,
        temperature_decay: float = 0.9,
        hard: bool = True,
        eps: float = 1e-6,
        *,
        seed: int | None = None,
    ) -> None:
        owner = type(self).__name__
        input_channels = check_int(owner, "input_channels", input_channels, minimum=1)
        n_select = check_int(owner, "n_select", n_select, minimum=1, maximum=input_channels)
        init_method = check_choice(owner, "init_method", init_method, INIT_METHODS)  # type: ignore[assignment]
        temperature_init, temperature_min, temperature_decay = check_schedule(
            owner, temperature_init, temperature_min, temperature_decay
        )
        hard = check_bool(owner, "hard", hard)
        eps = check_float(owner, "eps", eps, minimum=0.0, strict_minimum=True)
        seed = self._check_seed(owner, seed)
        self.requires_initial_fit = init_method == "variance"
        super().__init__(
            input_channels=input_channels,
            n_select=n_select,
            init_method=init_method,
            temperature_init=temperature_init,
            temperature_min=temperature_min,
            temperature_decay=temperature_decay,
            hard=hard,
            eps=eps,
            seed=seed,
        )
        self.input_channels = input_channels
        self.n_select = n_select
        self.init_method = init_method
        self.hard = hard
        # Fixed sizes in this instance's ports: `selected` has n_select channels, so connecting it to a
        # node built for C channels fails when the pipeline is built, naming both nodes.
        self.INPUT_PORTS = sized_ports(type(self).INPUT_PORTS, C=input_channels)
        self.OUTPUT_PORTS = sized_ports(type(self).OUTPUT_PORTS, C=input_channels, n_select=n_select)
        self._setup_annealing(
            torch.zeros(n_select, input_channels),
            temperature_init=temperature_init,
            temperature_min=temperature_min,
            temperature_decay=temperature_decay,
            eps=eps,
            seed=seed,
        )

    # -- statistical initialisation ---------------------------------------------------------------
    def statistics_request(self) -> StatisticsRequest | None:
        """Variance initialisation needs per-band moments of the ``data`` input; uniform needs none."""
        return StatisticsRequest(cube_port="data") if self.init_method == "variance" else None

    def fit_from_statistics(self, stats: Any, *, wavelengths: Any = None) -> None:
        """Set every output's logits to ``log(variance + eps)`` of data-set-wide band statistics."""
        if self.init_method != "variance":
            raise ConfigError(
                f"{type(self).__name__}.fit_from_statistics",
                expected="init_method='variance'",
                found=f"init_method={self.init_method!r}, which needs no statistics",
                fix="build the selector with init_method='variance' to initialise it from data",
            )
        logits = variance_logits(stats, self.input_channels, self.eps, type(self).__name__)
        with torch.no_grad():
            self.logits.copy_(logits.to(self.logits.device).expand(self.n_select, -1))
        self._mark_initialized()

    def fit(self, data: Any) -> ConcreteBandSelector:
        """Variance initialisation directly from a ``(B, H, W, C)`` tensor or array (all pixels)."""
        from bandselect.stats import statistics_of

        cube = validate_cube(data, name="data", n_channels=self.input_channels)
        self.fit_from_statistics(statistics_of(cube.detach().cpu().numpy(), n_bins=None))
        return self

    # -- selection ---------------------------------------------------------------------------------
    def _check_initialized(self) -> None:
        if not self.is_initialized:
            raise NotFittedError(
                f"{type(self).__name__} with init_method='variance'",
                expected="a statistical initialisation before use",
                found="logits not initialised",
                fix="run StatisticalTrainer(pipeline=..., datamodule=...).fit() or selector.fit(cube) first",
            )

    def _probabilities(self) -> torch.Tensor:
        return torch.softmax(self.logits.detach() / self.temperature, dim=-1)

    def _distinct_bands(self) -> tuple[list[int], list[int]]:
        # In float64 log space: at T = 0.1 float32 probabilities of confident rows are all exactly 1.0.
        log_p = torch.log_softmax(self.logits.detach().to(torch.float64) / self.temperature, dim=-1)
        return resolve_distinct_bands(log_probabilities=log_p)

    def get_selected_bands(self) -> list[int]:
        """The band of each output, ``n_select`` distinct indices in output order (duplicates resolved).

        See :func:`resolve_distinct_bands` for the rule.
        """
        self._check_initialized()
        return self._distinct_bands()[0]

    def _hard_rows(self) -> torch.Tensor:
        rows = torch.zeros_like(self.logits.detach())
        bands = torch.tensor(self.get_selected_bands(), device=rows.device)
        rows[torch.arange(self.n_select, device=rows.device), bands] = 1.0
        return rows

    def get_selection_weights(self, hard: bool = False) -> torch.Tensor:
        """The weight each band carries over all outputs, ``(C,)``, detached, summing to ``n_select``.

        ``hard=False``: the column sums of the deterministic rows ``softmax(logits / T)``; ``hard=True``:
        1.0 on each band of :meth:`get_selected_bands`, 0.0 elsewhere.
        """
        self._check_initialized()
        return (self._hard_rows() if hard else self._probabilities()).sum(dim=0)

    def selection(self, wavelengths_nm: Any) -> BandSelection:
        """The selected bands: picks in the order the outputs chose them, output order = output index.

        ``output_indices[j]`` is the band of ``selected[..., j]``; scores: the bands' total weight
        (``weight``) and each band's largest logit over the outputs (``logit``).
        """
        self._check_initialized()
        wl = validate_node_wavelengths(wavelengths_nm, self.input_channels)
        bands, order = self._distinct_bands()
        return BandSelection.create(
            [bands[j] for j in order],
            wl,
            selector_type=type(self).__name__,
            selector_config=self.config,
            output_indices=bands,
            scores={
                "weight": self.get_selection_weights(hard=False).cpu().double().numpy(),
                "logit": self.logits.detach().cpu().double().max(dim=0).values.numpy(),
            },
            strategy="concrete_band_selector",
        )

    def _rows(self) -> torch.Tensor:
        logits = self.logits
        if self.training:
            noise = self._gumbel_noise((self.n_select, self.input_channels)).to(logits.device)
            return torch.softmax((logits + noise) / self.temperature, dim=-1)
        if self.hard:
            return self._hard_rows()
        return torch.softmax(logits / self.temperature, dim=-1)

    def forward(self, data: Any) -> dict[str, torch.Tensor]:
        """Reduce ``data`` to its ``n_select`` (soft in training) selected bands.

        Returns
        -------
        dict
            ``selected`` ``(B, H, W, n_select)``, ``weights`` ``(n_select, C)``, ``channel_weights``
            ``(C,)``.
        """
        cube = validate_cube(
            data,
            name="data",
            n_channels=self.input_channels,
            fix_channels=f"pass a cube with {self.input_channels} channels or set input_channels accordingly",
        )
        self._check_initialized()
        rows = self._rows()
        selected = torch.einsum("bhwc,kc->bhwk", cube, rows.to(cube.dtype))
        return {"selected": selected, "weights": rows, "channel_weights": rows.sum(dim=0)}
