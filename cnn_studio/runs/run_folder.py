"""A training run folder on disk: open it, read what it holds, load its model.

Layout: ``paths.RunLayout`` names every file (config.json, split.json, labels.txt, best.keras,
last.keras, history.csv, state.json, metrics.json, robustness.json, tb/, ...). Evaluation,
prediction, export and explanations all start from :func:`open_run` / :func:`load_model`.

The run folder owns the facts a run was made with. :func:`recorded_config` resolves them once,
when training starts (the image size, the weights source, the split's own fractions, grouping and
seed), and config.json stores that; :class:`RunInfo` hands them out (``image_size``,
``weights``, ``split_seed``, ``total_epochs``), so no consumer loads the model or asks the
registry again. Runs written before these values were recorded still open: their missing values
fall back to the backbone's default size and to split.json.

Every file has one validated reader (:mod:`cnn_studio.runs.run_files`, re-exported here: :func:`read_config`,
:func:`read_split`, :func:`read_labels`, :func:`read_state`, :func:`read_history`), checked by
:mod:`~cnn_studio.runs.checks` (required keys and types, never defaults; labels.txt against
split.json and the model, :func:`class_names_of` and :func:`check_run_model`): damage becomes a
:class:`~cnn_studio.core.errors.RunError` that names the file and says what still works, and a file is
read only by the commands that need it (``RunInfo.split``/``RunInfo.state`` are read on first use).
One process writes a run folder at a time: :class:`~cnn_studio.runs.lock.RunLock` (``run.lock``,
its own module, re-exported here) is taken by train/resume and other writers.
Opening a folder whose lock is free removes the hidden temporaries a killed writer left.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from cnn_studio.backbones import registry
from cnn_studio.backbones.weights import WeightsChoice
from cnn_studio.core.errors import RunError
from cnn_studio.core.fsutil import remove_temporaries
from cnn_studio.core.keras_archive import check_keras_archive
from cnn_studio.core.paths import RunLayout
from cnn_studio.data.records import Split
from cnn_studio.export.staging import remove_stale
from cnn_studio.runs.checks import (
    agreeing_class_names,
    check_history,
    check_model,
    model_facts,
)
from cnn_studio.runs.checks import check_labels as _check_label_count
from cnn_studio.runs.lock import (  # noqa: F401 - re-exported: the lock lived here
    RunBusy,
    RunLock,
    describe_holder,
    lock_holder,
)
from cnn_studio.runs.run_files import (  # noqa: F401 - re-exported: every reader lived here
    read_config,
    read_history,
    read_json_file,
    read_labels,
    read_metrics,
    read_optional_json,
    read_robustness,
    read_skipped,
    read_split,
    read_state,
    write_labels,
    write_skipped,
)
from cnn_studio.training.config import TrainConfig


@dataclass(frozen=True)
class RunInfo:
    """What a run folder holds. ``model_path`` is best.keras, else last.keras.

    ``split`` (split.json) and ``state`` (state.json) are read on first use, so a command that does
    not need them (predict, export) is not stopped by their damage.
    """

    layout: RunLayout
    config: TrainConfig
    class_names: tuple[str, ...]
    model_path: Path

    @cached_property
    def split(self) -> Split | None:
        """The run's split (None when split.json is missing). Raises RunError when it is damaged."""
        return read_split(self.layout)

    @cached_property
    def state(self) -> dict[str, Any]:
        """state.json; ``{}`` when missing, ``{"status": "damaged", "damaged": why}`` when unreadable."""
        try:
            return read_state(self.layout)
        except RunError as exc:
            return {"status": "damaged", "damaged": exc.message}

    @property
    def root(self) -> Path:
        return self.layout.root

    @property
    def image_size(self) -> int:
        """The side images are resized to: recorded in config.json (older runs: the backbone's default)."""
        return registry.get(self.config.backbone).image_size(self.config.image_size)

    @property
    def weights(self) -> WeightsChoice:
        """Where the backbone's starting weights came from ("imagenet", "none" or "file" with its path)."""
        return self.config.weights_choice

    @property
    def split_seed(self) -> int:
        """The seed the split was made with (split.json; else the recorded settings)."""
        return self.split.seed if self.split is not None else self.config.effective_split_seed

    @property
    def total_epochs(self) -> int:
        return self.config.total_epochs

    def history(self) -> list[dict[str, float]]:
        """Per-epoch metrics from history.csv (empty if none yet)."""
        return read_history(self.layout.history)


def recorded_config(config: TrainConfig, split: Split) -> TrainConfig:
    """``config`` as a run folder records it: every value a consumer needs, resolved.

    The backbone key in its canonical spelling, ``image_size`` as a number (the backbone's default
    when it was left empty), ``weights`` as the one parser reads it ("none" for "scratch"), and the
    split's own ``val_fraction``/``test_fraction``/``group_by``/``split_seed`` (the GUI's Data page
    makes the split with its own settings; the config's defaults must not be recorded instead).

    Raises :class:`~cnn_studio.core.errors.ConfigError` for an unknown backbone or too small an image.
    """
    spec = registry.get(config.backbone)
    return config.replace(backbone=spec.key, image_size=spec.image_size(config.image_size),
                          weights=config.weights_choice.value, val_fraction=split.val_fraction,
                          test_fraction=split.test_fraction, group_by=split.group_by or "none",
                          split_seed=split.seed)


def resume_point(run_dir: str | Path) -> tuple[int, int] | None:
    """``(finished epochs to continue from, epochs planned)`` for a run that stopped early, else None.

    None when the folder is not a run (no config.json/split.json) or the run finished all its
    epochs. Continuing starts from the epochs last.keras holds (``state.json["checkpoint_epoch"]``),
    from 0 when there is no last.keras. None too when state.json is missing or damaged (the app then
    offers no Continue; ``resume`` says what is wrong). Raises RunError when config.json is damaged.
    """
    layout = RunLayout(Path(run_dir))
    if not layout.is_run() or not layout.split.exists():
        return None
    config = read_config(layout)
    try:
        state = read_state(layout, required=True)
    except RunError:
        return None  # unknown progress is no resume point; resume itself says why (read_state)
    total = config.total_epochs
    done = int(state.get("epochs_done", 0))
    if state.get("status") == "completed" or done >= total:
        return None
    checkpointed = int(state.get("checkpoint_epoch", done))  # finished epochs that last.keras holds
    return (checkpointed if layout.last_model.exists() else 0), total


def check_labels(layout: RunLayout, class_names: tuple[str, ...], n_outputs: int) -> None:
    """RunError when labels.txt does not list one name per model output (a silent wrong answer otherwise)."""
    _check_label_count(layout.labels if layout.labels.exists() else layout.split, class_names, n_outputs)


def class_names_of(layout: RunLayout, split: Split | None = None) -> tuple[str, ...]:
    """The run's class names in output order, cross-checked: labels.txt must list split.json's classes.

    The one place every command gets them (through :func:`open_run` and :func:`load_model`).
    ``split``: split.json when the caller already read it. labels.txt missing: split.json's names;
    split.json missing or damaged: labels.txt's (split.json's reader stops what needs it).
    Raises RunError naming both lists when they differ.
    """
    labels = read_labels(layout.labels) if layout.labels.exists() else ()
    names = split.class_names if split is not None else _split_class_names(layout)
    return agreeing_class_names(layout.labels, labels, layout.split, names)


_SPLIT_NAMES: dict[Path, tuple[tuple[int, int, int], tuple[str, ...] | None]] = {}


def _split_class_names(layout: RunLayout) -> tuple[str, ...] | None:
    """The class list in split.json (None when missing or damaged), remembered while the file is unchanged:
    open_run and load_model both ask, and a large split.json takes a second to parse."""
    try:
        stat = layout.split.stat()
    except OSError:
        return None
    key = (stat.st_ino, stat.st_mtime_ns, stat.st_size)  # an atomic rewrite is a new inode
    known = _SPLIT_NAMES.get(layout.split)
    if known is not None and known[0] == key:
        return known[1]
    try:
        names = read_json_file(layout.split, "split").get("class_names")
    except RunError:
        names = None
    ok = isinstance(names, list) and all(isinstance(n, str) for n in names)
    _SPLIT_NAMES[layout.split] = key, tuple(names) if ok else None
    return _SPLIT_NAMES[layout.split][1]


def check_resumable(layout: RunLayout, epochs_done: int) -> list[str]:
    """What ``resume`` must know before it trains on from ``epochs_done``: warnings to show (else []).

    Raises RunError when labels.txt disagrees with split.json or history.csv is damaged; history
    rows lost at its end (a kill while saving) are a warning, since the model holds the epochs.
    """
    class_names_of(layout)
    if not epochs_done:
        return []  # from epoch 0: every history row is written anew, no checkpoint is read
    if layout.last_model.exists():
        check_run_model(layout, layout.last_model)  # before anything is written: a model made elsewhere stops here
    note = check_history(layout.history, epochs_done)
    return [note] if note else []


def looks_like_run(layout: RunLayout) -> bool:
    """A run folder, also one that lost its config.json: config.json, or two of state.json, split.json,
    labels.txt and history.csv (such a run is reported damaged, never taken for "not a run")."""
    return layout.is_run() or sum(p.is_file() for p in (layout.state, layout.split, layout.labels,
                                                        layout.history)) >= 2


def open_run(path: str | Path) -> RunInfo:
    """Open a run folder (or a .keras file inside one) without importing TensorFlow.

    Reads config.json (checked), labels.txt and split.json's class list (they must agree:
    :func:`class_names_of`); the whole split and state.json are read when first asked for.
    When no process holds the folder's lock, the hidden temporaries a killed writer left are removed.

    Raises
    ------
    RunError
        If the folder does not exist, holds no model, its config.json/labels.txt is damaged, or
        labels.txt disagrees with split.json;
        the message names the file and the hint what still works.
    """
    p = Path(path).expanduser()
    if p.is_file() and p.suffix == ".keras":
        p = p.parent
    layout = RunLayout(p)
    if not p.is_dir():
        raise RunError(f"No run folder at {p}.", "Give the folder that `cnn-studio train --out` created.")
    if not looks_like_run(layout):
        raise RunError(
            f"{p} is not a CNN Studio run folder (no config.json).",
            "Give the folder that `cnn-studio train --out` created, or a .keras model file.",
        )
    clean_temporaries(layout)  # (a run that lost config.json is told so by read_config)
    config = read_config(layout)
    model_path = next((m for m in layout.models if m.exists()), layout.last_model)
    if not model_path.exists():
        raise no_model_error(layout)
    return RunInfo(layout=layout, config=config, class_names=class_names_of(layout), model_path=model_path)


def no_model_error(layout: RunLayout) -> RunError:
    """Why a run folder has no model yet, and exactly how to go on."""
    p = layout.root
    try:
        state = read_state(layout)
    except RunError:
        state = {}
    if lock_holder(layout.root) is not None:
        return RunError(f"The run in {p} has no saved model yet: it is still training ({describe_holder(lock_holder(p))}).",
                        "Wait for the first checkpoint (at most 30 s after the first epoch), or for the run to finish.")
    if state.get("status") == "failed" and not int(state.get("checkpoint_epoch", 0) or 0):
        why = state.get("message") or "an error"
        return RunError(f"The run in {p} failed before its first epoch ended ({why}); it has no model.",
                        f"Fix the cause and run the same `cnn-studio train ... --out {p}` again: a folder whose "
                        "start failed is reused.")
    return RunError(
        f"The run in {p} has no saved model yet (no best.keras or last.keras).",
        f"If training was interrupted, continue it with `cnn-studio resume {p}`.",
    )


def clean_temporaries(layout: RunLayout) -> list[Path]:
    """Remove what a killed writer left (``.last.*.keras``, ``.saved_model.*``...) when no process holds the lock."""
    if lock_holder(layout.root) is not None:
        return []
    removed = remove_temporaries(layout.root)
    if layout.exports.is_dir():
        removed += remove_temporaries(layout.exports) + remove_stale(layout.exports)
    return removed


def load_model(path: str | Path):
    """Load a Keras model from a run folder or a ``.keras`` file (``safe_mode=True``).

    Imports Keras on first call. Raises :class:`RunError` with a hint if the file is damaged, or
    if it would unpack to far more than its size (:mod:`cnn_studio.core.keras_archive`, checked first).
    """
    import keras

    p = Path(path).expanduser()
    if p.is_dir():
        p = open_run(p).model_path
    if not p.exists():
        raise RunError(f"No model file at {p}.", "Give a run folder or a .keras file.")
    check_keras_archive(p, RunError)  # before Keras unpacks config.json into memory
    layout = RunLayout(p.parent)
    if p.name in {m.name for m in layout.models} and layout.is_run():
        check_run_model(layout, p)
    try:
        return keras.saving.load_model(p, safe_mode=True)
    except Exception as exc:  # noqa: BLE001 - Keras raises many types for a damaged file
        raise model_load_error(p, exc) from exc


def check_run_model(layout: RunLayout, path: Path) -> None:
    """RunError when a run's best.keras/last.keras is not a CNN Studio classifier for this run.

    Checked before every load of a run's model (evaluate, predict, export, explain, resume), from
    the file's own config (no TensorFlow): made by CNN Studio (a backbone and a predictions layer),
    one output per class of :func:`class_names_of`, and the image size config.json records.
    """
    try:
        facts = model_facts(path)
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as exc:
        raise model_load_error(path, exc) from exc
    check_model(path, facts, _other_checkpoint_hint(path))
    names = class_names_of(layout)
    if names:
        check_labels(layout, names, facts.outputs)
    config = read_config(layout)
    size = registry.get(config.backbone).image_size(config.image_size)
    if facts.image_size is not None and facts.image_size != size:
        raise RunError(f"{path} takes {facts.image_size}×{facts.image_size} px images but {layout.config} records "
                       f"{size}×{size} px: they are not from the same training.",
                       "Put back the config.json or the model file saved with this run.")


def model_load_error(path: Path, exc: BaseException) -> RunError:
    """A RunError for a .keras file that does not load, saying which other checkpoint still can."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return RunError(f"The model file {path} is damaged: it does not load ({first[:200]}).", _other_checkpoint_hint(path))


def _other_checkpoint_hint(path: Path) -> str:
    """What to do when a run's model file cannot be used: the other checkpoint of the run, if there is one."""
    layout = RunLayout(path.parent)
    others = [m for m in layout.models if m.exists() and m.name != path.name] if layout.is_run() else []
    if not others:
        return "The file is incomplete or from another program; put back the file this run saved, or train the run again."
    other = others[0]
    hint = (f"{other.name} in the same folder is another checkpoint of this run: use it directly "
            f"(e.g. `cnn-studio predict {other} ...`), or delete {path.name} so the run opens with {other.name}.")
    if path == layout.last_model:
        hint += " Continuing the training needs last.keras: after deleting it, `resume` starts again from epoch 0."
    return hint
