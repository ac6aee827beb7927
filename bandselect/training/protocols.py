"""What the trainers need from a datamodule, as runtime-checkable protocols.

The trainers check these with ``isinstance`` (never by probing attributes), so any object with the right
methods works: :class:`~bandselect.training.ArrayDataModule`,
:class:`~bandselect.training.CampaignDataModule`, :class:`~bandselect.training.patches.PatchDataModule`,
or a user's own.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol, runtime_checkable

__all__ = ["DataModule", "EpochAwareDataModule", "ValidationDataModule"]


@runtime_checkable
class DataModule(Protocol):
    """Training batches ``{"cube", "mask" (optional), "wavelengths"}``; all both trainers require."""

    def train_dataloader(self) -> Iterable[Mapping[str, Any]]:
        """The training batches (the gradient trainer calls it once per epoch)."""
        ...


@runtime_checkable
class ValidationDataModule(DataModule, Protocol):
    """A datamodule with validation batches: the gradient trainer evaluates losses and metrics on them."""

    def val_dataloader(self) -> Iterable[Mapping[str, Any]] | None:
        """The validation batches, or None when there is no validation data."""
        ...


@runtime_checkable
class EpochAwareDataModule(DataModule, Protocol):
    """A datamodule whose training batches depend on the epoch (e.g. random patches seeded per epoch).

    The gradient trainer calls ``set_epoch(epoch)`` before each epoch, so a resumed run draws the same
    batches as an uninterrupted one.
    """

    def set_epoch(self, epoch: int) -> None:
        """Draw the batches of ``epoch`` next."""
        ...
