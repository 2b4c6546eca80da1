"""RunsView: every training run on this computer; open one (it becomes the session's run) or delete it.

A thin view over :func:`cnn_studio.runs.listing.list_runs` (engine, Qt-free): the app's runs folder plus
the folders the user added. Non-modal; ``run_opened(path)`` tells the main window which run to use.
"""

from __future__ import annotations

from pathlib import Path

from cnn_studio.ui.compare_view import CompareView
from PySide6.QtCore import QFile, Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from cnn_studio.core.errors import StudioError
from cnn_studio.core.paths import runs_dir
from cnn_studio.runs.listing import RunSummary, delete_run, format_size, list_runs

COLUMNS = ("Name", "Dataset", "Backbone", "Status", "Epochs", "Kept model's accuracy", "Date", "Size")
STATUS_COLOURS = {"running": "#1565c0", "finished": "#2e7d32", "stopped": "#8d6e00", "crashed": "#c62828",
                  "failed": "#c62828", "damaged": "#c62828"}
AMBER = "#b26a00"
# a model no better than guessing is not a success, whatever its status says
CHANCE_WORDS = {"not_better": "not better than guessing", "unproven": "not shown to beat guessing"}
ACCURACY_TIP = ("Accuracy of the model the run kept (best.keras), as Evaluate measured it or, before that, as the "
                "check at the end of training did on the validation images. It can differ from the best epoch's "
                "validation accuracy in the curves.")


class _SortItem(QTableWidgetItem):
    """A cell that sorts by a hidden key (numbers, dates) instead of its text."""

    def __init__(self, text: str, key) -> None:
        super().__init__(text)
        self.key = key

    def __lt__(self, other) -> bool:  # noqa: D105
        return self.key < getattr(other, "key", other.text())


class RunsView(QDialog):
    """The runs list. Signals: ``run_opened(object)`` with the run folder's Path."""

    run_opened = Signal(object)
    folders_changed = Signal(list)

    def __init__(self, folders: list[Path] | None = None, last_run: Path | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Runs")
        self.resize(1150, 420)
        self.folders: list[Path] = [Path(f) for f in (folders or [])]
        self.runs: list[RunSummary] = []
        self.use_trash = hasattr(QFile, "moveToTrash")  # Qt ≥ 5.15; else deleted for good after the confirm

        self._last_run = last_run if last_run is not None and Path(last_run).is_dir() else None
        self.compare_views: list[CompareView] = []
        lay = QVBoxLayout(self)
        heading = QLabel("<b>Training runs</b> — open one to evaluate, classify, export or continue it")
        lay.addWidget(heading)
        lay.addLayout(self._make_banner_row())
        lay.addWidget(self._make_table(), 1)
        self.empty_label = QLabel()
        self.problem_label = QLabel()
        self.problem_label.setWordWrap(True)
        lay.addWidget(self.empty_label)
        lay.addWidget(self.problem_label)
        lay.addLayout(self._make_buttons())
        self.refresh()

    # ---------------------------------------------------------------- layout
    def _make_banner_row(self) -> QHBoxLayout:
        """The line offering the last run (shown by :meth:`_update_banner`) and its Reopen button."""
        self.banner = QLabel()
        self.banner.setWordWrap(True)
        self.banner.setObjectName("runsBanner")
        self.reopen_button = QPushButton("Reopen it")
        self.reopen_button.clicked.connect(self._on_reopen_clicked)
        banner_row = QHBoxLayout()
        banner_row.addWidget(self.banner, 1)
        banner_row.addWidget(self.reopen_button)
        return banner_row

    def _make_table(self) -> QTableWidget:
        """One row per run, sortable; several rows can be selected (to compare them)."""
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.horizontalHeaderItem(COLUMNS.index("Kept model's accuracy")).setToolTip(ACCURACY_TIP)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)  # 2+ to compare
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)  # the dataset path
        self.table.setTextElideMode(Qt.TextElideMode.ElideLeft)
        self.table.itemSelectionChanged.connect(self._update_buttons)
        self.table.itemDoubleClicked.connect(lambda *_: self.open_selected())
        return self.table

    def _make_buttons(self) -> QHBoxLayout:
        """Open, Compare, Delete, Add a folder, Refresh … Close."""
        self.open_button = QPushButton("Open")
        self.open_button.setDefault(True)
        self.open_button.clicked.connect(self.open_selected)
        self.delete_button = QPushButton("Delete…")
        self.delete_button.clicked.connect(self.delete_selected)
        self.compare_button = QPushButton("Compare…")
        self.compare_button.setToolTip("Select two or more runs (Ctrl+click) to see their curves, settings "
                                       "and metrics side by side.")
        self.compare_button.clicked.connect(self.compare_selected)
        self.add_button = QPushButton("Add a folder…")
        self.add_button.clicked.connect(self._on_add_clicked)
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.clicked.connect(self.refresh)
        close = QPushButton("Close")
        close.clicked.connect(self.close)
        buttons = QHBoxLayout()
        for b in (self.open_button, self.compare_button, self.delete_button, self.add_button, self.refresh_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        buttons.addWidget(close)
        return buttons

    # ---------------------------------------------------------------- content
    def refresh(self) -> None:
        """Read the run folders again."""
        self.runs = list_runs(runs_dir(), *self.folders)
        self.table.setSortingEnabled(False)
        self.table.setRowCount(len(self.runs))
        for row, r in enumerate(self.runs):
            kept = r.kept_model
            acc = kept.get("accuracy")
            chance = CHANCE_WORDS.get(kept.get("verdict", ""), "")
            cells = [
                _SortItem(r.name, r.name.lower()),
                _SortItem(r.dataset or "?", r.dataset),
                _SortItem(r.backbone or "?", r.backbone),
                _SortItem(f"{r.status} · {chance}" if chance else r.status, r.status),
                _SortItem(f"{r.epochs_done} / {r.total_epochs}", r.epochs_done),
                _SortItem(_accuracy_text(kept), -1.0 if acc is None else acc),
                _SortItem(r.date[:16].replace("T", " "), r.date),
                _SortItem(format_size(r.size_bytes), r.size_bytes),
            ]
            cells[7].setToolTip(_sizes(r))
            cells[0].setData(Qt.ItemDataRole.UserRole, r.path)
            cells[0].setToolTip(r.path)
            cells[3].setForeground(QColor(AMBER if chance else STATUS_COLOURS.get(r.status, "#000000")))
            cells[5].setToolTip(" ".join(t for t in (kept.get("message", ""), ACCURACY_TIP) if t))
            if chance:
                cells[3].setToolTip(kept.get("message", ""))
            if r.problem:
                for c in cells[:7]:
                    c.setToolTip(r.problem)
            for col, item in enumerate(cells):
                self.table.setItem(row, col, item)
        self.table.setSortingEnabled(True)
        where = ", ".join(str(f) for f in (runs_dir(), *self.folders))
        self.empty_label.setText("" if self.runs else f"No runs yet in {where}. Train a model, or add a folder "
                                 "that holds runs.")
        self.empty_label.setVisible(not self.runs)
        self._update_banner()
        if self.runs and not self.table.selectedItems():
            self.select(Path(self._last_run) if self._last_run else Path(self.runs[0].path))
        self._update_buttons()

    def _update_banner(self) -> None:
        show = self._last_run is not None
        if show:
            self.banner.setText(f"<b>{self._last_run.name}</b> was open when CNN Studio last closed. "
                                "Reopen it to evaluate, classify, export or continue training.")
        self.banner.setVisible(show)
        self.reopen_button.setVisible(show)

    def select(self, path: Path) -> bool:
        for row in range(self.table.rowCount()):
            if Path(self.table.item(row, 0).data(Qt.ItemDataRole.UserRole)) == Path(path):
                self.table.selectRow(row)
                return True
        return False

    def selected(self) -> RunSummary | None:
        """The selected run when exactly one is selected."""
        runs = self.selected_runs()
        return runs[0] if len(runs) == 1 else None

    def selected_runs(self) -> list[RunSummary]:
        """Every selected run, in table order."""
        rows = sorted({i.row() for i in self.table.selectedItems()})
        paths = [self.table.item(row, 0).data(Qt.ItemDataRole.UserRole) for row in rows]
        by_path = {r.path: r for r in self.runs}
        return [by_path[p] for p in paths if p in by_path]

    def _update_buttons(self) -> None:
        run = self.selected()
        self.open_button.setEnabled(run is not None and run.has_model)
        self.delete_button.setEnabled(run is not None and run.status != "running")
        self.compare_button.setEnabled(len(self.selected_runs()) >= 2)
        self.problem_label.setText(f"{run.name}: {run.problem}" if run is not None and run.problem else "")

    # ---------------------------------------------------------------- actions
    def open_selected(self) -> None:
        run = self.selected()
        if run is None or not run.has_model:
            return
        self._last_run = None
        self._update_banner()
        self.run_opened.emit(Path(run.path))

    def compare_selected(self) -> CompareView | None:
        """Open a compare window over the selected runs (two or more)."""
        runs = self.selected_runs()
        if len(runs) < 2:
            return None
        try:
            view = CompareView([r.path for r in runs], self)
        except StudioError as exc:
            QMessageBox.warning(self, "Cannot compare these runs", f"{exc.message}\n\n{exc.hint}".strip())
            return None
        view.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        view.destroyed.connect(lambda *_a, v=view: self.compare_views.remove(v) if v in self.compare_views else None)
        self.compare_views.append(view)
        view.show()
        return view

    def _on_reopen_clicked(self) -> None:
        if self._last_run is not None:
            path, self._last_run = self._last_run, None
            self._update_banner()
            self.run_opened.emit(Path(path))

    def ask_delete(self, run: RunSummary) -> bool:
        """Confirm (a method so tests can answer it)."""
        where = "to the trash" if self.use_trash else "for good"
        answer = QMessageBox.question(self, "Delete this run?",
                                      f"Move the run {run.name} ({format_size(run.size_bytes)}) {where}?\n{run.path}")
        return answer == QMessageBox.StandardButton.Yes

    def delete_selected(self) -> bool:
        run = self.selected()
        if run is None or run.status == "running" or not self.ask_delete(run):
            return False
        try:
            if not (self.use_trash and QFile.moveToTrash(run.path)):
                delete_run(run.path)
        except (StudioError, OSError) as exc:
            QMessageBox.warning(self, "Could not delete the run", str(exc))
            return False
        self.refresh()
        return True

    def add_folder(self, folder: str | Path) -> None:
        folder = Path(folder)
        if folder not in self.folders:
            self.folders.append(folder)
            self.folders_changed.emit(list(self.folders))
        self.refresh()

    def _on_add_clicked(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "A run folder or a folder of runs", str(runs_dir()))
        if folder:
            self.add_folder(folder)


def _accuracy_text(kept: dict) -> str:
    """'75.0% (12 val images)': the kept model's accuracy and what it was measured on; '–' when not measured."""
    if kept.get("accuracy") is None:
        return "–"
    n = kept.get("n_images") or 0
    return f"{kept['accuracy']:.1%}" + (f" ({n} {kept.get('subset', 'val')} images)" if n else "")


def _sizes(run: RunSummary) -> str:
    """The size column's tooltip: what the checkpoints take."""
    parts = [f"{format_size(run.size_bytes)} in all"]
    if run.best_model_bytes:
        parts.append(f"best.keras {format_size(run.best_model_bytes)} (no optimizer state)")
    if run.last_model_bytes:
        parts.append(f"last.keras {format_size(run.last_model_bytes)} (with the optimizer state, to continue)")
    return "; ".join(parts)
