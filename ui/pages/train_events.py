"""What the Train step does with a run's events and with how the run ended (on the GUI thread).

Mixed into :class:`~cnn_studio.ui.pages.train_page.TrainPage`: it uses the page's ``curves``, ``lr_plot``,
``progress_row``, ``device``/``precision``, ``notice``, ``status`` (through ``_set_status``) and the log
(``_append``)."""

from __future__ import annotations

from pathlib import Path

from cnn_studio.ui.messages import describe_error, show_error
from cnn_studio.ui.pages.train_jobs import more_epochs_for
from cnn_studio.ui.widgets.notice_banner import NoticeExamples

from cnn_studio.core import events as ev
from cnn_studio.core.paths import RunLayout
from cnn_studio.runs.listing import NO_MODEL_YET

_PHASES = {"head": "Training the new layer (backbone frozen)", "scratch": "Training the whole network from scratch"}


class TrainEvents:
    """One small handler per kind of event (:data:`_HANDLERS`), the review's warnings, and the run's end."""

    def _on_train_event(self, e: object) -> None:
        self.curves.add_event(e)
        for cls in type(e).__mro__:
            handler = _HANDLERS.get(cls)
            if handler is not None:
                handler(self, e)
                return

    def _on_stage(self, e: ev.StageChanged) -> None:
        self._set_status(f"{e.stage}…" + (f" {e.detail}" if e.detail else ""))

    def _on_started(self, e: ev.TrainStarted) -> None:
        self.progress_row.begin_epochs(e.epochs, e.steps)
        self._append(f"Training {e.backbone} on {e.train_images:,} images "
                     f"(validating on {e.val_images:,}), {e.epochs} epoch(s) of {e.steps} batch(es).")
        self._set_status("Training…")
        self._device_line = e.device
        self.device.setText(e.device)
        self.precision.setText(e.precision)
        for line in (e.device, e.precision):
            if line:
                self._append(line)

    def _on_phase(self, e: ev.PhaseStarted) -> None:
        what = (f"Fine-tuning the top {e.trainable_layers} layers" if e.name == "fine_tune"
                else _PHASES.get(e.name, e.name))
        self._set_status(f"{what} · learning rate {e.learning_rate:g}")
        up_to = "up to " if self.session.config.schedule == "auto" else ""
        self._append(f"Phase '{e.name}': {up_to}{e.epochs} epoch(s)" +
                     (" using cached features (fast)" if e.uses_feature_cache else ""))

    def _on_batch(self, e: ev.BatchEnded) -> None:
        row = self.progress_row
        row.epoch_bar()
        if e.gpu_memory_mib is not None:
            self.device.setText(f"{self._device_line} GPU memory in use: {e.gpu_memory_mib / 1024:.1f} GiB.")
        steps = row.steps_per_epoch
        row.show_progress(e.epoch * steps + min(e.step, steps), e.images_per_s, self._fixed_schedule())

    def _on_epoch(self, e: ev.EpochEnded) -> None:
        self.progress_row.show_progress((e.epoch + 1) * self.progress_row.steps_per_epoch, e.images_per_s,
                                        self._fixed_schedule())
        logs = e.logs
        parts = [f"{k} {logs[k]:.4f}" for k in ("loss", "accuracy", "val_loss", "val_accuracy") if k in logs]
        self._append(f"Epoch {e.epoch + 1}/{e.epochs} ({e.seconds:.1f} s): " + ", ".join(parts))

    def _fixed_schedule(self) -> bool:
        return self.session.config.schedule == "fixed"

    def _on_checkpoint(self, e: ev.CheckpointSaved) -> None:
        if e.kind == "best":
            self._append(f"  best model so far saved (epoch {e.epoch + 1}"
                         + (f", {e.monitor} {e.value:.4f})" if e.monitor else ")"))

    def _on_task(self, e: ev.TaskProgress) -> None:
        self._set_status(f"{e.task}: {e.detail or f'{e.done:,}/{e.total:,}'}")
        self.progress_row.show_task(e)

    def _on_rate_found(self, e: ev.LearningRateFound) -> None:
        self.lr_plot.show_finding(e.rates, e.losses, e.suggestion, e.reason)

    def _on_still_improving(self, e: ev.StillImproving) -> None:
        self.notice.show_notice("Still improving.", e.message, "", "info")

    def _on_chance(self, e: ev.ChanceLevel) -> None:
        self._add_review_warning("Not better than guessing." if e.verdict == "not_better" else
                                 "Not shown to be better than guessing.", e.message, e.hint)

    def _on_shortcut(self, e: ev.ShortcutSuspected) -> None:
        self._add_review_warning("Possible shortcut.", e.message, e.hint, list(e.examples)[:6], box=e.box,
                                 resize=e.resize)

    def _on_calibrated(self, e: ev.Calibrated) -> None:
        if e.applied:
            self._append(f"Confidence calibrated on {e.n_images} validation images: temperature {e.temperature:.3g}, "
                         f"calibration error (ECE) {e.ece_before:.3f} → {e.ece_after:.3f}.")
        else:
            self._append(f"Confidence not recalibrated: {e.reason or 'not needed'} "
                         f"(calibration error {e.ece_before:.3f}).")

    def _on_log_message(self, e: ev.LogMessage) -> None:
        if e.level == "info" or not any(e.text.startswith(w) for w in self.review_warnings):
            self._append(("⚠ " if e.level != "info" else "") + e.text)

    def _on_finished_event(self, e: ev.TrainFinished) -> None:
        if e.status == "cancelled" and e.epochs_done == 0:
            self._append(NO_MODEL_YET)  # not "the best model so far is kept": no epoch ended, nothing was learnt
        elif e.message and not self.review_warnings:
            self._append(e.message)

    def _add_review_warning(self, title: str, message: str, hint: str, examples: list | None = None, *,
                            box=None, resize: str = "stretch") -> None:
        """A review finding after training: logged once, and shown in the amber notice under the status.

        ``box``: a suspected shortcut's region, framed on its example images.
        """
        self.review_warnings.append(message)
        self._review_hints.append(hint)
        self._append(f"⚠ {message}" + (f" {hint}" if hint else ""))
        if examples:
            self._review_examples = (list(examples), box, resize)
        shown, box, resize = self._review_examples
        if len(self.review_warnings) == 1:
            self.notice.show_notice(title, message, hint, "warning", NoticeExamples(tuple(shown), box, resize))
        else:  # a second finding: all of them, and every hint, in one notice
            self.notice.show_notice("Do not trust this model yet.", " ".join(self.review_warnings),
                                    " ".join(h for h in self._review_hints if h), "warning",
                                    NoticeExamples(tuple(shown), box, resize))

    # ---------------------------------------------------------------- how the run ended
    def _on_train_returned(self, result) -> None:
        self.progress.setValue(self.progress.maximum())
        warnings = list(getattr(result, "warnings", None) or [])
        if warnings:
            self._set_status(f"Finished with warnings — the model is saved in {result.run_dir}, but do not trust it "
                             "yet: see the warning below and what to try.", "warning")
            if not self.review_warnings:
                self.notice.show_notice("Do not trust this model yet.", " ".join(warnings), "", "warning")
        elif more_epochs_for(result.run_dir):
            self._set_status(f"Finished — the best model is saved in {result.run_dir}. Its validation loss was still "
                             "falling: Continue training would likely make it better.", "warning")
        else:
            self._set_status(f"Finished — the best model is saved in {result.run_dir}.", "ok")
        self.outcome = "Training finished" + (" with warnings: see the Train step." if warnings else ".")
        self._append(f"Done: {result.epochs_done} epoch(s). Best model: {result.best_model}")
        self._run_dir = Path(result.run_dir)  # this page's own run: set_run below keeps its live curves
        self.session.set_run(result.run_dir)
        self.evaluate_button.setVisible(True)
        self._status_for_signal = "completed"

    def _on_train_cancelled(self) -> None:
        self.speed.setText("")  # no time left to estimate
        kept = self._run_dir is not None and RunLayout(self._run_dir).best_model.exists()  # after an epoch
        if kept:
            self._set_status(f"Stopped — the best model so far is kept in {self._run_dir}.", "warning")
            self.outcome = "Training stopped; the best model so far is kept."
            self.session.set_run(self._run_dir)
            self.evaluate_button.setVisible(True)
        else:
            self._set_status(NO_MODEL_YET, "warning")
            self.outcome = NO_MODEL_YET
        self._append("Training stopped by you.")
        self._status_for_signal = "cancelled"

    def _on_train_errored(self, exc: BaseException) -> None:
        if self._run_dir is not None and any(m.exists() for m in RunLayout(self._run_dir).models):
            self.session.set_run(self._run_dir)  # what it saved before failing stays usable (and resumable)
        msg = describe_error(exc)
        self._set_status(f"Training failed: {msg.text} {msg.hint}", "error")
        self.outcome = "Training failed; see the Train step."
        self._append(f"Error: {msg.text}")
        self._status_for_signal = "failed"
        show_error(self, exc)

    def _on_train_finished(self) -> None:
        self._task = None
        self.progress_row.clock.stop()
        self.stop_button.setEnabled(False)
        self._update_plan()
        self._update_resume()
        self.training_finished.emit(self._status_for_signal)


_HANDLERS = {
    ev.StageChanged: TrainEvents._on_stage, ev.TrainStarted: TrainEvents._on_started,
    ev.PhaseStarted: TrainEvents._on_phase, ev.BatchEnded: TrainEvents._on_batch, ev.EpochEnded: TrainEvents._on_epoch,
    ev.CheckpointSaved: TrainEvents._on_checkpoint, ev.TaskProgress: TrainEvents._on_task,
    ev.LearningRateFound: TrainEvents._on_rate_found, ev.StillImproving: TrainEvents._on_still_improving,
    ev.ChanceLevel: TrainEvents._on_chance, ev.ShortcutSuspected: TrainEvents._on_shortcut,
    ev.Calibrated: TrainEvents._on_calibrated, ev.LogMessage: TrainEvents._on_log_message,
    ev.TrainFinished: TrainEvents._on_finished_event,
}
