"""The project file (``*.cnnstudio``): which dataset, which split, which settings, which runs.

A project is small JSON written atomically (``fsutil.write_json``); the previous save is kept
next to it as ``<name>.cnnstudio.bak``. The schema is versioned: older files are migrated on
load, files from a newer CNN Studio are refused with a clear message instead of being
half-understood. No Qt and no TensorFlow here.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from cnn_studio.core.errors import ProjectError
from cnn_studio.core.fsutil import write_json

SCHEMA_VERSION = 1
"""The schema this version of CNN Studio writes."""

PROJECT_SUFFIX = ".cnnstudio"
"""File suffix of project files."""


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Project:
    """Everything needed to reopen a piece of work.

    ``split`` is a :meth:`Split.to_dict` dict (or ``None``), ``config`` a
    :meth:`TrainConfig.to_dict` dict; ``runs`` are run-folder paths, newest last, and
    ``current_run`` the one the Evaluate/Classify/Export steps show.
    """

    name: str = "Untitled"
    dataset_path: str | None = None
    split: dict[str, Any] | None = None
    config: dict[str, Any] = field(default_factory=dict)
    runs: tuple[str, ...] = ()
    current_run: str | None = None
    created: str = field(default_factory=_now)
    modified: str = field(default_factory=_now)
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (``schema_version`` first)."""
        return {
            "schema_version": self.schema_version,
            "name": self.name,
            "dataset_path": self.dataset_path,
            "split": self.split,
            "config": dict(self.config),
            "runs": list(self.runs),
            "current_run": self.current_run,
            "created": self.created,
            "modified": self.modified,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Project:
        """Build from a dict already migrated to :data:`SCHEMA_VERSION`."""
        return cls(
            name=str(d.get("name") or "Untitled"),
            dataset_path=d.get("dataset_path"),
            split=d.get("split"),
            config=dict(d.get("config") or {}),
            runs=tuple(str(r) for r in d.get("runs") or ()),
            current_run=d.get("current_run"),
            created=str(d.get("created") or _now()),
            modified=str(d.get("modified") or _now()),
            schema_version=SCHEMA_VERSION,
        )

    @property
    def corrections(self) -> dict[str, Any]:
        """The label review's corrections the project's split was made with (``{}`` when none).

        Stored inside the split (``split["info"]["corrections"]``: file, relabelled, excluded, kept,
        labels_changed and every decision with path, original label, new label and when), so the
        project file, and each run folder's split.json, keep them with the split they changed.
        """
        return dict(((self.split or {}).get("info") or {}).get("corrections") or {})

    def with_run(self, run_dir: str | os.PathLike[str]) -> Project:
        """A copy with ``run_dir`` appended to ``runs`` (once) and made current."""
        run = str(run_dir)
        runs = self.runs if run in self.runs else (*self.runs, run)
        return replace(self, runs=runs, current_run=run)


def backup_path(path: str | os.PathLike[str]) -> Path:
    """Where the previous save of ``path`` is kept."""
    p = Path(path)
    return p.with_name(p.name + ".bak")


def normalise_path(path: str | os.PathLike[str]) -> Path:
    """``path`` with the ``.cnnstudio`` suffix added when it has none."""
    p = Path(path).expanduser()
    return p if p.suffix == PROJECT_SUFFIX else p.with_name(p.name + PROJECT_SUFFIX)


def save_project(project: Project, path: str | os.PathLike[str]) -> Path:
    """Write ``project`` atomically; the previous file (if any) becomes ``<path>.bak``.

    Parameters
    ----------
    project
        What to save; ``modified`` is set to now.
    path
        Target file; ``.cnnstudio`` is appended when missing.

    Returns
    -------
    pathlib.Path
        The file written.

    Raises
    ------
    StudioError
        The disk is full or the folder is not writable (the previous file is untouched).

    Examples
    --------
    >>> save_project(Project(name="Leaves"), "leaves")  # doctest: +SKIP
    PosixPath('leaves.cnnstudio')
    """
    p = normalise_path(path)
    data = replace(project, modified=_now(), schema_version=SCHEMA_VERSION).to_dict()
    if p.exists():
        try:
            shutil.copy2(p, backup_path(p))
        except OSError:
            pass  # a missing backup must never stop the save itself
    write_json(p, data)
    return p


def _migrate(d: dict[str, Any]) -> dict[str, Any]:
    """Bring an older project dict up to :data:`SCHEMA_VERSION`.

    Schema 0 (pre-release files without ``schema_version``) called the dataset ``dataset``
    and the settings ``train_config`` and had a single ``run``.
    """
    version = int(d.get("schema_version", 0))
    if version == 0:
        d = dict(d)
        if "dataset_path" not in d and "dataset" in d:
            d["dataset_path"] = d.pop("dataset")
        if "config" not in d and "train_config" in d:
            d["config"] = d.pop("train_config")
        if "runs" not in d and d.get("run"):
            d["runs"] = [d["run"]]
            d.setdefault("current_run", d.pop("run"))
        d["schema_version"] = 1
    return d


def load_project(path: str | os.PathLike[str]) -> Project:
    """Read a project file, migrating older schemas.

    Raises
    ------
    ProjectError
        The file is missing, is not JSON / not a project (damaged), or was written by a newer
        CNN Studio.
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise ProjectError(f"There is no project file at {p}.",
                           "Check the path, or choose the file again with File → Open….")
    bak = backup_path(p)
    kept = f"your previous save is kept at {bak}" if bak.exists() else "no earlier save exists"
    try:
        d = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ProjectError(f"{p} is not a CNN Studio project or is damaged ({exc.__class__.__name__}); {kept}.",
                           f"Open {bak.name} instead (rename it to end in {PROJECT_SUFFIX})" if bak.exists()
                           else "Start a new project with File → New and choose the dataset folder again.") from exc
    if not isinstance(d, dict) or not ({"schema_version", "name", "dataset_path", "dataset"} & d.keys()):
        raise ProjectError(f"{p} is not a CNN Studio project or is damaged; {kept}.",
                           "Choose a file that ends in .cnnstudio, made with File → Save.")
    version = d.get("schema_version", 0)
    if not isinstance(version, int) or version < 0:
        raise ProjectError(f"{p} is not a CNN Studio project or is damaged (schema {version!r}); {kept}.",
                           "Choose a file that ends in .cnnstudio, made with File → Save.")
    if version > SCHEMA_VERSION:
        raise ProjectError(f"{p} was made by a newer CNN Studio (schema {version}); this version reads "
                           f"schema {SCHEMA_VERSION} and older.",
                           "Update the app to open this project; the file was not changed.")
    try:
        return Project.from_dict(_migrate(d))
    except (TypeError, ValueError) as exc:
        raise ProjectError(f"{p} is not a CNN Studio project or is damaged ({exc}); {kept}.",
                           "Start a new project with File → New.") from exc
