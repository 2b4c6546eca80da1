"""Running the label check from the app: :class:`LabelCheck` runs the finder in a child process
(``child_process.run_job``, off the GUI thread through :func:`~cnn_studio.ui.workers.start_task`) with the
Model step's backbone and weights (:func:`label_check_choice`), opens the :class:`ReviewQueue` when it
returns and says when corrections changed. No TensorFlow is imported here.
"""

from __future__ import annotations

from cnn_studio.ui.workers import start_task
from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QWidget

from cnn_studio.backbones.registry import get as get_spec
from cnn_studio.core.child_process import run_job
from cnn_studio.core.errors import StudioError
from cnn_studio.core.paths import job_log
from cnn_studio.labels.checker import choose_checker, default_checker
from cnn_studio.labels.corrections import Corrections


def label_check_choice(config=None) -> tuple[dict, str]:
    """The finder's settings from the Model step's ``config`` (a TrainConfig) and a note ("" or why not).

    Its backbone and weights (read by the one weights parser) when they give the check something to
    judge by: pretrained weights (frozen features) or the Small CNN (trained per fold), with its image
    size and resize policy. A pretrained backbone set to train from scratch has no features: the check
    then takes :func:`~cnn_studio.labels.checker.default_checker` (pretrained features when any load
    offline, else the Small CNN) and says so. No config: the default checker.
    """

    if config is not None:
        try:
            chosen = choose_checker(config.backbone, config.weights)
            return ({"backbone": chosen.backbone, "weights": chosen.weights.value, "image_size": config.image_size,
                     "resize": config.resize}, "")
        except StudioError:
            fallback = default_checker()
            label = get_spec(config.backbone).label
            return ({"backbone": fallback.backbone, "weights": fallback.weights.value},
                    f"The Model step trains {label} from scratch, which gives the check nothing to judge by: "
                    f"it used {fallback.describe()} instead.")
    fallback = default_checker()
    return {"backbone": fallback.backbone, "weights": fallback.weights.value}, ""


def find_issues_in_child(root: str, *, sink, cancel, **kwargs):
    """Run :func:`cnn_studio.labels.issues.find_label_issues` in a child process (TensorFlow stays out of the app)."""

    return run_job("cnn_studio.labels.issues:find_label_issues", str(root), sink=sink, cancel=cancel,
                   log_path=job_log("label_issues", root), label="label check", **kwargs)


class LabelCheck(QObject):
    """Run the finder for the session's dataset, then open the review queue.

    Signals
    -------
    opened(object)
        The :class:`ReviewQueue` dialog, once shown.
    corrections_changed()
        The queue closed after decisions were made or undone: read the dataset again.
    """

    opened = Signal(object)
    corrections_changed = Signal()

    def __init__(self, session, parent: QWidget) -> None:
        super().__init__(parent)
        self.session = session
        self.task = None
        self.note = ""
        self.describe = ""  # the checker in words, once started ("VGG16, frozen ImageNet features")
        self.dialog = None  # the ReviewQueue, once opened
        session.closing.connect(self.cancel)

    def start(self, root: str, **kwargs):
        """Start the check of ``root`` (a folder or CSV); returns the task (attach it to a task strip)."""

        self.note = ""
        if "backbone" not in kwargs:
            settings, self.note = label_check_choice(self.session.config)
            kwargs = {**settings, **kwargs}
        try:
            self.describe = choose_checker(kwargs.get("backbone"), kwargs.get("weights"), kwargs.get("method")).describe()
        except StudioError:
            self.describe = ""  # the finder says why, in the task's error
        self._root = str(root)
        self.task = start_task(find_issues_in_child, self._root, on_returned=self._on_returned, **kwargs)
        return self.task

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()
        if self.dialog is not None:
            self.dialog.heatmaps.close_model()

    def _on_returned(self, issues) -> None:
        from cnn_studio.ui.review_queue import ReviewQueue

        corrections = Corrections.for_dataset(self._root)
        parent = self.parent() if isinstance(self.parent(), QWidget) else None
        self.dialog = ReviewQueue(issues, corrections, parent, run_dir=self.session.run_dir, note=self.note)
        self.dialog.finished.connect(self._on_closed)
        self.dialog.show()
        self.opened.emit(self.dialog)

    def _on_closed(self, _result: int) -> None:
        if self.dialog is not None and self.dialog.changed:
            self.corrections_changed.emit()
