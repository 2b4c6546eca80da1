"""The main window's menus and shortcuts (File, Steps, Help) and the Help menu's windows: how CNN Studio
works, about CNN Studio, about this computer."""

from __future__ import annotations

from cnn_studio.ui import messages
from cnn_studio.ui.about import about_html
from cnn_studio.ui.window_steps import STEPS
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMessageBox

from cnn_studio.data.sample import GENERATED_SAMPLES

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


class WindowMenus:
    """The MainWindow's part that owns the menus (a mixin: the actions call the window's other parts)."""

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
        self._make_file_menu(bar.addMenu("&File"))
        self._make_steps_menu(bar.addMenu("&Steps"))
        self._make_help_menu(bar.addMenu("&Help"))

    def _make_file_menu(self, file_menu) -> None:
        """New, Open, Open Recent, Runs, Save, Save As, Open sample, Quit."""
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

    def _make_steps_menu(self, step_menu) -> None:
        """A shortcut per step (Ctrl+1 … Ctrl+6) and Start training (Ctrl+Return)."""
        self.step_actions = []
        for i, name in enumerate(STEPS):
            a = self._action(f"&{i + 1}. {name}", lambda _=False, i=i: self.go_to(i), f"Ctrl+{i + 1}")
            step_menu.addAction(a)
            self.step_actions.append(a)
        step_menu.addSeparator()
        self.start_action = self._action("Start training", self.start_training, "Ctrl+Return")
        self.start_action.setShortcuts([QKeySequence("Ctrl+Return"), QKeySequence("Ctrl+Enter")])
        step_menu.addAction(self.start_action)

    def _make_help_menu(self, help_menu) -> None:
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

    # ---------------------------------------------------------------- help windows
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
