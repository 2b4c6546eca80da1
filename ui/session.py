"""StudioSession: the current project, dataset, split, settings and run, with Qt change signals.

A thin Qt adapter over :mod:`cnn_studio.runs.project`. The session owns typed objects (the
:class:`DatasetIndex`, :class:`Split`, :class:`TrainConfig` and the run folder); the project file's
dicts are derived from them when asked for (:attr:`StudioSession.project`), never kept as a
second copy. Pages read its attributes, call its ``set_*`` methods and follow its signals; they
do not reach into each other. No TensorFlow is imported here.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from cnn_studio.core.errors import StudioError
from cnn_studio.data.records import DatasetIndex, Split
from cnn_studio.runs.project import Project, load_project, save_project
from cnn_studio.runs.run_folder import open_run
from cnn_studio.training.config import TrainConfig


class StudioSession(QObject):
    """What the user is working on now.

    Signals
    -------
    dataset_changed, split_changed, config_changed, run_changed
        Emitted (no arguments) after the matching ``set_*`` call, and by :meth:`new_project` /
        :meth:`load`.
    project_changed
        The project file changed: a new one, one opened, or saved under a (new) name.
    project_opened
        Another project replaced the current one (:meth:`new_project` or :meth:`load`): pages drop
        what they show of the old one; :attr:`dataset_path` is the dataset to read again (or None).
    dirty_changed(bool)
        The unsaved flag changed.
    closing
        The app is quitting (:meth:`close`), after every engine task was cancelled: each page's
        ``shutdown()`` stops what it still owns (a model process, timers).
    """

    dataset_changed = Signal()
    split_changed = Signal()
    config_changed = Signal()
    run_changed = Signal()
    project_changed = Signal()
    project_opened = Signal()
    dirty_changed = Signal(bool)
    closing = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.project_path: Path | None = None
        self.index: DatasetIndex | None = None
        self.findings: list = []
        self.report: Any = None
        self.split: Split | None = None
        self.config: TrainConfig = TrainConfig()
        self.run_dir: Path | None = None
        self._record = Project()  # what has no typed owner here: name, run list, dates
        self._dataset_path: str | None = None  # a loaded project's dataset, until it is scanned again
        self._dirty = False

    # ------------------------------------------------------------------ derived project data
    @property
    def dataset_path(self) -> str | None:
        """The dataset's folder or CSV: the scanned index's root, else the opened project's."""
        return self.index.root if self.index is not None else self._dataset_path

    @property
    def project(self) -> Project:
        """The project file's contents, made from the session's typed objects."""
        return replace(self._record, dataset_path=self.dataset_path,
                       split=self.split.to_dict() if self.split is not None else None,
                       config=self.config.to_dict(),
                       current_run=str(self.run_dir) if self.run_dir is not None else None)

    # ------------------------------------------------------------------ dirty flag
    @property
    def dirty(self) -> bool:
        """True when something changed since the last save/load."""
        return self._dirty

    @dirty.setter
    def dirty(self, value: bool) -> None:
        if bool(value) != self._dirty:
            self._dirty = bool(value)
            self.dirty_changed.emit(self._dirty)

    # ------------------------------------------------------------------ setters
    def set_dataset(self, index: DatasetIndex | None, findings: list | None = None, report: Any = None) -> None:
        """A dataset was scanned (or cleared): store it and its check findings and report."""
        self.index = index
        self.findings = list(findings or [])
        self.report = report
        self._dataset_path = None
        self.dirty = True
        self.dataset_changed.emit()

    def set_split(self, split: Split | None) -> None:
        """The train/val/test split was (re)made."""
        self.split = split
        self.dirty = True
        self.split_changed.emit()

    def set_config(self, config: TrainConfig) -> None:
        """The training settings changed."""
        self.config = config
        self.dirty = True
        self.config_changed.emit()

    def set_bands(self, bands: tuple[int, ...] = (), rgb_bands: tuple[int, ...] = ()) -> None:
        """The Data step's band choice for a multi-band dataset (1-based; ``()`` = all bands / automatic),
        carried into the :class:`TrainConfig` the Train step uses. A picture dataset sets both empty."""
        config = self.config.replace(bands=tuple(bands), rgb_bands=tuple(rgb_bands))
        if config != self.config:
            self.set_config(config)

    def set_slicing(self, axis: int, slices: str) -> None:
        """The Data step's volume slicing (``slice_axis``, ``slices`` of :class:`TrainConfig`): the
        Train step slices studies the same way as the scan the split was made from."""
        config = self.config.replace(slice_axis=int(axis), slices=str(slices))
        if config != self.config:
            self.set_config(config)

    def set_run(self, run_dir: str | Path | None) -> None:
        """A run finished (or the user picked another run): it becomes the current one."""
        self.run_dir = Path(run_dir) if run_dir is not None else None
        if self.run_dir is not None:
            self._record = self._record.with_run(self.run_dir)
        self.dirty = True
        self.run_changed.emit()

    def run_info(self):
        """``open_run(run_dir)`` for the current run, or ``None`` when there is none or it is unusable."""
        if self.run_dir is None:
            return None

        try:
            return open_run(self.run_dir)
        except StudioError:
            return None

    # ------------------------------------------------------------------ project file
    def new_project(self) -> None:
        """Forget everything and start an empty project."""
        self._record = Project()
        self.project_path = None
        self.index, self.findings, self.report, self.split = None, [], None, None
        self._dataset_path = None
        self.config = TrainConfig()
        self.run_dir = None
        self.dirty = False
        for sig in (self.dataset_changed, self.split_changed, self.config_changed, self.run_changed,
                    self.project_changed, self.project_opened):
            sig.emit()

    def save(self, path: str | Path | None = None) -> Path:
        """Save to ``path`` (or the current project file); returns the file written."""
        target = Path(path) if path is not None else self.project_path
        if target is None:
            raise StudioError("The project has no file name yet.", "Use File → Save As… to choose one.")
        if self._record.name == "Untitled":
            self._record = replace(self._record, name=target.stem)
        self.project_path = save_project(self.project, target)
        self.dirty = False
        self.project_changed.emit()
        return self.project_path

    def load(self, path: str | Path) -> Project:
        """Open a project file. The dataset is not rescanned here: the Data page does that.

        Raises
        ------
        ProjectError
            Damaged file or newer schema (the session is left unchanged).
        """
        project = load_project(path)
        self._record = project
        self.project_path = Path(path)
        self.index, self.findings, self.report = None, [], None
        self._dataset_path = project.dataset_path
        self.split = Split.from_dict(project.split) if project.split else None
        try:
            self.config = TrainConfig.from_dict(project.config) if project.config else TrainConfig()
        except TypeError:
            self.config = TrainConfig()
        self.run_dir = Path(project.current_run) if project.current_run else None
        self.dirty = False
        for sig in (self.config_changed, self.split_changed, self.run_changed, self.project_changed,
                    self.project_opened):
            sig.emit()
        return project

    def close(self) -> None:
        """The app is quitting: emit :attr:`closing` so every page shuts down what it owns."""
        self.closing.emit()

    @property
    def title(self) -> str:
        """Window title part: project name plus ``*`` when unsaved."""
        name = self.project_path.stem if self.project_path else self._record.name
        return f"{name}{' *' if self.dirty else ''}"
