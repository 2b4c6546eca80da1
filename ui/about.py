"""Help → About CNN Studio: the version, where the program is, and where each kind of the user's data lives.

The data never lives in the program's folder: a newer download or a reinstall replaces that folder
and leaves runs, the weights store, label corrections and settings where they are
(docs/packaging.md, "Updates and your data").
"""

from __future__ import annotations

import html
import sys
from pathlib import Path

from cnn_studio import __version__
from cnn_studio.backbones.weights_store import store_dir
from cnn_studio.core.paths import app_data_dir, keras_cache_dir, runs_dir
from cnn_studio.labels.corrections import corrections_dir


def program_location() -> Path:
    """The folder the running program is in: the bundle's folder when frozen, else the installed package."""
    if getattr(sys, "frozen", False):
        return Path(sys.executable).resolve().parent
    return Path(__file__).resolve().parents[1]


def data_locations(settings_file: str) -> list[tuple[str, Path]]:
    """Each kind of the user's data with its folder (or file), in the order the About box lists them."""
    return [
        ("Runs of unsaved projects", runs_dir()),
        ("Weights store (ImageNet weights files)", store_dir()),
        ("Label corrections", corrections_dir()),
        ("Settings (recent projects, window)", Path(settings_file)),
        ("Logs", app_data_dir() / "logs"),
        ("Keras' download cache", keras_cache_dir()),
    ]


def about_html(settings_file: str) -> str:
    """The About box's text: version, what the app is, where the program and each kind of data live."""
    rows = "".join(f"<tr><td>{html.escape(kind)}:&nbsp;</td><td><code>{html.escape(str(path))}</code></td></tr>"
                   for kind, path in data_locations(settings_file))
    return (f"<b>CNN Studio {__version__}</b><br>Fine-tune pretrained image classifiers on your own folders of "
            "images, see why they decide, and export them.<br>Built on Keras, TensorFlow, Qt (PySide6), "
            "pyqtgraph and superqt.<br><br>"
            f"Program: <code>{html.escape(str(program_location()))}</code><br><br>"
            "Your data stays outside the program's folder, so installing a newer version keeps it:"
            f"<table>{rows}</table>"
            "Saved projects keep their runs beside the project file. Set CNN_STUDIO_HOME to keep the app's "
            "data in another folder.")
