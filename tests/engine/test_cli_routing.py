"""``cnn-studio FOLDER`` opens the app on that folder; subcommands and options stay the CLI's."""

from __future__ import annotations

import cnn_studio.cli as cli
from cnn_studio.cli import gui_arguments


def test_folder_argument_opens_the_app_on_it(tmp_path):
    folder = tmp_path / "xrays"
    folder.mkdir()
    assert gui_arguments([]) == []
    assert gui_arguments([str(folder)]) == [str(folder)]
    assert gui_arguments([str(folder), "--no-sample"]) == [str(folder), "--no-sample"]
    assert gui_arguments(["open", str(folder)]) == [str(folder)] and gui_arguments(["gui"]) == []


def test_subcommands_options_and_missing_paths_are_not_the_app(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "scan").mkdir()  # a folder named like a subcommand: the subcommand wins
    assert gui_arguments(["scan", "x"]) is None
    assert gui_arguments(["--version"]) is None
    assert gui_arguments([str(tmp_path / "nowhere")]) is None


def test_main_routes_a_folder_to_the_gui(tmp_path, monkeypatch):
    import sys
    import types

    seen = []
    fake = types.ModuleType("cnn_studio.ui.app")
    fake.main = lambda argv: seen.append(argv) or 0
    monkeypatch.setitem(sys.modules, "cnn_studio.ui.app", fake)
    assert cli.main([str(tmp_path)]) == 0 and seen == [[str(tmp_path)]]
