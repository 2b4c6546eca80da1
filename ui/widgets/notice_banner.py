"""NoticeBanner: a coloured box saying something the user must know about a result (a model no better
than guessing, a suspected shortcut), what to try, and optionally example images to click.

A suspected shortcut's examples carry its region: :func:`boxed_thumbnail` draws the box the check
masked (fractions of the model's input, mapped onto each picture through the run's resize policy).

Hidden until :meth:`NoticeBanner.show_notice`; the wording comes from the engine's records
(message + hint), the colours from :func:`cnn_studio.ui.messages.severity_colour`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape

from cnn_studio.ui.messages import severity_colour
from cnn_studio.ui.widgets.image_grid import ImageGrid, thumbnail
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPen, QPixmap
from PySide6.QtWidgets import QFrame, QLabel, QVBoxLayout, QWidget

from cnn_studio.data.records import display_name
from cnn_studio.explain.occlusion import box_on_picture

BACKGROUNDS = {"warning": "#fff7e6", "error": "#fdecea", "info": "#e8f1fb", "ok": "#e8f5e9"}
BOX_COLOUR = "#ff2d2d"


@dataclass(frozen=True)
class NoticeExamples:
    """The example images a notice shows as clickable thumbnails.

    ``box``: a region to frame on every example (fractions of the model's input, see
    :func:`boxed_thumbnail`), drawn through the ``resize`` policy; ``captions``: a caption per
    example (default: its name).
    """

    paths: tuple[str, ...] = ()
    box: tuple[float, ...] | None = None
    resize: str = "stretch"
    captions: dict[str, str] = field(default_factory=dict)


def boxed_thumbnail(path: str, size: int, box, resize: str = "stretch") -> QPixmap:
    """:func:`thumbnail` of ``path`` with ``box`` (fractions of the model's input) drawn as a red frame."""
    pix = thumbnail(path, size)
    if not box or pix.isNull():
        return pix
    w, h = pix.width(), pix.height()
    x0, y0, x1, y1 = box_on_picture(tuple(box), (h, w), max(h, w), resize)
    pen_width = max(2, min(6, round(min(w, h) / 32)))
    painter = QPainter(pix)
    painter.setPen(QPen(QColor(BOX_COLOUR), pen_width))
    half = pen_width / 2
    painter.drawRect(QRectF(x0 * w + half, y0 * h + half, max(1.0, (x1 - x0) * w - pen_width),
                            max(1.0, (y1 - y0) * h - pen_width)))
    painter.end()
    return pix


def shortcut_captions(shortcuts: dict) -> dict[str, str]:
    """A caption per image a suspected shortcut changed: its name, and the answer before and after."""
    out = {}
    for a in shortcuts.get("affected") or ():
        if a.get("masked_changed"):
            change = f"masked: {a['answer']} → {a['masked_answer']}"
        else:
            change = f"swapped: {a['answer']} → {a['swapped_answer']}"
        out[a["key"]] = f"{display_name(a['key'])}\n{change}"
    return out


def shortcut_examples(shortcuts: dict, shown: int = 6) -> NoticeExamples:
    """A suspected shortcut's first ``shown`` examples, framed where the check masked, with their captions."""
    return NoticeExamples(tuple(shortcuts.get("examples", []))[:shown], shortcuts.get("box"),
                          shortcuts.get("resize", "stretch"), shortcut_captions(shortcuts))


class NoticeBanner(QFrame):
    """Title, text, hint and up to a few example thumbnails; ``example_activated(path)`` on a click."""

    example_activated = Signal(str)

    def __init__(self, thumb_size: int = 72, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("notice_banner")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextFormat(Qt.TextFormat.RichText)
        self.examples = ImageGrid(thumb_size)
        self.examples.setWrapping(False)
        self.examples.setFixedHeight(thumb_size + 60)
        self.examples.setToolTip("Click a picture to see it larger.")
        self.examples.image_activated.connect(self.example_activated)
        self.examples.hide()
        lay = QVBoxLayout(self)
        lay.setContentsMargins(10, 6, 10, 6)
        lay.addWidget(self.label)
        lay.addWidget(self.examples)
        self.severity = ""
        self.box, self.resize = None, "stretch"
        self.hide()

    def show_notice(self, title: str, text: str, hint: str = "", severity: str = "warning",
                    examples: NoticeExamples = NoticeExamples()) -> None:
        """Show the banner (``examples``: image files to show as clickable thumbnails, see :class:`NoticeExamples`)."""
        self.severity = severity
        colour = severity_colour(severity).name()
        self.setStyleSheet(f"#notice_banner {{ background: {BACKGROUNDS.get(severity, '#ffffff')}; "
                           f"border: 1px solid {colour}; border-left: 5px solid {colour}; border-radius: 3px; }}")
        hint_html = f"<br><i>{escape(hint)}</i>" if hint else ""
        self.label.setText(f'<b style="color:{colour}">⚠ {escape(title)}</b> {escape(text)}{hint_html}')
        self.examples.clear()
        self.box, self.resize = (tuple(examples.box) if examples.box else None), examples.resize
        where = "\nThe red frame marks the place that changed the answer." if self.box else ""
        for path in examples.paths:
            pix = boxed_thumbnail(path, 2 * self.examples.thumb_size, self.box, self.resize) if self.box else None
            self.examples.add_image(path, examples.captions.get(path) or display_name(path),
                                    f"{path}{where}\nClick to see it larger.", pixmap=pix)
        self.examples.setVisible(bool(examples.paths))
        self.show()

    def clear_notice(self) -> None:
        self.examples.clear()
        self.label.clear()
        self.severity = ""
        self.box, self.resize = None, "stretch"
        self.hide()
