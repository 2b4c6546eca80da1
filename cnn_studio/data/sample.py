"""The sample datasets: handwritten digits (bundled) and two generated ones, made on demand.

``sample_dataset_path()`` is the bundled digits folder (see ``resources/sample/README.md``).
``generated_sample("multiband")`` (Sentinel-2-like 13-band tiles) and ``generated_sample("volumes")``
(NIfTI studies with a lesion in some slices) write their folder once into the app data folder
(``<app data>/samples/``) with the generators of :mod:`cnn_studio.synthetic`, and return it again
without work afterwards. Nothing is downloaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import as_file, files
from pathlib import Path

from cnn_studio.core import events as ev
from cnn_studio.core.cancel import CancelToken, raise_if_cancelled
from cnn_studio.core.fsutil import atomic_dir
from cnn_studio.core.paths import app_data_dir
from cnn_studio.synthetic.multiband import make_multiband_dataset

SAMPLE_CLASSES = ("one", "seven", "two", "zero")
"""Class folders of the sample dataset, in model output (sorted) order."""

SAMPLE_SEED = 11
"""The generated samples' seed: every computer makes the same files."""


@dataclass(frozen=True)
class GeneratedSample:
    """One generated sample dataset: its key, menu title, one-line description, and folder name."""

    key: str
    title: str
    description: str
    folder: str  # under <app data>/samples; a new generator version gets a new name


GENERATED_SAMPLES: dict[str, GeneratedSample] = {
    "multiband": GeneratedSample(
        "multiband", "Multispectral tiles (generated)",
        "Sentinel-2-like satellite tiles: 240 tiles of 13 bands, 16-bit GeoTIFF, three crops that differ "
        "only in the near-infrared and red-edge bands. Made on this computer in a few seconds.",
        "multiband-v1"),
    "volumes": GeneratedSample(
        "volumes", "MRI volumes (generated)",
        "Small NIfTI head volumes: 32 studies of 8 patients, one file per study; the 'lesion' class "
        "shows a bright spot in some slices only. Made on this computer in a few seconds.",
        "volumes-v1"),
}


def sample_dataset_path() -> Path:
    """The folder of the bundled sample dataset (one sub-folder per class, 32x32 PNGs).

    Returns
    -------
    pathlib.Path
        A real folder on disk (the package is installed as files, editable or not).

    Examples
    --------
    >>> sorted(p.name for p in sample_dataset_path().iterdir() if p.is_dir())
    ['one', 'seven', 'two', 'zero']
    """
    resource = files("cnn_studio.resources") / "sample"
    with as_file(resource) as path:  # a no-op for packages installed as plain files
        return Path(path)


def samples_dir() -> Path:
    """Where generated samples are written: ``<app data>/samples``."""
    return app_data_dir() / "samples"


def generated_sample_path(kind: str) -> Path:
    """The folder ``generated_sample(kind)`` makes (it may not exist yet).

    Raises
    ------
    KeyError
        ``kind`` is not one of :data:`GENERATED_SAMPLES`.
    """
    return samples_dir() / GENERATED_SAMPLES[kind].folder


def is_generated(kind: str) -> bool:
    """True when the sample ``kind`` is already on disk (opening it costs nothing)."""
    return generated_sample_path(kind).is_dir()


def is_sample_path(path: str | Path) -> bool:
    """True for the bundled sample or a generated one (the app does not remember them as 'last folder')."""
    p = Path(path)
    return p == sample_dataset_path() or p.parent == samples_dir()


def generated_sample(kind: str, *, sink: ev.EventSink = ev.null_sink, cancel: CancelToken | None = None) -> Path:
    """The folder of the generated sample ``kind`` ("multiband" or "volumes"), made the first time.

    The files are written into a temporary folder that replaces the target only when complete, so an
    interrupted run never leaves half a dataset behind; later calls return the folder at once.

    Parameters
    ----------
    kind
        A key of :data:`GENERATED_SAMPLES`.
    sink, cancel
        Progress events (a stage) and cancellation, as every engine task takes them.

    Returns
    -------
    pathlib.Path
        ``<app data>/samples/<folder>``: one sub-folder per class.

    Examples
    --------
    >>> generated_sample("multiband").name  # doctest: +SKIP
    'multiband-v1'
    """
    if kind not in GENERATED_SAMPLES:
        raise KeyError(f"Expected one of {', '.join(GENERATED_SAMPLES)}, received {kind!r}")
    target = generated_sample_path(kind)
    if target.is_dir():
        return target
    raise_if_cancelled(cancel)
    sink(ev.StageChanged(task="sample", stage=f"Making the sample: {GENERATED_SAMPLES[kind].title}"))
    with atomic_dir(target) as tmp:
        if kind == "multiband":  # 3 crops x 80 tiles of 64 px: "240 tiles, 13 bands, uint16"
            make_multiband_dataset(tmp, per_class=80, size=64, seed=SAMPLE_SEED)
        else:  # 2 classes x 16 studies over 8 patients, 24 slices of 32 px each
            # pydicom + nibabel: only when asked
            from cnn_studio.synthetic.volumes import StudyFormat, make_volume_dataset

            make_volume_dataset(tmp, studies_per_class=16, patients=8, seed=SAMPLE_SEED,
                                form=StudyFormat(slices=24, size=32))
        raise_if_cancelled(cancel)
    return target
