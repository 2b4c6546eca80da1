"""MainWindow: the step sidebar (Data → Model → Train → Evaluate → Classify → Export), menus, status bar.

It wires pages to the :class:`StudioSession` and holds no logic of its own beyond "which step
can be opened now" and the questions asked before quitting.

Every step page follows one small protocol: it is made as ``Page(session)``, learns what changed
from the session's signals (``dataset_changed``, ``split_changed``, ``config_changed``,
``run_changed``, ``project_opened``) and tells the session through its ``set_*`` methods; what it
must stop when the app quits it stops in ``shutdown()``, connected to ``session.closing``. The
window never reaches into a page's widgets.

Only the Data step is built (and imported) with the window: each other step page is imported and
made the first time it is opened or asked for (``window.train_page`` …), so the window paints
without loading the plots, the model views and the run tools. A page made late starts from the
session as it is then (its constructor reads the session, as it would after the matching signals).
"""

from __future__ import annotations

from pathlib import Path

from cnn_studio.ui import messages
from cnn_studio.ui.about import about_html
from cnn_studio.ui.pages.data_page import DataPage
from cnn_studio.ui.pages.model_page import ModelPage, default_config
from cnn_studio.ui.session import StudioSession
from cnn_studio.ui.settings import StudioSettings
from cnn_studio.ui.widgets.drop_zone import local_paths
from cnn_studio.ui.widgets.screen_fit import resize_to_fit
from cnn_studio.ui.workers import cancel_all_and_wait
from PySide6.QtCore import QSize, Qt, QTimer
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QDragEnterEvent,
    QDropEvent,
    QIcon,
    QKeySequence,
)
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QMessageBox,
    QStackedWidget,
    QWidget,
)

from cnn_studio.core.errors import StudioError
from cnn_studio.core.paths import runs_dir
from cnn_studio.data.formats import is_image_suffix
from cnn_studio.data.sample import GENERATED_SAMPLES
from cnn_studio.runs.listing import find_runs
from cnn_studio.runs.project import PROJECT_SUFFIX
from cnn_studio.runs.run_folder import open_run
from cnn_studio.training.config import TrainConfig

STEPS = ("Data", "Model", "Train", "Evaluate", "Classify", "Export")
STEP_ICONS = ("data", "model", "train", "evaluate", "classify", "export")
NEEDS_RUN = "Train a model first (step 3): this step works on a finished training run."
NEEDS_DATA = "Load a dataset without errors first (step 1)."

HOW_IT_WORKS = """<h3>How CNN Studio works</h3>
<ol>
<li><b>Data</b>: one folder per class. The images are checked and divided into training and
validation images (and optionally test images).</li>
<li><b>Model</b>: a <i>backbone</i> already trained on millions of photos is reused; only a small
new layer for your classes is trained (and optionally the top of the backbone, "fine-tuning").</li>
<li><b>Train</b>: watch loss go down and accuracy go up on images the network does not learn from.
The best model so far is always kept.</li>
<li><b>Evaluate</b>: where the model is right and wrong, class by class.</li>
<li><b>Classify</b>: drop new images to classify them and see which parts of the image mattered.</li>
<li><b>Export</b>: save the model for other programs (.keras, SavedModel, TFLite, ONNX).</li>
</ol>"""


class MainWindow(QMainWindow):
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
        # the other steps are imported and built when first opened (see page())
        self._pages: list[QWidget | None] = [self.data_page, *(None,) * (len(STEPS) - 1)]
        self._steps_connected = False
        self._builders = (None, self._build_model_page, self._build_train_page, self._build_evaluate_page,
                          self._build_classify_page, self._build_export_page)

        self.sidebar = QListWidget()
        self.sidebar.setObjectName("sidebar")
        self.sidebar.setIconSize(QSize(22, 22))
        self.sidebar.setFixedWidth(170)
        for i, name in enumerate(STEPS):
            item = QListWidgetItem(self._icon(STEP_ICONS[i]), f"{i + 1}. {name}")
            item.setSizeHint(QSize(150, 44))
            self.sidebar.addItem(item)
        self.stack = QStackedWidget()
        for page in self._pages:
            self.stack.addWidget(page or QWidget())  # an empty stand-in until the step is opened
        self.stack.currentChanged.connect(self.page)  # also when the stack is switched directly
        self.sidebar.currentRowChanged.connect(self._on_sidebar_row_changed)
        central = QWidget()
        lay = QHBoxLayout(central)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        lay.addWidget(self.sidebar)
        lay.addWidget(self.stack, 1)
        self.setCentralWidget(central)

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

    # ---------------------------------------------------------------- step pages, built when first needed
    def page(self, i: int) -> QWidget:
        """Step ``i``'s page, imported and built now if this is the first time it is needed."""
        page = self._pages[i]
        if page is None:
            page = self._pages[i] = self._builders[i]()
            stand_in = self.stack.widget(i)
            was_current = self.stack.currentIndex() == i
            self.stack.insertWidget(i, page)
            if was_current:
                self.stack.setCurrentIndex(i)
            self.stack.removeWidget(stand_in)
            stand_in.deleteLater()
            self._steps_follow_session()
        return page

    def _steps_follow_session(self) -> None:
        """Update the steps on the session's signals after every built page has seen them (slots run in
        the order they were connected, and the Train page's ``can_continue`` must be current)."""
        for sig in (self.session.split_changed, self.session.run_changed, self.session.dataset_changed):
            if self._steps_connected:
                sig.disconnect(self.update_steps)
            sig.connect(self.update_steps)
        self._steps_connected = True

    def built_page(self, i: int) -> QWidget | None:
        """Step ``i``'s page if it has been built, else None (nothing is imported or built)."""
        return self._pages[i]

    @property
    def pages(self) -> list[QWidget]:
        """The six step pages in order (builds those not built yet)."""
        return [self.page(i) for i in range(len(STEPS))]

    @property
    def model_page(self):
        return self.page(1)

    @property
    def train_page(self):
        return self.page(2)

    @property
    def evaluate_page(self):
        return self.page(3)

    @property
    def classify_page(self):
        return self.page(4)

    @property
    def export_page(self):
        return self.page(5)

    def _start_with_default_config(self) -> TrainConfig | None:
        """A new session starts on the Model step's default settings (:func:`default_config`) before
        that step is built: the Data step, the label check and training read them."""
        if self.session.config != TrainConfig() or self.session.dirty:
            return None
        config, _why = default_config()
        self.session.set_config(config)
        self.session.dirty = False
        return config

    def _build_model_page(self) -> QWidget:
        if self._default_config is not None and self.session.config == self._default_config \
                and not self.session.dirty:
            # still the untouched start: the page chooses the default again itself and says why
            self.session.config = TrainConfig()
        page = ModelPage(self.session)
        page.continue_requested.connect(lambda: self.go_to(2))
        return page

    def _build_train_page(self) -> QWidget:
        from cnn_studio.ui.pages.train_page import TrainPage

        page = TrainPage(self.session)
        page.evaluate_requested.connect(lambda: self.go_to(3))
        page.training_started.connect(lambda: self.statusBar().showMessage("Training…"))
        page.training_finished.connect(self._on_training_finished)
        return page

    def _build_evaluate_page(self) -> QWidget:
        from cnn_studio.ui.pages.evaluate_page import EvaluatePage

        page = EvaluatePage(self.session)
        page.corrections_changed.connect(self.data_page.open_dataset)  # labels corrected there
        return page

    def _build_classify_page(self) -> QWidget:
        from cnn_studio.ui.pages.classify_page import ClassifyPage

        return ClassifyPage(self.session)

    def _build_export_page(self) -> QWidget:
        from cnn_studio.ui.pages.export_page import ExportPage

        return ExportPage(self.session)

    # ---------------------------------------------------------------- resources
    def _icon(self, name: str):
        if self._icon_dir is not None and (self._icon_dir / f"{name}.svg").exists():
            return QIcon(str(self._icon_dir / f"{name}.svg"))
        return QIcon()

    # ---------------------------------------------------------------- menus and shortcuts
    def _action(self, text: str, slot, shortcut=None, tip: str = "") -> QAction:
        a = QAction(text, self)
        if shortcut is not None:
            a.setShortcut(QKeySequence(shortcut))
        if tip:
            a.setStatusTip(tip)
        a.triggered.connect(slot)
        self.addAction(a)
        return a

    def _make_actions(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        self.new_action = self._action("&New project", self.new_project, QKeySequence.StandardKey.New)
        self.open_action = self._action("&Open…", self.open_project_dialog, QKeySequence.StandardKey.Open,
                                        "Open a project (.cnnstudio) or a dataset folder")
        self.recent_menu = file_menu.addMenu("Open &Recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        self.save_action = self._action("&Save", self.save_project, QKeySequence.StandardKey.Save)
        self.save_as_action = self._action("Save &As…", self.save_project_as, "Ctrl+Shift+S")
        self.sample_action = self._action("&Digits (bundled)", self.open_sample,
                                          tip="Small handwritten digits bundled with CNN Studio")
        self.generated_sample_actions = {
            kind: self._action(sample.title, lambda _=False, k=kind: self.open_sample(k), tip=sample.description)
            for kind, sample in GENERATED_SAMPLES.items()}
        self.quit_action = self._action("&Quit", self.close, "Ctrl+Q")
        # a lambda: QAction.triggered passes `checked` (False), which show_runs would take as its last run
        self.runs_action = self._action("R&uns…", lambda: self.show_runs(), "Ctrl+Shift+R",
                                        "Every training run: open one to evaluate, classify, export or continue it")
        for a in (self.new_action, self.open_action):
            file_menu.insertAction(self.recent_menu.menuAction(), a)
        file_menu.addAction(self.runs_action)
        file_menu.addSeparator()
        for a in (self.save_action, self.save_as_action):
            file_menu.addAction(a)
        file_menu.addSeparator()
        self.sample_menu = file_menu.addMenu("Open &sample")
        self.sample_menu.setToolTipsVisible(True)
        for a in (self.sample_action, *self.generated_sample_actions.values()):
            a.setToolTip(a.statusTip())
            self.sample_menu.addAction(a)
        file_menu.addSeparator()
        file_menu.addAction(self.quit_action)

        step_menu = bar.addMenu("&Steps")
        self.step_actions = []
        for i, name in enumerate(STEPS):
            a = self._action(f"&{i + 1}. {name}", lambda _=False, i=i: self.go_to(i), f"Ctrl+{i + 1}")
            step_menu.addAction(a)
            self.step_actions.append(a)
        step_menu.addSeparator()
        self.start_action = self._action("Start training", self.start_training, "Ctrl+Return")
        self.start_action.setShortcuts([QKeySequence("Ctrl+Return"), QKeySequence("Ctrl+Enter")])
        step_menu.addAction(self.start_action)

        help_menu = bar.addMenu("&Help")
        help_menu.addAction(self._action("How it &works", self.show_how_it_works, QKeySequence.StandardKey.HelpContents))
        self.computer_action = self._action("About this &computer…", self.show_computer,
                                            tip="Versions, GPU, Qt, offline weights and disk space, with what to fix")
        help_menu.addAction(self.computer_action)
        help_menu.addAction(self._action("&About CNN Studio", self.show_about))

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        recent = self.settings.recent_projects() + self.settings.recent_datasets()
        if not recent:
            a = self.recent_menu.addAction("(nothing yet)")
            a.setEnabled(False)
            return
        for path in recent:
            self.recent_menu.addAction(str(path), lambda p=path: self.open_path(p))
        self.recent_menu.addSeparator()
        self.recent_menu.addAction("Clear list", self.settings.clear_recent)

    # ---------------------------------------------------------------- steps
    def step_enabled(self, i: int) -> tuple[bool, str]:
        """Whether step ``i`` can be opened, and if not, why."""
        # (only an opened run can be continued: without one the Train step is not built for the question)
        if i == 2 and self.session.split is None and not (self.session.run_dir is not None
                                                           and self.train_page.can_continue):
            return False, NEEDS_DATA  # (a run that stopped early continues on its own images)
        if i >= 3 and self._run_ok is False:
            return False, NEEDS_RUN
        return True, ""

    def update_steps(self) -> None:
        """Enable each step whose prerequisite exists; disabled steps say why in their tooltip."""
        self._run_ok = self.session.run_info() is not None
        for i in range(len(STEPS)):
            ok, why = self.step_enabled(i)
            item = self.sidebar.item(i)
            flags = item.flags()
            item.setFlags(flags | Qt.ItemFlag.ItemIsEnabled if ok else flags & ~Qt.ItemFlag.ItemIsEnabled)
            item.setToolTip(why)
            self.step_actions[i].setEnabled(ok)

    def go_to(self, i: int) -> bool:
        """Open step ``i`` (0-based) if it is enabled; otherwise say why in the status bar."""
        ok, why = self.step_enabled(i)
        if not ok:
            self.statusBar().showMessage(why, 6000)
            return False
        self.sidebar.setCurrentRow(i)
        return True

    def current_step(self) -> int:
        return self.stack.currentIndex()

    def _on_sidebar_row_changed(self, row: int) -> None:
        if row >= 0:
            self.page(row)  # built before it is shown: no empty stand-in is ever painted
            self.stack.setCurrentIndex(row)

    def start_training(self) -> None:
        """Ctrl+Return: go to the Train step and start."""
        if self.go_to(2) and not self.train_page.is_training:
            self.train_page.start()

    def _on_training_finished(self, status: str) -> None:
        self.statusBar().showMessage(self.train_page.outcome or status, 10000)  # what the Train step says

    def _on_data_checked(self, ok: bool) -> None:
        if self.session.index is not None:
            self.settings.add_recent_dataset(self.session.index.root)
        self.statusBar().showMessage("Dataset ready." if ok else "The dataset needs attention (see the Data step).",
                                     6000)

    # ---------------------------------------------------------------- project file
    def _update_title(self, *_args) -> None:
        self.setWindowTitle(f"{self.session.title} — CNN Studio")
        self.project_label.setText(str(self.session.project_path) if self.session.project_path else "not saved yet")

    def new_project(self) -> None:
        if not self._confirm_discard():
            return
        self.session.new_project()  # the Data page clears itself on session.project_opened
        self.go_to(0)

    def open_sample(self, kind: str = "digits") -> None:
        """File → Open sample: the bundled digits, or a generated sample ("multiband", "volumes") made on
        first use, in the Data step."""
        self.go_to(0)
        if kind == "digits":
            self.data_page.open_sample()
        else:
            self.data_page.open_generated_sample(kind)

    def open_project_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a project", self.settings.last_folder(),
                                              f"CNN Studio projects (*{PROJECT_SUFFIX});;All files (*)")
        if path:
            self.open_path(path)

    def open_path(self, path: str | Path) -> bool:
        """Open a project file, or a dataset folder / CSV manifest in the Data step."""
        p = Path(path)
        if p.suffix == PROJECT_SUFFIX:
            return self.open_project(p)
        self.go_to(0)
        self.data_page.open_dataset(p)
        return True

    def open_project(self, path: str | Path) -> bool:
        if not self._confirm_discard():
            return False
        try:
            project = self.session.load(path)
        except StudioError as exc:
            messages.show_error(self, exc)
            return False
        self.settings.add_recent_project(path)
        self.settings.set_last_folder(Path(path).parent)
        # the Data page shows the project's split settings and reads its dataset (session.project_opened)
        if project.dataset_path and not Path(project.dataset_path).exists():
            self.statusBar().showMessage(f"The dataset {project.dataset_path} is no longer there; choose it again.")
        self.update_steps()
        self.go_to(0)
        return True

    def save_project(self) -> bool:
        if self.session.project_path is None:
            return self.save_project_as()
        return self._save(self.session.project_path)

    def save_project_as(self) -> bool:
        path, _ = QFileDialog.getSaveFileName(self, "Save the project", self.settings.last_folder(),
                                              f"CNN Studio projects (*{PROJECT_SUFFIX})")
        return self._save(Path(path)) if path else False

    def _save(self, path: Path) -> bool:
        try:
            written = self.session.save(path)
        except StudioError as exc:
            messages.show_error(self, exc)
            return False
        self.settings.add_recent_project(written)
        self.settings.set_last_folder(written.parent)
        self.statusBar().showMessage(f"Saved {written}", 5000)
        return True

    # ---------------------------------------------------------------- help
    def show_how_it_works(self) -> None:
        box = QMessageBox(QMessageBox.Icon.Information, "How it works", HOW_IT_WORKS, parent=self)
        box.setTextFormat(Qt.TextFormat.RichText)
        box.exec() if messages.BLOCKING else box.show()

    def show_about(self) -> QMessageBox:
        """Help → About CNN Studio: the version and where each kind of data lives (cnn_studio.ui.about)."""
        box = QMessageBox(QMessageBox.Icon.NoIcon, "About CNN Studio", about_html(self.settings.file_name()),
                          parent=self)
        box.setTextFormat(Qt.TextFormat.RichText)
        box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        box.exec() if messages.BLOCKING else box.show()
        return box

    def show_computer(self):
        """Help → About this computer: the ``cnn-studio doctor`` report (made in a child process)."""
        from cnn_studio.ui.computer_dialog import ComputerDialog

        dialog = ComputerDialog(self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.start()
        dialog.show()
        return dialog

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

    def ask_save_changes(self) -> QMessageBox.StandardButton:
        """Ask Save / Discard / Cancel for unsaved changes (scripted runs, ``BLOCKING`` off: Discard)."""
        if not messages.BLOCKING:
            return QMessageBox.StandardButton.Discard
        return QMessageBox.question(
            self, "Unsaved changes", "The project has unsaved changes. Save them before closing?",
            QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Save)

    def _confirm_discard(self) -> bool:
        if not self.session.dirty or self.session.project_path is None and self.session.run_dir is None:
            return True  # nothing worth asking about: an unsaved scratch session without runs
        answer = self.ask_save_changes()
        if answer == QMessageBox.StandardButton.Save:
            return self.save_project()
        return answer == QMessageBox.StandardButton.Discard

    # ---------------------------------------------------------------- runs
    def show_runs(self, last_run: Path | None = None):
        """Show the Runs view (File → Runs…); ``last_run`` adds the offer to reopen it."""
        from cnn_studio.ui.runs_view import RunsView

        if self.runs_view is None:
            self.runs_view = RunsView(self.settings.run_folders(), last_run=last_run, parent=self)
            self.runs_view.run_opened.connect(self.open_run)
            self.runs_view.folders_changed.connect(self.settings.set_run_folders)
        else:
            self.runs_view.refresh()
        self.runs_view.show()
        self.runs_view.raise_()
        return self.runs_view

    def open_run(self, path: str | Path) -> bool:
        """Make ``path`` the session's run: Evaluate, Classify, Export and Continue training then use it."""

        try:
            open_run(path)
        except StudioError as exc:
            QMessageBox.warning(self, "Cannot open this run", f"{exc.message}\n\n{exc.hint}")
            return False
        self.session.set_run(Path(path))
        if self.runs_view is not None:
            self.runs_view.hide()  # the step pages now show the run
        self.statusBar().showMessage(f"Opened the run {Path(path).name}", 5000)
        self.go_to(3)
        return True

    def _on_session_run_changed(self) -> None:
        if self.session.run_dir is not None:
            self.settings.set_last_run(self.session.run_dir)

    def offer_runs_on_start(self) -> None:
        """On start with no run open: show the Runs view when earlier runs exist, offering the last one."""
        self._offered_runs = True
        if self.session.run_dir is not None:
            return

        if any(find_runs(f) for f in (runs_dir(), *self.settings.run_folders())):
            self.show_runs(last_run=self.settings.last_run())

    def skip_runs_offer(self) -> None:
        """The user already said what to open (``cnn-studio FOLDER``): do not cover it with the Runs view."""
        self._offered_runs = True

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
