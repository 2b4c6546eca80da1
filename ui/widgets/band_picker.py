"""BandPicker: which bands of a multi-band dataset the model learns from, and which three are shown as R, G, B.

One check box per band (named when the files carry band names, with its value range in the
tooltip), all ticked by default, and three combo boxes for the red, green and blue picture. Band
numbers are 1-based, as in ``--bands 4,3,2`` and :attr:`TrainConfig.bands` /
:attr:`TrainConfig.rgb_bands`. No engine work here: the Data step fills it from the scan report
and stores its choice in the session.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from cnn_studio.data.bands import default_rgb_bands

COLUMNS = 4
CHANNELS = ("red", "green", "blue")

EXPLAIN = ("Your images have <b>{n} bands</b> ({dtype}). Tick the bands the model learns from — all of "
           "them by default; crops and soils often differ most in the near-infrared and red-edge bands, "
           "which a photo does not have. The three bands shown as <b>red, green and blue</b> make every "
           "picture you see (thumbnails, heat maps) and, with pretrained weights, receive the network's "
           "own red, green and blue filters; the other bands start from their average. Beside each band: "
           "its smallest and largest value in the files.")


def band_label(number: int, names: Sequence[str]) -> str:
    """``"4 · B04"`` when the band has a name, else ``"band 4"`` (``number`` is 1-based).

    Examples
    --------
    >>> band_label(4, ("B01", "B02", "B03", "B04"))
    '4 · B04'
    >>> band_label(2, ())
    'band 2'
    """
    name = names[number - 1] if 0 < number <= len(names) and names[number - 1] else ""
    return f"{number} · {name}" if name else f"band {number}"


def fmt_value(v: float) -> str:
    """A band value for people: whole numbers with thousands separators, others to 3 significant digits."""
    return f"{int(v):,}" if float(v).is_integer() else f"{v:.3g}"


class BandPicker(QGroupBox):
    """Check boxes for the bands the model uses and the R, G, B choice.

    Signals
    -------
    changed()
        The user ticked a band or chose another red, green or blue band.
    """

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Bands", parent)
        self.setObjectName("band_picker")
        self.explain = QLabel()
        self.explain.setWordWrap(True)
        self.boxes: list[QCheckBox] = []
        self._grid = QGridLayout()
        self._grid.setHorizontalSpacing(14)
        self.all_button = QPushButton("Use all bands")
        self.all_button.setToolTip("Tick every band (the default).")
        self.all_button.clicked.connect(self.select_all)
        self.rgb_combos: list[QComboBox] = []
        rgb_row = QHBoxLayout()
        rgb_row.addWidget(QLabel("Shown as"))
        for channel in CHANNELS:
            combo = QComboBox()
            combo.setObjectName(f"rgb_{channel}")
            combo.setToolTip(f"The band shown as {channel} in pictures and heat maps; with pretrained weights it "
                             f"receives the network's {channel} filters.")
            combo.activated.connect(self._on_user_change)
            rgb_row.addWidget(QLabel(channel))
            rgb_row.addWidget(combo)
            self.rgb_combos.append(combo)
        rgb_row.addStretch(1)
        rgb_row.addWidget(self.all_button)
        self.problem = QLabel()
        self.problem.setObjectName("band_problem")
        self.problem.setWordWrap(True)
        self.problem.setVisible(False)
        lay = QVBoxLayout(self)
        lay.addWidget(self.explain)
        lay.addLayout(self._grid)
        lay.addLayout(rgb_row)
        lay.addWidget(self.problem)
        self._names: tuple[str, ...] = ()

    # ------------------------------------------------------------------ filling
    @property
    def band_count(self) -> int:
        return len(self.boxes)

    def set_bands(self, count: int, names: Sequence[str] = (), dtype: str = "",
                  ranges: Sequence[tuple[float, float]] = (), *, bands: Sequence[int] = (),
                  rgb_bands: Sequence[int] = ()) -> None:
        """Show ``count`` bands; tick ``bands`` (1-based; empty: all) and show ``rgb_bands`` as R, G, B
        (empty: :func:`~cnn_studio.data.bands.default_rgb_bands`). Choices that do not fit ``count`` fall back to the defaults."""
        for box in self.boxes:
            self._grid.removeWidget(box)
            box.deleteLater()
        self.boxes = []
        self._names = tuple(names)
        self.explain.setText(EXPLAIN.format(n=count, dtype=escape(dtype or "numbers")))
        rows = -(-count // COLUMNS)
        if not all(1 <= b <= count for b in bands):
            bands = ()
        for i in range(count):
            box = QCheckBox(band_label(i + 1, self._names))
            box.setObjectName(f"band_{i + 1}")
            tip = f"Band {i + 1}" + (f" ({self._names[i]})" if i < len(self._names) and self._names[i] else "")
            if i < len(ranges):
                lo, hi = ranges[i]
                box.setText(f"{box.text()}   {fmt_value(lo)}–{fmt_value(hi)}")
                tip += f": values {fmt_value(lo)} – {fmt_value(hi)} in the scanned files"
            box.setToolTip(tip)
            box.setChecked(not bands or (i + 1) in bands)
            box.toggled.connect(self._on_user_change)
            self._grid.addWidget(box, i % rows if rows else 0, i // rows if rows else 0)
            self.boxes.append(box)
        rgb = tuple(rgb_bands) if len(rgb_bands) == 3 and all(1 <= b <= count for b in rgb_bands) else \
            default_rgb_bands(self._names, count)
        for combo, band in zip(self.rgb_combos, rgb, strict=True):
            combo.blockSignals(True)
            combo.clear()
            for i in range(count):
                combo.addItem(band_label(i + 1, self._names), i + 1)
            combo.setCurrentIndex(band - 1)
            combo.blockSignals(False)
        self._show_problem()

    # ------------------------------------------------------------------ reading
    def checked_bands(self) -> tuple[int, ...]:
        """The ticked bands, 1-based, in order."""
        return tuple(i + 1 for i, box in enumerate(self.boxes) if box.isChecked())

    def selected_bands(self) -> tuple[int, ...]:
        """What :attr:`TrainConfig.bands` takes: the ticked bands, or ``()`` when all are ticked."""
        checked = self.checked_bands()
        return () if len(checked) == len(self.boxes) else checked

    def rgb_bands(self) -> tuple[int, int, int]:
        """The bands shown as red, green and blue (1-based)."""
        return tuple(int(c.currentData() or 1) for c in self.rgb_combos)  # type: ignore[return-value]

    def problem_text(self) -> str:
        """Why the choice cannot be trained on ("" when it can)."""
        if self.boxes and not self.checked_bands():
            return "Tick at least one band: the model needs something to learn from."
        return ""

    # ------------------------------------------------------------------ actions
    def select_all(self) -> None:
        """Tick every band."""
        for box in self.boxes:
            box.blockSignals(True)
            box.setChecked(True)
            box.blockSignals(False)
        self._on_user_change()

    def set_checked(self, bands: Sequence[int]) -> None:
        """Tick exactly ``bands`` (1-based), as clicks would; emits :attr:`changed` once."""
        for i, box in enumerate(self.boxes):
            box.blockSignals(True)
            box.setChecked(i + 1 in bands)
            box.blockSignals(False)
        self._on_user_change()

    def set_rgb(self, rgb: Sequence[int]) -> None:
        """Show bands ``rgb`` (1-based) as red, green, blue, as choosing them would; emits :attr:`changed`."""
        for combo, band in zip(self.rgb_combos, rgb, strict=True):
            combo.setCurrentIndex(int(band) - 1)
        self._on_user_change()

    def _on_user_change(self, *_args) -> None:
        self._show_problem()
        self.changed.emit()

    def _show_problem(self) -> None:
        text = self.problem_text()
        unused = [b for b in self.rgb_bands() if self.boxes and b not in self.checked_bands()]
        if not text and unused:
            text = (f"Note: {', '.join(band_label(b, self._names) for b in dict.fromkeys(unused))} is shown in "
                    "the pictures but not used by the model; tick it, or show ticked bands instead.")
        self.problem.setText(text)
        self.problem.setVisible(bool(text))
