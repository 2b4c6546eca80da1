"""FindingsView: each finding lists its files (relative, with the skip reason) and opens their folder."""

from __future__ import annotations

from cnn_studio.ui.widgets.findings_view import FindingsView

from cnn_studio.data.checks import Finding
from cnn_studio.data.records import SkippedFile


def test_findings_list_their_files_with_reasons_and_notes(qtbot, tmp_path):
    root = tmp_path / "data"
    cut, empty = str(root / "healthy" / "cut.jpg"), str(root / "rust" / "empty.png")
    view = FindingsView(open_folders=False)
    qtbot.addWidget(view)
    findings = [Finding("warning", "skipped_files", "2 file(s) will not be used", "Fix or remove them.", (cut, empty)),
                Finding("error", "single_class", "Only one class", "Add another class folder.")]
    skipped = (SkippedFile(cut, "truncated", "Truncated File Read"), SkippedFile(empty, "empty"))
    view.show_findings(findings, root=str(root), skipped=skipped, notes=("ignored 1 file(s) that are not images",))
    assert view.topLevelItemCount() == 3
    texts = view.finding_texts()
    assert "→ Fix or remove them." in texts[0] and "2 file(s)" in texts[0]
    assert texts[2].startswith("Good to know: ignored 1 file")
    children = [view.topLevelItem(0).child(i).text(0) for i in range(2)]
    assert children[0].startswith("healthy/cut.jpg — the file ends early (Truncated File Read)")
    assert children[1] == "rust/empty.png — empty file"
    assert view.files_of(0) == [cut, empty] and view.files_of(1) == []
    with qtbot.waitSignal(view.file_activated) as got:
        view.itemDoubleClicked.emit(view.topLevelItem(0).child(1), 0)
    assert got.args == [empty]


def test_no_findings_says_so(qtbot):
    view = FindingsView(open_folders=False)
    qtbot.addWidget(view)
    view.show_findings([])
    assert view.finding_texts() == ["No problems found."]
