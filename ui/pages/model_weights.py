"""The Model step's weights transfers: downloading ImageNet weights and importing a weights file, each in a
child process, with the page's notes about how they went."""

from __future__ import annotations

from html import escape
from pathlib import Path

from cnn_studio.ui.messages import severity_colour
from cnn_studio.ui.workers import start_task
from PySide6.QtCore import QItemSelectionModel, QSignalBlocker
from PySide6.QtWidgets import QFileDialog

from cnn_studio.backbones import registry
from cnn_studio.core import events as ev
from cnn_studio.core.child_process import run_job
from cnn_studio.core.errors import StudioError
from cnn_studio.core.paths import app_data_dir


class WeightsTransfers:
    """Mixed into :class:`~cnn_studio.ui.pages.model_page.ModelPage`: uses its backbone panel's widgets
    (``download_*``, ``import_*``, ``backbone_model``/``backbone_view``, ``weights_combo``), ``selected_backbone``,
    ``_on_form_changed``, ``_show_details`` and ``_follow_selection``."""

    _import_task = None
    _download_task = None
    _status_backbone: str | None = None  # the backbone import_status speaks of (None: any)
    _import_backbone: str | None = None  # the backbone an import is for

    def shutdown(self) -> None:
        """The app is quitting (``session.closing``): stop an import or download that is still running."""
        for task in (self._import_task, self._download_task):
            if task is not None:
                task.cancel()

    # ---------------------------------------------------------------- downloading weights
    def download_weights(self, backbone: str | None = None):
        """Download the ImageNet weights of ``backbone`` (default: the selected one) in a child process."""
        spec = registry.get(backbone or self.selected_backbone())
        if self._download_task is not None or not spec.has_pretrained_weights:
            return self._download_task
        self._download_spec = spec
        self.download_button.setEnabled(False)
        self.download_progress.setRange(0, 0)  # busy until the size is known
        self.download_progress.setFormat(f"Downloading {spec.label}'s ImageNet weights…")
        self.download_progress.setVisible(True)
        self.download_cancel.setVisible(True)
        self.download_cancel.setEnabled(True)
        self._set_import_status(f"Downloading {escape(spec.weights_file_for(self.image_size.value() or None))}…",
                                spec.key)
        self._download_task = start_task(
            run_job, "cnn_studio.backbones.weights_store:download_weights", spec,
            self.image_size.value() or None, log_path=str(app_data_dir() / "logs" / "download-weights.log"),
            label="weights download", on_event=self._on_download_event, on_returned=self._on_download_returned,
            on_errored=self._on_download_errored, on_cancelled=self._on_download_cancelled,
            on_finished=self._on_download_finished)
        return self._download_task

    def cancel_download(self) -> None:
        if self._download_task is not None:
            self._download_task.cancel()
            self.download_cancel.setEnabled(False)
            self.download_progress.setFormat("Cancelling…")

    def _on_download_event(self, event) -> None:
        if not isinstance(event, ev.TaskProgress) or event.task != "download":
            return
        if event.total > 0:
            scale = 1 << 10  # KiB keeps large files inside an int's range
            self.download_progress.setRange(0, max(event.total // scale, 1))
            self.download_progress.setValue(min(event.done // scale, event.total // scale))
            self.download_progress.setFormat(f"{self._download_spec.label}: {event.done / 1e6:.1f} of "
                                             f"{event.total / 1e6:.1f} MB (%p%)")

    def _on_download_returned(self, entry) -> None:
        spec = registry.get(entry.backbone)
        self._set_import_status(f"Downloaded <b>{escape(spec.label)}</b>'s ImageNet weights ({escape(entry.label)}).",
                                spec.key)
        self.backbone_model.refresh_status()
        if spec.key == self.selected_backbone():
            with QSignalBlocker(self.weights_combo):
                self.weights_combo.setCurrentIndex(self.weights_combo.findData("imagenet"))
            self._on_form_changed()
        self._show_details()

    def _on_download_errored(self, exc: BaseException) -> None:
        # the same short message as an import: the file, its address, Import weights file…
        self._show_import_error(exc, self._download_spec.key)

    def _on_download_cancelled(self) -> None:
        self._set_import_status("Download cancelled; nothing was kept.", self._download_spec.key)

    def _on_download_finished(self) -> None:
        self._download_task = None
        self.download_progress.setVisible(False)
        self.download_cancel.setVisible(False)
        self._show_details()

    # ---------------------------------------------------------------- importing weights
    def _on_import_clicked(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import weights file", "",
                                              "Keras weights (*.h5 *.keras);;All files (*)")
        if path:  # a cancelled dialog changes nothing
            self.import_weights_file(path)

    def import_weights_file(self, path: str, backbone: str | None = None):
        """Copy ``path`` into the weights store in a child process (checked there); the UI stays responsive."""

        self.import_button.setEnabled(False)
        self._import_backbone = backbone or self.selected_backbone()
        self._set_import_status(f"Importing {escape(Path(path).name)}… (checking that it loads)", None)
        self._import_task = start_task(
            run_job, "cnn_studio.backbones.weights_store:import_weights", str(path),
            registry.get(backbone) if backbone else None,
            log_path=str(app_data_dir() / "logs" / "import-weights.log"), label="weights import",
            on_returned=self._on_import_returned, on_errored=self._on_import_errored,
            on_finished=self._on_import_finished)
        return self._import_task

    def _on_import_returned(self, entry) -> None:
        spec = registry.get(entry.backbone)
        self._set_import_status(f"Imported for <b>{escape(spec.label)}</b> ({escape(entry.label)}). "
                                "Your file is unchanged.", spec.key)
        self.backbone_model.refresh_status()
        row = self.backbone_model.row_of(spec.key)
        if row >= 0:
            self.backbone_view.selectionModel().setCurrentIndex(
                self.backbone_model.index(row), QItemSelectionModel.SelectionFlag.ClearAndSelect)
        with QSignalBlocker(self.weights_combo):
            self.weights_combo.setCurrentIndex(self.weights_combo.findData("imagenet"))
        self._weights_file = None
        self._on_form_changed()
        self._show_details()

    def _on_import_errored(self, exc: BaseException) -> None:
        self._show_import_error(exc, self._import_backbone)

    def _show_import_error(self, exc: BaseException, backbone: str | None) -> None:
        text = exc.message if isinstance(exc, StudioError) else str(exc).splitlines()[0][:200]
        hint = exc.hint if isinstance(exc, StudioError) else ""
        colour = severity_colour("error").name()
        self._set_import_status(f"<span style='color:{colour}'>{escape(text)}</span> {escape(hint)}", backbone)

    def _set_import_status(self, html: str, backbone: str | None) -> None:
        """Say how a download or import went; it is shown while ``backbone`` (None: any) is the selected one."""
        self._status_backbone = backbone
        self.import_status.setText(html)
        self._follow_selection()

    def _on_import_finished(self) -> None:
        self.import_button.setEnabled(True)
        self._import_task = None

