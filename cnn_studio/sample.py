"""Where the bundled sample dataset lives (handwritten digits; see ``resources/sample/README.md``)."""

from __future__ import annotations

from importlib.resources import as_file, files
from pathlib import Path

SAMPLE_CLASSES = ("one", "seven", "two", "zero")
"""Class folders of the sample dataset, in model output (sorted) order."""


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
