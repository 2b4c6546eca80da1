"""The training schedule: automatic (the default everywhere) or fixed epoch counts — one definition.

A :class:`~cnn_studio.training.config.TrainConfig` with neither ``epochs`` nor ``fine_tune_epochs``
set (both ``None``) trains on the **automatic schedule**:

* a pretrained backbone: the new head trains with the backbone frozen (on cached features, a
  fraction of a second per epoch) until the validation loss has not improved for
  ``HEAD_PATIENCE`` epochs (at most ``HEAD_MAX_EPOCHS``), its best weights restored; then the
  chosen depth is fine-tuned until the validation loss has not improved for ``FINE_TUNE_PATIENCE``
  epochs (at most ``FINE_TUNE_MAX_EPOCHS``), best weights restored. Its learning rate warms up over
  the first epoch from a tenth of ``fine_tune_learning_rate`` to it, then falls along a cosine to 0
  at the phase's last epoch (:func:`fine_tune_rate`): the unfrozen layers are not shaken by a full
  rate at their first steps, and the phase ends on small steps (bench/default_vs_guide.py). The head's learning rate is picked by the learning-rate finder (:mod:`lr_finder`) when
  the head trains on cached features and no rate was set;
* a network trained from scratch: one phase with early stopping (``SCRATCH_PATIENCE``) and a
  generous maximum (``SCRATCH_MAX_EPOCHS``).

The head and scratch phases lower their learning rate ×0.3 on a plateau (half the patience); a plateau
patience that was set (``reduce_lr_patience``, "plateau" in the settings) applies to every phase, and
replaces the fine-tune phase's cosine. Setting ``epochs`` (and/or ``fine_tune_epochs``) gives the **fixed schedule**:
exactly those epochs, as before (``--epochs N --fine-tune-epochs M`` on the command line).

A time budget (``TrainConfig.time_budget_s``) applies to both: each phase stops before an epoch
that would end past the budget, and a phase that cannot fit is left out (:mod:`time_budget`).
What the schedule did is recorded in state.json under ``"schedule"`` (:func:`record_phase`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cnn_studio.core.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from cnn_studio.training.config import TrainConfig

HEAD_MAX_EPOCHS = 100
HEAD_PATIENCE = 6
FINE_TUNE_MAX_EPOCHS = 7  # with the warm-up and cosine: 7 and 8 scored alike (0.960 and 0.956, 4 seeds, bench photo shapes), 6 about 1 point less
FINE_TUNE_PATIENCE = 4  # half the cosine: a patience of 2-3 stopped runs at its high rates (0.90 instead of 0.96)
SCRATCH_MAX_EPOCHS = 100
SCRATCH_PATIENCE = 8
WARMUP_EPOCHS = 1  # the automatic fine-tune phase's warm-up
WARMUP_START = 0.1  # ... from this fraction of its rate
DEFAULT_LEARNING_RATE = 1e-3  # the head's (or a scratch network's) rate when the finder is not used


@dataclass(frozen=True)
class PhasePlan:
    """One phase as planned: ``max_epochs`` (exact when ``patience`` is 0), its rate and why."""

    name: str  # "head", "fine_tune" or "scratch"
    max_epochs: int
    patience: int  # 0 = fixed: run every epoch
    learning_rate: float | None  # None: the learning-rate finder picks it (auto head on cached features)

    @property
    def automatic(self) -> bool:
        return self.patience > 0


def is_automatic(config: TrainConfig) -> bool:
    """The automatic schedule: neither ``epochs`` nor ``fine_tune_epochs`` given."""
    return config.epochs is None and config.fine_tune_epochs is None


def plan(config: TrainConfig) -> list[PhasePlan]:
    """The phases ``config`` trains, in order (a fixed phase of 0 epochs is left out)."""
    pretrained = config.weights_choice.pretrained
    if is_automatic(config):
        if not pretrained:
            return [PhasePlan("scratch", SCRATCH_MAX_EPOCHS, SCRATCH_PATIENCE,
                              config.learning_rate or DEFAULT_LEARNING_RATE)]
        return [PhasePlan("head", HEAD_MAX_EPOCHS, HEAD_PATIENCE, config.learning_rate),
                PhasePlan("fine_tune", FINE_TUNE_MAX_EPOCHS, FINE_TUNE_PATIENCE, config.fine_tune_learning_rate)]
    head, fine = config.epochs or 0, config.fine_tune_epochs or 0
    rate = config.learning_rate or DEFAULT_LEARNING_RATE
    if not pretrained:
        return [PhasePlan("scratch", head + fine, 0, rate)]
    out = []
    if head:
        out.append(PhasePlan("head", head, 0, rate))
    if fine:
        out.append(PhasePlan("fine_tune", fine, 0, config.fine_tune_learning_rate))
    return out


def uses_cosine(plan: PhasePlan, config: TrainConfig) -> bool:
    """Whether ``plan`` warms up and decays its rate along a cosine: the automatic fine-tune phase, unless a
    plateau patience was set (the user's "plateau" then rules every phase)."""
    return plan.automatic and plan.name == "fine_tune" and not config.reduce_lr_patience


def fine_tune_rate(peak: float, *, epochs: int, steps_per_epoch: int, warm_up: bool = True):
    """The automatic fine-tune phase's learning rate over ``epochs`` epochs of ``steps_per_epoch`` steps:
    a ``keras.optimizers.schedules.CosineDecay`` that (with ``warm_up``) rises linearly over
    :data:`WARMUP_EPOCHS` from ``WARMUP_START × peak`` to ``peak``, then falls along a cosine to 0 at the
    last step. A phase resumed part-way has no warm-up and decays over the epochs it has left.
    """
    import keras

    steps = max(int(steps_per_epoch), 1)
    total = max(int(epochs), 1) * steps
    warm = min(WARMUP_EPOCHS * steps, total - 1) if warm_up else 0
    if not warm:
        return keras.optimizers.schedules.CosineDecay(peak, total, alpha=0.0)
    return keras.optimizers.schedules.CosineDecay(peak * WARMUP_START, total - warm, alpha=0.0,
                                                  warmup_target=peak, warmup_steps=warm)


def max_epochs(config: TrainConfig) -> int:
    """The most epochs ``config`` can train (exact for a fixed schedule)."""
    return sum(p.max_epochs for p in plan(config))


_PHASE_WORDS = {"head": "the new head (backbone frozen)", "fine_tune": "fine-tuning {depth}",
                "scratch": "the whole network from scratch"}


def describe(config: TrainConfig, *, cached_features: bool | None = None) -> str:
    """The plan line: what the schedule will do and why, in one or two sentences.

    ``cached_features``: whether the head will train on cached features (None: as the config
    asks, i.e. feature cache on and no augmentation).
    """
    if cached_features is None:
        cached_features = config.feature_cache and not config.augment
    parts = []
    for p in plan(config):
        what = _PHASE_WORDS[p.name].format(depth=config.effective_fine_tune_depth)
        if p.automatic:
            rate = ("a learning rate the finder picks" if p.learning_rate is None and cached_features
                    else f"learning rate {p.learning_rate or DEFAULT_LEARNING_RATE:g}")
            if uses_cosine(p, config):
                rate = (f"a learning rate that warms up to {p.learning_rate:g} over its first epoch, then falls "
                        "along a cosine to 0")
            parts.append(f"{what} until the validation loss stops improving ({p.patience} epochs without a "
                         f"lower one, at most {p.max_epochs}), at {rate}")
        else:
            parts.append(f"{what} for {p.max_epochs} epoch(s) at learning rate {p.learning_rate:g}")
    text = "Schedule: " + "; then ".join(parts) + "."
    if is_automatic(config):
        text += " The best weights of each phase are kept."
        if config.weights_choice.pretrained and cached_features:
            text += " Head epochs run on cached features, so they take a fraction of a second each."
    else:
        text += " Fixed epochs (set in Advanced); the run says so if it ends while still improving."
    if config.time_budget_s:
        text += f" Time budget {format_duration(config.time_budget_s)}: phases stop before they would exceed it."
    return text


# ---------------------------------------------------------------- durations ("10m", "1h30m", "90s", "600")
_DURATION = re.compile(r"^\s*(?:(\d+(?:\.\d+)?)\s*h)?\s*(?:(\d+(?:\.\d+)?)\s*m(?:in)?)?\s*(?:(\d+(?:\.\d+)?)\s*s?)?\s*$")


def parse_duration(text: str | float | int | None) -> float:
    """``"10m"``, ``"1h30m"``, ``"90s"`` or ``"600"`` (seconds) → seconds; empty/None/"none" → 0 (no budget).

    Examples
    --------
    >>> parse_duration("10m"), parse_duration("1h30m"), parse_duration("45"), parse_duration("")
    (600.0, 5400.0, 45.0, 0.0)
    """
    if text is None:
        return 0.0
    if isinstance(text, (int, float)):
        return float(text)
    if text.strip().lower() in ("", "none", "0"):
        return 0.0
    m = _DURATION.match(text.lower())
    if not m or not any(m.groups()):
        raise ConfigError(f"Time budget: expected a duration such as 10m, 1h30m or 90s, received {text!r}.",
                          "Use h, m and s for hours, minutes and seconds (a plain number is seconds).")
    h, mins, s = (float(g) if g else 0.0 for g in m.groups())
    return h * 3600 + mins * 60 + s


def format_duration(seconds: float) -> str:
    """600 → "10 min", 5400 → "1 h 30 min", 45 → "45 s"."""
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    if h:
        return f"{h} h {m} min" if m else f"{h} h"
    if m:
        return f"{m} min {s} s" if s else f"{m} min"
    return f"{s} s"


# ---------------------------------------------------------------- what the run did (state.json "schedule")
def record_phase(state_schedule: dict[str, Any] | None, name: str, **facts: Any) -> dict[str, Any]:
    """``state["schedule"]`` with phase ``name``'s facts merged in (a new dict)."""
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in (state_schedule or {}).items()}
    out[name] = {**out.get(name, {}), **facts}
    return out


def still_improving(val_losses: list[float], *, window: int = 3) -> bool:
    """Whether a validation loss curve was still falling at its end.

    True when the last epoch has the lowest validation loss so far and the loss fell over the
    last ``window`` epochs (at least two epochs are needed).

    Examples
    --------
    >>> still_improving([0.9, 0.7, 0.57, 0.49])
    True
    >>> still_improving([0.9, 0.5, 0.49, 0.52])
    False
    """
    vals = [v for v in val_losses if v == v]  # drop NaN
    if len(vals) < 2:
        return False
    tail = vals[-window:]
    return vals[-1] <= min(vals) and tail[-1] < tail[0]
