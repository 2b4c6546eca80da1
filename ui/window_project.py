"""The main window's project handling: new, open (a project file, a dataset folder or CSV, a sample), save,
and the question asked before unsaved changes are dropped; the window's title names the project."""

from __future__ import annotations

from pathlib import Path

from cnn_studio.ui import messages
from PySide6.QtWidgets import QFileDialog, QMessageBox

from cnn_studio.core.errors import StudioError
from cnn_studio.runs.project import PROJECT_SUFFIX


class ProjectFiles:
    """The MainWindow's part that owns the project file (a mixin: it uses the window's ``session``,
    ``settings``, ``data_page``, ``project_label``, ``go_to`` and ``update_steps``)."""

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

    # ---------------------------------------------------------------- unsaved changes
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
