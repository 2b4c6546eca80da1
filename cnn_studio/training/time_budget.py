"""A training run's time budget (``TrainConfig.time_budget_s``): the schedule fits itself into it.

The clock starts when ``train``/``resume`` is called. After each epoch :class:`BudgetStop` compares
what is left with the longest epoch of the phase so far (plus a reserve for the check of the model
that follows training) and stops the phase before an epoch that would end past the budget. A phase
whose first epoch cannot fit (estimated from the feature computation: a fine-tune epoch costs
about three forward passes over the training images and one over the validation images) is left
out. What was cut is said in the log and recorded in state.json (``schedule.left_out``).
"""

from __future__ import annotations

import time

REVIEW_SHARE = 0.1  # without a measured speed, this share of the budget is kept for the check after training


class Budget:
    """``seconds`` from ``started`` (time.monotonic()); 0 seconds = no budget."""

    def __init__(self, seconds: float, started: float | None = None) -> None:
        self.seconds = float(seconds or 0)
        self.started = time.monotonic() if started is None else started
        self.reserve = REVIEW_SHARE * self.seconds  # replaced by a measured estimate when there is one

    @property
    def active(self) -> bool:
        return self.seconds > 0

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def left(self) -> float:
        """Seconds left for training (the reserve for the check after training taken off); inf without a budget."""
        return self.seconds - self.reserve - self.elapsed() if self.active else float("inf")

    def fits(self, seconds: float) -> bool:
        return seconds <= self.left()

    def reserve_for_review(self, val_images: int, images_per_s: float) -> None:
        """Keep time for the check after training: about three forward passes over the validation images."""
        if images_per_s > 0:
            self.reserve = min(3 * val_images / images_per_s + 2.0, 0.5 * self.seconds)


def budget_stop(budget: Budget):
    """A Keras callback that stops ``fit`` when the next epoch (as long as the longest so far) would end
    past the budget; its ``stopped`` says whether it did (Keras is imported here, not with this module)."""
    import keras

    class BudgetStop(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.budget = budget
            self.stopped = False
            self.longest = 0.0
            self._t = 0.0

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self._t = time.monotonic()

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            self.longest = max(self.longest, time.monotonic() - self._t)
            if self.budget.active and not self.budget.fits(self.longest):
                self.stopped = True
                self.model.stop_training = True

    return BudgetStop()
