"""A training recipe: a frozen value every trained number carries with it (importable without torch;
:mod:`dmnas.train` runs it)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from dmnas.catalog import DEFAULT_STRATEGY, SCHEDULES
from dmnas.errors import DmnasError
from dmnas.util.fieldcheck import check_field_types


@dataclass(frozen=True)
class TrainRecipe:
    """The paper's evaluation protocol: SGD momentum 0.9, wd 5e-4, lr 0.01 decayed x0.1 halfway."""

    epochs: int = 300
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    batch_size: int = 256
    strategy: str = DEFAULT_STRATEGY  # 'none' disables augmentation
    schedule: str = "step"  # a name in SCHEDULES

    def __post_init__(self) -> None:
        check_field_types(self)
        if self.schedule not in SCHEDULES:
            raise DmnasError(f"unknown schedule {self.schedule!r}; valid: {', '.join(SCHEDULES)}")

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    def describe(self) -> str:
        """One short line for reports: what a reader needs to judge a number trained this way."""
        aug = "no augmentation" if self.strategy == "none" else "DSA"
        return (
            f"{self.epochs} ep, {self.schedule} lr {self.lr:g}, batch {self.batch_size}, "
            f"wd {self.weight_decay:g}, {aug}"
        )
