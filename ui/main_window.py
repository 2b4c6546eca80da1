"""MainWindow: the step sidebar (Data → Model → Train → Evaluate → Classify → Export), menus, status bar.

It wires pages to the :class:`StudioSession` and holds no logic of its own beyond "which step
can be opened now" and the questions asked before quitting.

Every step page follows one small protocol: it is made as ``Page(session)``, learns what changed
from the session's signals (``dataset_changed``, ``split_changed``, ``config_changed``,
``run_changed``, ``project_opened``) and tells the session through its ``set_*`` methods; what it
must stop when the app quits it stops in ``shutdown()``, connected to ``session.closing``. The
window never reaches into a page's widgets.

The window is joined from parts that each own one thing: the steps and their pages
(:mod:`~cnn_studio.ui.window_steps`: only the Data step is built with the window, the others when
first opened), the menus and Help windows (:mod:`~cnn_studio.ui.window_menus`), the project file
(:mod:`~cnn_studio.ui.window_project`) and the runs (:mod:`~cnn_studio.ui.window_runs`). What is
left here: dropping files on the window and quitting.
"""

from __future__ import annotations

from pathlib import Path

from cnn_studio.ui import messages
from cnn_studio.ui.pages.data_page import DataPage
from cnn_studio.ui.session import StudioSession
from cnn_studio.ui.settings import StudioSettings
from cnn_studio.ui.widgets.drop_zone import local_paths
from cnn_studio.ui.widgets.screen_fit import resize_to_fit
from cnn_studio.ui.window_menus import WindowMenus
from cnn_studio.ui.window_project import ProjectFiles
from cnn_studio.ui.window_runs import RunsOffer
from cnn_studio.ui.window_steps import NEEDS_DATA, NEEDS_RUN, STEPS, StepPages
from cnn_studio.ui.workers import cancel_all_and_wait
from PySide6.QtCore import QTimer
from PySide6.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QLabel, QMainWindow, QMessageBox, QWidget

from cnn_studio.data.formats import is_image_suffix
from cnn_studio.runs.project import PROJECT_SUFFIX

__all__ = ["NEEDS_DATA", "NEEDS_RUN", "STEPS", "MainWindow"]


class MainWindow(StepPages, WindowMenus, ProjectFiles, RunsOffer, QMainWindow):
    """The application window. ``page(i)`` is step ``i``'s page (``data_page``, ``model_page`` … by name),
    built the first time it is needed."""

    def __init__(self, session: StudioSession | None = None, settings: StudioSettings | None = None,
                 icon_dir: Path | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session or StudioSession(self)
        self.settings = settings or StudioSettings()
        self._icon_dir = icon_dir
        self.setWindowTitle("CNN Studio")
        self.setAcceptDrops(True)
        resize_to_fit(self, 1280, 820)  # less on a smaller screen: the window always fits

        self._default_config = self._start_with_default_config()
        self.data_page = DataPage(self.session)
        self.setCentralWidget(self._make_steps_view())

        self.project_label = QLabel()
        self.statusBar().addPermanentWidget(self.project_label)
        self._make_actions()

        self.data_page.continue_requested.connect(lambda: self.go_to(1))
        self.data_page.check_finished.connect(self._on_data_checked)
        self._steps_follow_session()
        for sig in (self.session.project_changed, self.session.dirty_changed):
            sig.connect(self._update_title)
        self.session.run_changed.connect(self._on_session_run_changed)
        self.runs_view = None
        self._offered_runs = False
        self.update_steps()
        self._update_title()
        self.sidebar.setCurrentRow(0)
        geometry = self.settings.window_geometry()
        if geometry is not None:
            self.restoreGeometry(geometry)

    # ---------------------------------------------------------------- drag and drop
    def drop_target(self, paths: list[Path]) -> str | None:
        """Where dropped ``paths`` go: "project", "dataset", "classify" or None (refused).

        On the Classify step everything dropped is classified (a folder of new pictures, too);
        elsewhere a folder or CSV opens as a dataset, a project file opens, and image files go to
        Classify once a trained model exists.
        """
        if not paths:
            return None
        p = paths[0]
        if p.suffix == PROJECT_SUFFIX:
            return "project"
        classify_ready = self._run_ok
        if classify_ready and self.current_step() == STEPS.index("Classify"):
            return "classify"
        if p.is_dir() or p.suffix.lower() == ".csv":
            return "dataset"
        if classify_ready and any(is_image_suffix(x) for x in paths):
            return "classify"
        return None

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 - Qt override
        if self.drop_target(local_paths(event.mimeData())):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 - Qt override
        paths = local_paths(event.mimeData())
        target = self.drop_target(paths)
        if target is None:
            event.ignore()
            if paths:
                self.statusBar().showMessage(
                    "Drop a folder of class folders (a dataset) or a project file here; "
                    "pictures can be dropped once a model is trained.", 8000)
            return
        event.acceptProposedAction()
        if target == "classify":
            self.go_to(STEPS.index("Classify"))
            self.classify_page.add_paths(paths)
        else:
            self.open_path(paths[0])

    # ---------------------------------------------------------------- quitting
    def ask_stop_training(self) -> bool:
        """Ask whether to stop the running training (scripted runs, ``BLOCKING`` off: yes)."""
        if not messages.BLOCKING:
            return True
        answer = QMessageBox.question(self, "Training is running",
                                      "Stop training and quit? The best model so far is kept.",
                                      QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                                      QMessageBox.StandardButton.No)
        return answer == QMessageBox.StandardButton.Yes

    def showEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        if not self._offered_runs:
            self._offered_runs = True
            QTimer.singleShot(0, self.offer_runs_on_start)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override
        train = self.built_page(STEPS.index("Train"))
        if train is not None and train.is_training:
            if not self.ask_stop_training():
                event.ignore()
                return
            train.stop()
        if not self._confirm_discard():
            event.ignore()
            return
        self.statusBar().showMessage("Stopping running tasks…")
        cancel_all_and_wait(30000)
        self.session.close()  # session.closing → each page's shutdown(), e.g. the Classify step's model process
        self.settings.set_window_geometry(self.saveGeometry())
        self.settings.sync()
        event.accept()
