"""Step 6, Export: write the model in formats other programs run, each verified after writing.

Every chosen format is written by :func:`cnn_studio.export.writer.export_model` in one task:
written to a temporary name, reloaded in its own runtime, compared with the trained model on
real images, then renamed into place — with labels.txt and a model card beside it.
"""

from __future__ import annotations

from pathlib import Path

from cnn_studio.ui.messages import show_error
from cnn_studio.ui.widgets.step_header import StepHeader
from cnn_studio.ui.widgets.task_strip import TaskStrip
from cnn_studio.ui.workers import start_task
from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from cnn_studio.core.child_process import run_job
from cnn_studio.core.paths import RunLayout, job_log
from cnn_studio.export.formats import FORMATS, QUANTIZATIONS
from cnn_studio.export.model_card import CARD_MD

INTRO = ("Save the trained model so other programs can use it. Each file is checked after it is written: "
         "it is loaded back and must give the same answers as the model you trained. A labels file and a "
         "model card (what the model is, how it was trained, how well it does) are saved beside it.")

# what each format and quantization is for, in the user's words (the lists themselves: export.formats)
FORMAT_USE = {
    "keras": "To keep training or use the model from Python with Keras.",
    "savedmodel": "For TensorFlow Serving, TF.js converters and other TensorFlow tools.",
    "tflite": "For phones, Raspberry Pi and other small devices.",
    "onnx": "For ONNX Runtime, C#, C++, Java and most other languages and platforms.",
}
QUANT_USE = {
    "float32": "exact, largest file",
    "float16": "half the size, practically the same answers",
    "int8": "dynamic range: a quarter of the size, faster on CPUs; answers may shift slightly",
    "int8_full": "full integer: uint8 in and out, for phone NPUs, Edge TPU, microcontrollers",
}
DEFAULT_FORMATS = ("keras", "onnx")
JUDGED_NOTE = ("Quantized files are judged by their answers on the validation images: refused only when the "
               "accuracy falls by more than 2 points or the top answer changes on more than 10% of them.")
FORMAT_TEXT = {key: (fmt.label, FORMAT_USE.get(key, "")) for key, fmt in FORMATS.items()}
QUANT_TEXT = {q: f"{q} — {QUANT_USE[q]}" if q in QUANT_USE else q for q in QUANTIZATIONS}


def export_formats(run_dir, formats: list[str], out_dir, quantization: str, *, sink, cancel):
    """Export every format in turn (in a child process); a failing format is reported and the others still run."""

    return run_job("cnn_studio.export.writer:export_all", str(run_dir), list(formats), str(out_dir),
                   quantization=quantization, keep_going=True, sink=sink, cancel=cancel,
                   log_path=job_log("export", run_dir), label="export")


class ExportPage(QWidget):
    """Choose formats and a folder, export, and see each file's verification."""

    def __init__(self, session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self._task = None
        self.records: list = []
        self.header = StepHeader("6. Export — use the model elsewhere", INTRO)
        lay = QVBoxLayout(self)
        lay.addWidget(self.header)
        lay.addLayout(self._make_form())
        lay.addLayout(self._make_buttons())
        self.strip = TaskStrip()
        lay.addWidget(self.strip)
        lay.addWidget(self._make_results(), 1)
        session.run_changed.connect(self._on_session_run_changed)
        session.closing.connect(self.shutdown)
        self._on_session_run_changed()

    # ---------------------------------------------------------------- layout
    def _make_form(self) -> QFormLayout:
        """A tick box per format (only those whose packages are installed can be ticked), the TFLite
        precision and the folder to save to."""
        self.checks: dict[str, QCheckBox] = {}
        form = QFormLayout()
        self.format_notes: dict[str, QLabel] = {}
        for key, (label, tip) in FORMAT_TEXT.items():
            box = QCheckBox(label)
            box.setToolTip(tip)
            note = QLabel(tip)
            note.setWordWrap(True)
            missing = FORMATS[key].missing_packages()
            if missing:  # tick only what can work here, and say how to add the rest
                hint = FORMATS[key].install_hint()
                box.setEnabled(False)
                box.setToolTip(f"Needs {', '.join(missing)}, which is not installed. Install with: {hint}")
                note.setText(f"{tip} <span style='color:#b26a00'>Needs {', '.join(missing)}: install with "
                             f"<code>{hint}</code> and restart CNN Studio.</span>")
                note.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            box.setChecked(key in DEFAULT_FORMATS and not missing)
            self.checks[key] = box
            self.format_notes[key] = note
            form.addRow(box, note)
        self.quantization = QComboBox()
        for key, text in QUANT_TEXT.items():
            self.quantization.addItem(text, key)
        self.quantization.setToolTip("Only for TensorFlow Lite: smaller numbers make smaller, faster files. "
                                     + JUDGED_NOTE)
        form.addRow("TensorFlow Lite precision", self.quantization)
        self.folder = QLineEdit()
        self.folder.setPlaceholderText("Folder for the exported files")
        browse = QPushButton("Choose…")
        browse.clicked.connect(self._on_browse_clicked)
        row = QHBoxLayout()
        row.addWidget(self.folder, 1)
        row.addWidget(browse)
        form.addRow("Save to", row)
        return form

    def _make_buttons(self) -> QHBoxLayout:
        """Export, Open folder and the status line."""
        self.export_button = QPushButton("Export")
        self.export_button.setObjectName("primary")
        self.export_button.clicked.connect(self.export)
        self.open_button = QPushButton("Open folder")
        self.open_button.setEnabled(False)
        self.open_button.clicked.connect(self._on_open_clicked)
        self.status = QLabel("Train a model first.")
        self.status.setWordWrap(True)
        buttons = QHBoxLayout()
        buttons.addWidget(self.export_button)
        buttons.addWidget(self.open_button)
        buttons.addWidget(self.status, 1)
        return buttons

    def _make_results(self) -> QSplitter:
        """Each written file's verification (a table row) beside the model card."""
        self.table = QTableWidget(0, 6)
        self.table.setHorizontalHeaderLabels(["Format", "File", "Verified", "Largest\ndifference", "Allowed", "Notes"])
        self.table.setWordWrap(True)  # a failure's hint is never cut off: rows grow to fit it
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(5, QHeaderView.ResizeMode.Stretch)  # after the line above: notes wrap in view
        self.card = QTextBrowser()
        self.card.setPlaceholderText("The model card appears here after an export.")
        split = QSplitter()
        split.addWidget(self.table)
        split.addWidget(self.card)
        split.setSizes([700, 440])
        return split

    def chosen_formats(self) -> list[str]:
        return [k for k, box in self.checks.items() if box.isChecked()]

    def shutdown(self) -> None:
        """The window is closing: stop exporting after the current format."""
        if self._task is not None:
            self._task.cancel()

    def export(self):
        run = self.session.run_dir
        formats = self.chosen_formats()
        if run is None:
            self.status.setText("Train a model first.")
            return None
        if not formats:
            self.status.setText("Tick at least one format.")
            return None
        if not self.folder.text().strip():
            self.folder.setText(str(RunLayout(Path(run)).exports))
        self.export_button.setEnabled(False)
        self.table.setRowCount(0)
        self._task = start_task(export_formats, run, formats, self.folder.text().strip(),
                                self.quantization.currentData(), on_returned=self._on_exported,
                                on_errored=self._on_errored, on_finished=self._on_finished)
        self.strip.attach(self._task, "Exporting and verifying…")
        return self._task

    def _on_session_run_changed(self) -> None:
        run = self.session.run_dir
        self.export_button.setEnabled(run is not None)
        self.table.setRowCount(0)
        self.card.clear()
        if run is not None:
            self.folder.setText(str(RunLayout(Path(run)).exports))
            self.status.setText("Choose formats and press Export.")
        else:
            self.status.setText("Train a model first.")

    def _on_browse_clicked(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export to folder", self.folder.text())
        if folder:
            self.folder.setText(folder)

    def _on_open_clicked(self) -> None:
        QDesktopServices.openUrl(QUrl.fromLocalFile(self.folder.text()))

    def _on_exported(self, results: list) -> None:
        self.records = results
        self.table.setRowCount(len(results))
        ok = 0
        for r, rec in enumerate(results):
            if isinstance(rec, tuple):
                fmt, exc = rec
                cells = [FORMAT_TEXT.get(fmt, (fmt,))[0], "—", "✗ failed", "", "", f"{exc.message} {exc.hint}"]
            else:
                ok += 1
                judged = getattr(rec, "agreement", None) is not None
                cells = [FORMAT_TEXT.get(rec.fmt, (rec.fmt,))[0] + ("" if rec.quantization == "float32" else
                                                                     f"\n{rec.quantization}"),
                         Path(rec.path).name,
                         (f"✓ same answer on {rec.agreement:.1%}" if judged else f"✓ on {rec.n_checked} images")
                         if rec.verified else "✗",
                         f"{rec.max_abs_diff:.2g}", "answers" if judged else f"{rec.tolerance:.0g}",
                         "; ".join(getattr(rec, "notes", ()) or ())]
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(text)
                self.table.setItem(r, c, item)
        self.table.resizeRowsToContents()
        failed = [rec for rec in results if isinstance(rec, tuple)]
        text = f"{ok} of {len(results)} exports written and verified in {self.folder.text()}."
        if failed:
            text += " Failed: " + " ".join(f"{FORMAT_TEXT.get(f, (f,))[0]}: {e.message} {e.hint}" for f, e in failed)
        if any(getattr(rec, "agreement", None) is not None for rec in results if not isinstance(rec, tuple)):
            text += " " + JUDGED_NOTE
        self.status.setText(text)
        self.open_button.setEnabled(ok > 0)
        card = Path(self.folder.text()) / CARD_MD
        if card.exists():
            self.card.setMarkdown(card.read_text(encoding="utf-8"))

    def _on_errored(self, exc: BaseException) -> None:
        self.status.setText("The export stopped; see the message.")
        show_error(self, exc)

    def _on_finished(self) -> None:
        self.export_button.setEnabled(self.session.run_dir is not None)
