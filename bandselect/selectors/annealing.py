"""What the learnable selectors share: the temperature schedule, seeded Gumbel noise, freezable logits.

:class:`AnnealedSelector` is the base of :class:`~bandselect.selectors.SoftChannelSelector` and
:class:`~bandselect.selectors.ConcreteBandSelector`. It makes them
:class:`~bandselect.pipeline.node.Annealed` (the gradient trainer calls ``update_temperature(epoch)`` at
the start of every epoch; the current temperature is a buffer, so a resumed run continues the schedule)
and :class:`~bandselect.pipeline.node.Freezable` (the logits are a buffer until ``unfreeze()`` makes them
an ``nn.Parameter``; the ``state_dict`` key is the same either way).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import numpy as np
import torch
from torch import nn

from bandselect.errors import ConfigError, ShapeError
from bandselect.pipeline.node import Node
from bandselect.selectors.relaxations import gumbel_noise
from bandselect.validation import check_float, check_int

if TYPE_CHECKING:
    from bandselect.stats import BandStatistics

__all__ = ["AnnealedSelector", "check_schedule", "variance_logits"]


def check_schedule(
    owner: str, temperature_init: object, temperature_min: object, temperature_decay: object
) -> tuple[float, float, float]:
    """Validate a temperature schedule ``T = max(temperature_min, temperature_init · decay ** epoch)``.

    Raises
    ------
    ConfigError
        A non-positive temperature, a decay outside ``(0, 1]``, or a floor above the start (the schedule
        would start below its own floor).
    """
    start = check_float(owner, "temperature_init", temperature_init, minimum=0.0, strict_minimum=True)
    floor = check_float(owner, "temperature_min", temperature_min, minimum=0.0, strict_minimum=True)
    decay = check_float(
        owner, "temperature_decay", temperature_decay, minimum=0.0, maximum=1.0, strict_minimum=True
    )
    if floor > start:
        raise ConfigError(
            f"The 'temperature_min' parameter of {owner}",
            expected=f"a floor at most temperature_init={start!r} (the schedule anneals down to it)",
            found=f"temperature_min={floor!r} above temperature_init={start!r}",
            fix="lower temperature_min or raise temperature_init, e.g. temperature_init=5.0, "
            "temperature_min=0.1",
        )
    return start, floor, decay


class AnnealedSelector(Node):
    """Base of the learnable selectors: an annealed temperature, seeded noise and freezable logits.

    Subclasses name their logits tensor in :attr:`LOGITS` and call :meth:`_setup_annealing` in their
    constructor after ``Node.__init__``.
    """

    #: Name of the learnable logits tensor (buffer or parameter) in the ``state_dict``.
    LOGITS: ClassVar[str] = "logits"

    temperature_init: float
    temperature_min: float
    temperature_decay: float
    eps: float
    seed: int | None

    def _setup_annealing(
        self,
        logits: torch.Tensor,
        *,
        temperature_init: float,
        temperature_min: float,
        temperature_decay: float,
        eps: float,
        seed: int | None,
    ) -> None:
        self.temperature_init = temperature_init
        self.temperature_min = temperature_min
        self.temperature_decay = temperature_decay
        self.eps = eps
        self.seed = seed
        self._generator: torch.Generator | None = None
        self.reseed(seed)
        self.register_buffer(self.LOGITS, logits.to(torch.float32))
        self.register_buffer("current_temperature", torch.tensor(temperature_init, dtype=torch.float32))

    @staticmethod
    def _check_seed(owner: str, seed: int | None) -> int | None:
        return None if seed is None else check_int(owner, "seed", seed, minimum=0)

    # -- temperature -----------------------------------------------------------------------------
    @property
    def temperature(self) -> float:
        """The current temperature (a float; stored in the ``current_temperature`` buffer)."""
        return float(self._buffers["current_temperature"].item())

    @temperature.setter
    def temperature(self, value: float) -> None:
        value = check_float(type(self).__name__, "temperature", value, minimum=0.0, strict_minimum=True)
        self._buffers["current_temperature"].fill_(value)

    def temperature_at(self, epoch: int) -> float:
        """The temperature at ``epoch``: ``max(temperature_min, temperature_init · decay ** epoch)``.

        Pure: the node's temperature is not changed (the trainer asks it, e.g., when the floor is reached).
        """
        epoch = check_int(type(self).__name__, "epoch", epoch, minimum=0)
        return max(self.temperature_min, self.temperature_init * self.temperature_decay**epoch)

    def update_temperature(self, epoch: int) -> float:
        """Anneal: ``T = max(temperature_min, temperature_init · temperature_decay ** epoch)``.

        Parameters
        ----------
        epoch : int
            Zero-based epoch number (``epoch=0`` gives ``temperature_init``).

        Returns
        -------
        float
            The new temperature.
        """
        value = self.temperature_at(epoch)
        self.temperature = value
        return value

    # -- randomness --------------------------------------------------------------------------------
    def reseed(self, seed: int | None) -> None:
        """Restart the Gumbel noise sequence from ``seed`` (``None``: use torch's global generator)."""
        if seed is None:
            self._generator = None
        else:
            self._generator = torch.Generator(device="cpu")
            self._generator.manual_seed(int(seed))

    def _gumbel_noise(self, shape: tuple[int, ...]) -> torch.Tensor:
        return gumbel_noise(shape, self._generator, self.eps)

    # -- trainability ------------------------------------------------------------------------------
    @property
    def is_trainable(self) -> bool:
        """Whether the logits are currently an ``nn.Parameter``."""
        return self.LOGITS in self._parameters

    def unfreeze(self) -> None:
        """Turn the logits buffer into a trainable ``nn.Parameter`` (same state_dict key)."""
        if self.is_trainable:
            return
        logits = self._buffers.pop(self.LOGITS)
        setattr(self, self.LOGITS, nn.Parameter(logits.detach().clone()))

    def freeze(self) -> None:
        """Turn trainable logits back into a buffer (same state_dict key)."""
        if not self.is_trainable:
            return
        logits = self._parameters.pop(self.LOGITS)
        self.register_buffer(self.LOGITS, logits.detach().clone())

    def move_band(self, old: int, new: int) -> None:
        """Make the hard selection hold band ``new`` instead of ``old`` by swapping their logits.

        Every other logit, the temperature and the noise stay as they are, so the relaxation keeps its
        shape around the new subset (used by :func:`~bandselect.training.two_phase.refine_selection`).

        Raises
        ------
        ShapeError
            A band outside ``0..C-1``.
        """
        logits = getattr(self, self.LOGITS)
        channels = int(logits.shape[-1])
        for band in (old, new):
            if not 0 <= int(band) < channels:
                raise ShapeError(
                    f"{type(self).__name__}.move_band",
                    expected=f"band indices in 0..{channels - 1}",
                    found=f"{old} -> {new}",
                    fix="pass bands of this selector's input channels",
                )
        with torch.no_grad():
            column = logits[..., int(old)].clone()
            logits[..., int(old)] = logits[..., int(new)]
            logits[..., int(new)] = column


def variance_logits(stats: BandStatistics, channels: int, eps: float, owner: str) -> torch.Tensor:
    """``log(variance per channel + eps)`` from data-set-wide band statistics (``stats.variance``).

    Raises
    ------
    ShapeError
        Statistics of another number of channels.
    """
    variance = np.asarray(stats.variance, dtype=np.float64)
    if variance.shape != (channels,):
        raise ShapeError(
            f"{owner} statistics",
            expected=f"variance of {channels} channels",
            found=f"shape {variance.shape}",
            fix="compute the statistics on the cube this selector receives",
        )
    return torch.from_numpy(np.log(np.maximum(variance, 0.0) + eps)).to(torch.float32)
