"""The main window's runs: the Runs view (File → Runs…, and offered on start when earlier runs exist) and
opening a run, which Evaluate, Classify, Export and Continue training then use."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QMessageBox

from cnn_studio.core.errors import StudioError
from cnn_studio.core.paths import runs_dir
from cnn_studio.runs.listing import find_runs
from cnn_studio.runs.run_folder import open_run


class RunsOffer:
    """The MainWindow's part that owns the Runs view (a mixin: it uses the window's ``session``,
    ``settings``, ``statusBar()`` and ``go_to``; the window sets ``runs_view`` and ``_offered_runs``)."""

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
