"""The main window's steps: the sidebar and the stack of step pages, each page built the first time it is
needed, and which step can be opened now (a step whose prerequisite is missing says why).

Only the Data step is built (and imported) with the window: each other step page is imported and
made the first time it is opened or asked for (``window.train_page`` …), so the window paints
without loading the plots, the model views and the run tools. A page made late starts from the
session as it is then (its constructor reads the session, as it would after the matching signals).
"""

from __future__ import annotations

from cnn_studio.ui.pages.model_page import ModelPage, default_config
from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QHBoxLayout, QListWidget, QListWidgetItem, QStackedWidget, QWidget

from cnn_studio.training.config import TrainConfig

STEPS = ("Data", "Model", "Train", "Evaluate", "Classify", "Export")
STEP_ICONS = ("data", "model", "train", "evaluate", "classify", "export")
NEEDS_RUN = "Train a model first (step 3): this step works on a finished training run."
NEEDS_DATA = "Load a dataset without errors first (step 1)."


class StepPages:
    """The MainWindow's part that owns the steps (a mixin: it uses the window's ``session``, ``settings``,
    ``data_page``, ``statusBar()`` and ``step_actions``)."""

    def _make_steps_view(self) -> QWidget:
        """The sidebar beside the stack of pages (empty stand-ins for the steps not built yet)."""
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
        return central

    def _icon(self, name: str):
        if self._icon_dir is not None and (self._icon_dir / f"{name}.svg").exists():
            return QIcon(str(self._icon_dir / f"{name}.svg"))
        return QIcon()

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
