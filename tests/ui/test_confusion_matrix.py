"""The confusion matrix: cells, colours and clicks."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor


def test_confusion_matrix_cells_colours_and_clicks(qtbot):
    from cnn_studio.ui.widgets.confusion_matrix import ConfusionMatrix, legend_html

    matrix = ConfusionMatrix()
    qtbot.addWidget(matrix)
    matrix.set_matrix([[8, 2], [0, 5]], ["cat", "dog"])
    assert matrix.item(0, 1).text() == "2\n20%"
    assert matrix.verticalHeaderItem(1).text() == "is dog" and matrix.horizontalHeaderItem(0).text() == "said cat"
    diagonal, mistake = matrix.item(0, 0).background().color(), matrix.item(0, 1).background().color()
    assert diagonal.blue() > diagonal.red() and mistake.red() > mistake.blue()
    assert matrix.item(1, 0).background().color() == QColor(255, 255, 255)  # no images: white
    matrix.show()
    with qtbot.waitSignal(matrix.cell_chosen) as blocker:
        qtbot.mouseClick(matrix.viewport(), Qt.MouseButton.LeftButton,
                         pos=matrix.visualItemRect(matrix.item(1, 0)).center())
    assert blocker.args == [1, 0]
    assert "mistakes" in legend_html()
