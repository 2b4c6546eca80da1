"""The Data step's two label tools on the loaded dataset: the label check (images whose label looks wrong,
then the review queue) and the suggestion queue (unlabelled images ranked by what would teach the model
most). Both run off the GUI thread; after either changed labels, the dataset is read again."""

from __future__ import annotations

from pathlib import Path

from cnn_studio.ui.widgets.task_strip import TaskStrip
from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QWidget


class LabelTools(QObject):
    """``labels_changed(root)``: corrections or new labels were saved for the dataset at ``root``."""

    labels_changed = Signal(str)

    def __init__(self, session, page: QWidget, task_strip: TaskStrip) -> None:
        super().__init__(page)
        self.session = session
        self._page = page  # the dialogs' parent
        self._task_strip = task_strip
        self.label_check = None
        self.suggest_run = None

    def find_label_issues(self) -> None:
        """Run the label check, then open the review queue."""
        from cnn_studio.ui.label_check import LabelCheck

        index = self.session.index
        if index is None:
            return
        if self.label_check is not None:
            self.label_check.cancel()
        check = LabelCheck(self.session, self._page)
        check.corrections_changed.connect(lambda root=index.root: self.labels_changed.emit(str(root)))
        self.label_check = check
        task = check.start(index.root)  # the Model step's backbone and weights (see label_check_choice)
        how = f" ({check.describe})" if check.describe else ""
        self._task_strip.attach(task, f"Looking for images whose label looks wrong{how}…")

    def suggest_images(self, pool: str | Path, **kwargs):
        """Rank ``pool`` for the current dataset and open the suggestion queue."""
        from cnn_studio.ui.suggest_queue import SuggestRun

        index = self.session.index
        if self.suggest_run is not None:
            self.suggest_run.cancel()
        run = SuggestRun(self.session, self._page)
        run.labels_changed.connect(lambda root=index.root: self.labels_changed.emit(str(root)))
        self.suggest_run = run
        self._task_strip.attach(run.start(index.root, str(pool), **kwargs), "Ranking the images to label next…")
        return run
