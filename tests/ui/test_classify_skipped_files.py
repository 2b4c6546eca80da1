"""Issue 23: the Classify step lists the files of a dropped folder that are not images, each with why."""

from __future__ import annotations

import numpy as np
from PIL import Image

from cnn_studio.core import events as ev


def test_classify_paths_gives_a_row_for_each_file_that_is_not_an_image(trained_run, tmp_path, monkeypatch):
    from cnn_studio.ui.pages.classify_page import classify_paths

    monkeypatch.setenv("CNN_STUDIO_IN_PROCESS", "1")
    folder = tmp_path / "drop"
    folder.mkdir()
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(folder / "a.png")
    (folder / "notes.txt").write_text("x")
    (folder / "photo.heic").write_bytes(b"x")
    model, preds, _previews, _studies = classify_paths(trained_run, None, [folder], sink=ev.null_sink, cancel=None)
    model.close()
    by_name = {p.path.rsplit("/", 1)[-1]: p for p in preds}
    assert set(by_name) == {"a.png", "notes.txt", "photo.heic"}
    assert by_name["a.png"].top and not by_name["a.png"].error
    assert by_name["photo.heic"].skipped and "(.heic)" in by_name["photo.heic"].error
