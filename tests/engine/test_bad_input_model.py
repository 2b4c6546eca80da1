"""Issue 23: bad input to predict / explain / export gives a clear message or an honest row, never a traceback."""

from __future__ import annotations

import csv
import os

import numpy as np
import pytest
import tifffile
from PIL import Image

from cnn_studio.cli import main


def _picture(path, size=40, seed=0):
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (size, size, 3), np.uint8)).save(path)
    return path


@pytest.mark.parametrize("name", ["five.tif", "one.npy", "three.npy"])
def test_explain_refuses_a_multiband_file_for_an_rgb_run_with_a_clear_message(trained_run, tmp_path, capsys, name):
    path = tmp_path / name
    if name.endswith(".tif"):
        tifffile.imwrite(path, np.random.rand(32, 32, 5).astype("float32"), photometric="minisblack",
                         planarconfig="contig")
    else:
        np.save(path, np.random.rand(32, 32, 3) if name == "three.npy" else np.random.rand(32, 32))
    for extra in ([], ["--layer", "backbone/block1_conv"]):
        assert main(["explain", str(trained_run), str(path), "--out", str(tmp_path / "h.png"), *extra]) == 2
        err = capsys.readouterr().err
        assert f"error: {name}" in err and "RGB" in err and "hint:" in err
    assert not (tmp_path / "h.png").exists()
    # predict says the same, as a row of its own
    assert main(["predict", str(trained_run), str(path)]) == 1
    assert "RGB" in capsys.readouterr().out


@pytest.mark.parametrize("value", ["0", "-3", "many"])
def test_predict_batch_size_below_one_is_an_argparse_error(trained_run, tmp_path, capsys, value):
    with pytest.raises(SystemExit) as info:
        main(["predict", str(trained_run), str(_picture(tmp_path / "a.png")), "--batch-size", value])
    assert info.value.code == 2
    assert "--batch-size: expected a whole number >= 1" in capsys.readouterr().err


def test_classify_refuses_batch_size_zero_from_python(trained_run, tmp_path):
    from cnn_studio.core.errors import ConfigError
    from cnn_studio.predict.predictor import ClassifyOptions, classify

    with pytest.raises(ConfigError, match="Batch size"):
        classify(trained_run, [_picture(tmp_path / "a.png")], ClassifyOptions(batch_size=0))


def test_export_out_that_is_a_file_is_a_clear_error_and_the_file_is_kept(trained_run, tmp_path, capsys):
    target = tmp_path / "notes.txt"
    target.write_text("mine")
    assert main(["export", str(trained_run), "--format", "keras", "--out", str(target)]) == 2
    err = capsys.readouterr().err
    assert "is a file, not a folder" in err and "hint:" in err
    assert target.read_text() == "mine"


def test_predict_csv_quotes_a_carriage_return_in_a_file_name(trained_run, tmp_path, capsys):
    folder = tmp_path / "imgs"
    folder.mkdir()
    names = ["plain.png", "odd\rname.png", "new\nline.png", "comma,name.png"]
    for i, n in enumerate(names):
        _picture(folder / n, seed=i)
    out = tmp_path / "p.csv"
    assert main(["predict", str(trained_run), str(folder), "--csv", str(out)]) == 0
    with open(out, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert len(rows) == 1 + len(names)
    assert sorted(r[0].rsplit("/", 1)[-1] for r in rows[1:]) == sorted(names)


def test_corrections_and_skipped_csv_quote_carriage_returns(tmp_path):
    from cnn_studio.core.paths import RunLayout
    from cnn_studio.labels.corrections import Corrections
    from cnn_studio.runs.run_folder import read_skipped, write_skipped

    c = Corrections()
    c.exclude("/data/a\rb.png", "cat")
    c.save(tmp_path / "c.csv")
    assert [d.path for d in Corrections.load(tmp_path / "c.csv").decisions] == ["/data/a\rb.png"]
    layout = RunLayout(tmp_path)
    write_skipped(layout, {"/x/a\rb.png": "truncated", "/x/c.png": "empty"})
    assert read_skipped(layout) == [("/x/a\rb.png", "truncated"), ("/x/c.png", "empty")]


def test_explain_layer_reads_a_large_picture_reduced(trained_run, tmp_path, capsys, monkeypatch):
    import cnn_studio.data.pipeline as pipeline

    shapes = []
    real = pipeline.decode_key

    def spy(key, **kw):
        arr = real(key, **kw)
        shapes.append(arr.shape)
        return arr

    monkeypatch.setattr(pipeline, "decode_key", spy)
    big = _picture(tmp_path / "big.png", size=1024)
    out = tmp_path / "maps.png"
    assert main(["explain", str(trained_run), str(big), "--layer", "backbone/block1_conv", "--out", str(out)]) == 0
    assert out.exists() and shapes and max(shapes[0][:2]) < 1024  # reduced while read, not decoded at full size


def _mixed_folder(root):
    root.mkdir()
    for i in range(3):
        _picture(root / f"img_{i}.png", seed=i)
    (root / "notes.txt").write_text("not an image")
    (root / "photo.heic").write_bytes(b"\x00\x00\x00\x18ftypheic")
    os.symlink(root / "nowhere.png", root / "broken.png")
    os.symlink(root / "loop_b.jpg", root / "loop_a.jpg")
    os.symlink(root / "loop_a.jpg", root / "loop_b.jpg")
    return root


def test_predict_folder_lists_skipped_files_and_broken_links_and_predicts_the_rest(trained_run, tmp_path, capsys):
    folder = _mixed_folder(tmp_path / "mixed")
    out = tmp_path / "p.csv"
    assert main(["predict", str(trained_run), str(folder), "--csv", str(out)]) == 1  # the links cannot be read
    text = capsys.readouterr()
    assert f"{folder / 'notes.txt'}\tSKIPPED: not an image type CNN Studio reads (.txt)" in text.out
    assert f"{folder / 'photo.heic'}\tSKIPPED: not an image type CNN Studio reads (.heic)" in text.out
    assert "Too many levels of symbolic links" in text.out and "No such file or directory" in text.out
    assert "2 file(s) skipped" in text.err and "3 of 6 file(s) could not be read" in text.err
    with open(out, newline="", encoding="utf-8") as f:
        rows = {os.path.basename(r["path"]): r for r in csv.DictReader(f)}
    assert len(rows) == 8
    assert all(rows[f"img_{i}.png"]["top1"] and not rows[f"img_{i}.png"]["error"] for i in range(3))
    assert rows["photo.heic"]["error"] == "skipped: not an image type CNN Studio reads (.heic)"
    assert "symbolic links" in rows["loop_a.jpg"]["error"] and rows["broken.png"]["error"]


def test_classify_a_folder_returns_a_skipped_row_per_other_file(trained_run, tmp_path):
    from cnn_studio.predict.predictor import classify

    folder = _mixed_folder(tmp_path / "mixed")
    preds = {os.path.basename(p.path): p for p in classify(trained_run, [folder])}
    assert {n for n, p in preds.items() if p.skipped} == {"notes.txt", "photo.heic"}
    assert {n for n, p in preds.items() if p.error and not p.skipped} == {"broken.png", "loop_a.jpg", "loop_b.jpg"}
    assert all(preds[f"img_{i}.png"].top for i in range(3))
    assert preds["notes.txt"].to_dict()["skipped"] is True
