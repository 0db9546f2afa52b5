"""What a training run records: one :class:`EpochRecord` per epoch, gathered in a :class:`History`.

Each record keeps the loss function's terms (for the book's losses the ELBO and its two terms, in nats per
example) as a mapping per split, ``record.train["kl"]`` and ``record.val["elbo"]``, so that a loss with
other terms records those without any change here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["EpochRecord", "History"]

SPLITS = ("train", "val")


@dataclass(frozen=True)
class EpochRecord:
    """Means over one epoch, in nats per example: ``train[term]``, and ``val[term]`` (None without validation)."""

    epoch: int
    train: Mapping[str, float]
    val: Mapping[str, float] | None
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """Plain dicts and numbers (what a checkpoint stores)."""
        val = dict(self.val) if self.val is not None else None
        return {"epoch": self.epoch, "train": dict(self.train), "val": val, "seconds": self.seconds}


@dataclass
class History:
    """What ``fit`` returns: one :class:`EpochRecord` per epoch, and the epoch whose weights were kept."""

    records: list[EpochRecord] = field(default_factory=list)
    best_epoch: int | None = None

    @property
    def epochs(self) -> list[int]:
        """The epoch numbers, e.g. to plot against."""
        return [record.epoch for record in self.records]

    def series(self, split: str, term: str) -> list[float | None]:
        """One term over epochs, e.g. ``history.series("val", "elbo")`` (None where a split was not measured)."""
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; choose one of {list(SPLITS)}")
        values = [getattr(record, split) for record in self.records]
        known = {name for terms in values if terms is not None for name in terms}
        if known and term not in known:
            raise ValueError(f"unknown term {term!r}; this history records {sorted(known)}")
        return [terms[term] if terms is not None else None for terms in values]

    def __len__(self) -> int:
        return len(self.records)

    def to_dict(self) -> dict[str, Any]:
        """Plain lists, dicts and numbers (what a checkpoint stores)."""
        return {"records": [record.to_dict() for record in self.records], "best_epoch": self.best_epoch}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> History:
        return cls([EpochRecord(**record) for record in data["records"]], data["best_epoch"])
