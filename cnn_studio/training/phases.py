"""The phases' ``fit`` calls of one run (head, fine-tune or scratch; :func:`fit_all`).

Phases follow :func:`cnn_studio.training.schedule.plan`. Each phase has its callbacks (events,
TensorBoard, stopping rules, time budget, checkpoints), says why it ended and records it in
state.json's ``schedule``; a phase whose validation loss was still falling says so (StillImproving).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

from cnn_studio.backbones.activation_split import KeptActivations
from cnn_studio.backbones.classifier import (
    build_classifier,
    freeze_backbone,
    trainable_layer_count,
    unfreeze_depth,
)
from cnn_studio.core import events as ev
from cnn_studio.core.cancel import Cancelled
from cnn_studio.core.paths import RunLayout
from cnn_studio.data.bands import read_band_info
from cnn_studio.runs.run_folder import load_model, read_history, read_state
from cnn_studio.training import activation_cache, schedule
from cnn_studio.training.cached_fit import (
    feature_cache_choice,
    fine_tune_activations,
    head_on_features,
    upper_on_activations,
)
from cnn_studio.training.config import TrainConfig
from cnn_studio.training.devices import precision_policy, strategy_kind
from cnn_studio.training.feature_cache import remove_feature_files
from cnn_studio.training.fit_context import Fit, PreparedRun, RunContext, jit_compile
from cnn_studio.training.lr_finder import make_optimizer
from cnn_studio.training.run_state import record_schedule, set_state
from cnn_studio.training.schedule import format_duration
from cnn_studio.training.time_budget import Budget, budget_stop


@dataclass(frozen=True)
class _Phase:
    name: str
    first_epoch: int
    end_epoch: int
    learning_rate: float | None


def _phases(config: TrainConfig) -> list[_Phase]:
    """The planned phases with their global epoch ranges (an automatic phase's range is its maximum)."""
    out, cursor = [], 0
    for p in schedule.plan(config):
        out.append(_Phase(p.name, cursor, cursor + p.max_epochs, p.learning_rate))
        cursor += p.max_epochs
    return out


def _load_last(layout: RunLayout):
    return load_model(layout.last_model)  # checked: a CNN Studio model of this run's classes and size


def fit_all(run: RunContext, config: TrainConfig, prepared: PreparedRun, *, start_epoch: int, best: float) -> None:
    """The phases' ``fit`` calls (``run_data.fit_run`` prepares the data and reports the skipped files).

    Phases follow :func:`cnn_studio.training.schedule.plan`; an automatic phase ends when the
    validation loss stops improving, so the next one starts where it ended (state.json
    ``schedule.<phase>.end``, which ``resume`` reads).
    """
    import keras

    layout, spec, size = run.layout, prepared.spec, prepared.size
    with precision_policy(prepared.policy), prepared.strategy.scope():
        run.sink(ev.StageChanged(task="train", stage="Building model", detail=f"{spec.label} at {size}x{size} px"))
        saved_optimizer = None
        if start_epoch > 0 and layout.last_model.exists():
            model = _load_last(layout)
            # Adam moments, a learning rate lowered on plateau (none in a checkpoint kept from before a NaN loss)
            saved_optimizer = getattr(model, "optimizer", None)
        else:
            model = build_classifier(spec, prepared.n_classes, weights=config.weights, image_size=size,
                                     dropout=config.dropout, bands=read_band_info(layout.bands))
        fit = Fit(layout, config, prepared.data, prepared.train_ds, prepared.val_ds, prepared.class_weight,
                  prepared.n_classes, model,
                  keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing), run.sink, run.cancel,
                  run.budget, prepared.tensorboard, prepared.images_in_memory, best, saved_optimizer)
        run.kept_validation = _fit_planned(fit, start_epoch)


def _fit_planned(fit: Fit, start_epoch: int) -> KeptActivations | None:
    """Every planned phase not finished before ``start_epoch``, in order; the kept activations released after,
    but for their validation part (in memory), which is returned for the check after training."""
    layout = fit.layout
    recorded = dict(read_state(layout).get("schedule") or {})
    cursor = 0
    for plan in schedule.plan(fit.config):
        begin, facts = cursor, recorded.get(plan.name) or {}
        end = int(facts["end"]) if facts.get("finished") else begin + plan.max_epochs
        cursor = end
        first = max(begin, start_epoch)
        if first >= end:
            continue
        if not _phase_fits(fit, plan):
            break
        try:
            cursor = _fit_phase(fit, plan, first, end, begin)
        except BaseException:
            activation_cache.release(fit.activations, layout.feature_cache)
            raise
        if fit.cancel is not None and fit.cancel.cancelled:
            raise Cancelled()
    kept = activation_cache.validation_part(fit.activations)
    activation_cache.release(fit.activations, layout.feature_cache)  # the check after training needs memory
    fit.activations = None
    record_schedule(layout, left_out=fit.left_out)
    return kept


def _phase_fits(fit: Fit, plan) -> bool:
    """Whether a first epoch of ``plan`` fits the time budget (estimated from the feature computation)."""
    if not fit.budget.active or plan.name != "fine_tune" or fit.forward_images_per_s <= 0:
        return True
    if strategy_kind(0) == "multi_worker":  # each worker would decide on its own clock (see _phase_callbacks)
        return True
    n_train, n_val = fit.data.train_count, fit.data.val_count
    rate = fit.forward_images_per_s
    if fit.activations is not None and fit.activations.upper_images_per_s > 0:
        rate = fit.activations.upper_images_per_s  # epochs run the upper part on the kept activations
    estimate = (3 * n_train + n_val) / rate
    if fit.budget.fits(estimate):
        return True
    why = (f"fine-tuning left out: an epoch takes about {format_duration(estimate)} and "
           f"{format_duration(max(fit.budget.left(), 0))} of the time budget is left")
    fit.left_out.append(why)
    fit.sink(ev.LogMessage("warning", f"Time budget: {why}."))
    return False


@dataclass
class _PhaseCallbacks:
    """One phase's callbacks (``all``, in order) and those whose outcome the phase reads afterwards."""

    all: list
    events: object  # callbacks.EventCallback: diverged, interrupted
    stopper: object  # keras EarlyStopping, or None
    budget: object  # time_budget.budget_stop: stopped
    checkpoints: object  # callbacks.AtomicCheckpoints: best, epochs_done


def _phase_callbacks(fit: Fit, plan, phase: str, first: int) -> _PhaseCallbacks:
    """The callbacks of one phase's ``fit``: events, TensorBoard, stopping rules, checkpoints (in this order)."""
    import keras

    from cnn_studio.training.callbacks import AtomicCheckpoints, CheckpointRules, EventCallback, PhaseFacts

    config = fit.config
    events = EventCallback(fit.sink, fit.cancel, PhaseFacts(phase, epochs_total=config.total_epochs,
                                                            batch_size=config.batch_size,
                                                            steps=fit.data.steps_per_epoch))
    if strategy_kind(0) == "multi_worker":
        # Reading a metric mid-epoch is a cross-worker collective, which each worker would issue
        # at its own moments (the throttle is by time): the workers' collectives then mismatch.
        events._running_loss = dict
    callbacks = [events]
    if fit.tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(str(fit.layout.tensorboard), write_graph=False, profile_batch=0))
    patience = plan.patience or config.early_stopping_patience
    stopper = None
    if patience:  # restores the phase's best weights, so the next phase starts from them
        stopper = keras.callbacks.EarlyStopping(patience=patience, restore_best_weights=bool(plan.patience))
        callbacks.append(stopper)
    plateau = config.reduce_lr_patience or (max(plan.patience // 2, 1) if plan.patience else 0)
    if plateau and not schedule.uses_cosine(plan, config):  # the cosine sets the rate of every step
        callbacks.append(keras.callbacks.ReduceLROnPlateau(patience=plateau, factor=0.3))
    # several workers must stop at the same epoch: a wall-clock rule each measures itself could split them
    budget = budget_stop(fit.budget if strategy_kind(0) != "multi_worker" else Budget(0))
    callbacks.append(budget)
    rules = CheckpointRules(best=fit.best, initial_epoch=first,
                            min_interval_s=float(config.extra.get("checkpoint_interval_s", 30.0)))
    checkpoints = AtomicCheckpoints(fit.model, fit.layout, fit.sink, rules=rules,
                                    skip_epoch=lambda cb=events: cb.interrupted,
                                    diverged=lambda cb=events: cb.diverged is not None)
    callbacks.append(checkpoints)
    return _PhaseCallbacks(callbacks, events, stopper, budget, checkpoints)


def phase_rate(fit: Fit, plan, first: int, end: int, begin: int):
    """The optimizer's learning rate for a fine-tune or scratch phase from ``first`` to ``end``: the plan's rate,
    or its warm-up and cosine (:func:`schedule.fine_tune_rate`; no warm-up when resumed part-way)."""
    rate = plan.learning_rate or schedule.DEFAULT_LEARNING_RATE
    if not schedule.uses_cosine(plan, fit.config):
        return rate
    return schedule.fine_tune_rate(rate, epochs=end - first, steps_per_epoch=fit.data.steps_per_epoch,
                                   warm_up=first == begin)


def _fit_phase(fit: Fit, plan, first: int, end: int, begin: int) -> int:
    """Train one phase from global epoch ``first`` to at most ``end``; returns the epoch it ended at."""
    from cnn_studio.training.callbacks import diverged_error

    config, model = fit.config, fit.model
    if plan.name == "head":
        freeze_backbone(model)
    elif plan.name == "fine_tune":
        unfreeze_depth(model, config.effective_fine_tune_depth)
    else:  # scratch: everything learns
        model.get_layer("backbone").trainable = True
    use_cache = plan.name == "head" and config.feature_cache and not config.augment
    features = None
    if use_cache:
        features = feature_cache_choice(fit.layout, model, fit.data, fit.sink, fit.images_in_memory)
        use_cache = features.mode != "none"
    on_activations = plan.name == "fine_tune" and fine_tune_activations(fit, resuming=first > begin)
    cbs = _phase_callbacks(fit, plan, plan.name, first)
    callbacks, events, checkpoints = cbs.all, cbs.events, cbs.checkpoints
    try:
        if use_cache:
            fit_model, fit_train, fit_val, rate = head_on_features(fit, plan, features, first)
        elif on_activations:
            fit_model, fit_train, fit_val, rate = upper_on_activations(fit, plan, phase_rate(fit, plan, first, end, begin))
        else:
            rate = plan.learning_rate or schedule.DEFAULT_LEARNING_RATE
            if plan.learning_rate is None:
                fit.sink(ev.LogMessage("info", f"Learning rate {rate:g} for the head: the learning-rate finder runs "
                                               "on cached features only (here the backbone runs every epoch)."))
            optimizer = make_optimizer(config.optimizer, phase_rate(fit, plan, first, end, begin))
            if fit.saved_optimizer is not None and first > begin:
                optimizer = fit.saved_optimizer  # resuming inside this phase: continue its optimizer state
            model.compile(optimizer=optimizer, loss=fit.loss, metrics=["accuracy"], jit_compile=jit_compile(config))
            fit_model, fit_train, fit_val = model, fit.train_ds, fit.val_ds
        fit.sink(ev.PhaseStarted(name=plan.name, epochs=end - first, first_epoch=first, learning_rate=rate,
                                 trainable_layers=trainable_layer_count(model),
                                 uses_feature_cache=bool(use_cache or on_activations)))
        with warnings.catch_warnings():
            # Our datasets drop unreadable files, so their length is unknown until the first pass
            # ends; Keras then says "Your input ran out of data" once. That is expected, not a fault.
            warnings.filterwarnings("ignore", message="Your input ran out of data")
            fit_model.fit(fit_train, validation_data=fit_val, initial_epoch=first, epochs=end,
                          callbacks=callbacks, class_weight=fit.class_weight, shuffle=False, verbose=0)
    finally:
        if use_cache:
            remove_feature_files(fit.layout.feature_cache / "features")  # only this phase reads them
    fit.best = checkpoints.best
    if events.diverged is not None:  # the loss became NaN/inf: stopped, the last good checkpoint kept
        raise diverged_error(events.diverged, rate, int(read_state(fit.layout).get("checkpoint_epoch", 0) or 0))
    if fit.cancel is not None and fit.cancel.cancelled:
        return checkpoints.epochs_done
    return _phase_ended(fit, plan, begin, end, rate, cbs)


def _phase_ended(fit: Fit, plan, begin: int, end: int, rate, cbs: _PhaseCallbacks) -> int:
    """Record what the phase did (state.json ``schedule``) and say why it stopped."""
    stopper, budget = cbs.stopper, cbs.budget
    done = cbs.checkpoints.epochs_done
    if stopper is not None and stopper.stopped_epoch > 0:
        how = (f"stopped after {done - begin} epoch(s): no lower validation loss for {stopper.patience} epochs; "
               f"the best (epoch {stopper.best_epoch + 1}) was kept")
    elif budget.stopped:
        how = f"stopped after {done - begin} of {end - begin} epoch(s) to stay within the time budget"
        fit.left_out.append(f"{plan.name.replace('_', '-')} epochs {done + 1}–{end}")
    else:
        how = f"ran all {end - begin} epoch(s)"
    fit.sink(ev.LogMessage("info", f"Phase '{plan.name}' {how}."))
    record_schedule(fit.layout, phase=plan.name, start=begin, end=done, finished=True, how=how,
                     automatic=plan.automatic, max_epochs=plan.max_epochs, learning_rate=rate)
    last = plan.name == schedule.plan(fit.config)[-1].name
    if (last or budget.stopped) and not (stopper is not None and stopper.stopped_epoch > 0):
        if schedule.uses_cosine(plan, fit.config) and not budget.stopped:
            _annealed(fit, plan.name, begin, done)
        else:
            _check_still_improving(fit, plan.name, begin, done, stopped_by_budget=budget.stopped,
                                   automatic=plan.automatic)
    return done


def _val_losses(fit: Fit, begin: int, end: int) -> list[float]:
    """The validation losses of epochs ``begin`` to ``end`` (exclusive), from history.csv."""
    losses = []
    for row in read_history(fit.layout.history):
        epoch = int(float(row.get("epoch", -1)))
        if begin <= epoch < end and row.get("val_loss") not in (None, ""):
            losses.append(float(row["val_loss"]))
    return losses


def _annealed(fit: Fit, phase: str, begin: int, end: int) -> None:
    """A cosine phase that ran its course with its lowest validation loss last: that is the rate reaching 0, not
    a phase cut short, so no StillImproving (Continue training would restart it at its peak rate); a log line."""
    losses = _val_losses(fit, begin, end)
    if schedule.still_improving(losses):
        fit.sink(ev.LogMessage("info", f"Phase '{phase}' had its lowest validation loss in its last epoch "
                                       f"({losses[-1]:.3f}), as expected when its learning rate falls along the "
                                       "cosine to 0: the schedule ran its course, and that epoch's weights are kept."))


def _check_still_improving(fit: Fit, phase: str, begin: int, end: int, *, stopped_by_budget: bool,
                           automatic: bool = False) -> None:
    """A phase that ended while its validation loss was still falling: say so (event, log, state.json)."""
    losses = _val_losses(fit, begin, end)
    if not schedule.still_improving(losses):
        return
    why = ("the time budget ended it" if stopped_by_budget else
           "it reached the schedule's maximum" if automatic else "its epochs ran out")
    text = (f"The validation loss was still falling when phase '{phase}' ended ({losses[-2]:.3f} → "
            f"{losses[-1]:.3f} in its last epoch): {why}, and more epochs would likely give a better model. "
            "Use Continue training (cnn-studio resume RUN --more-epochs N)"
            + ("." if automatic else ", or the automatic schedule (leave the epochs empty)."))
    fit.sink(ev.StillImproving(phase=phase, epochs=len(losses), val_loss_before=losses[-2],
                               val_loss_after=losses[-1], message=text))
    fit.sink(ev.LogMessage("warning", text))
    record_schedule(fit.layout, phase=phase, still_improving=True)
    set_state(fit.layout, still_improving=True)
