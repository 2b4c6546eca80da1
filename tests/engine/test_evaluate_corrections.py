"""`evaluate --data FOLDER` reads that folder's reviewed labels (its corrections file), as training and scan do."""

from __future__ import annotations

import json
import shutil

from cnn_studio.cli import main
from cnn_studio.labels.corrections import Corrections, default_path


def test_evaluate_on_a_folder_honours_its_corrections(trained_run, image_folder, tmp_path, capsys):
    run = shutil.copytree(trained_run, tmp_path / "run")  # evaluate writes metrics.json: the shared run stays as it is
    data = image_folder(classes=("cat", "dog"), per_class=6, size=32, root=tmp_path / "more")
    fixes = Corrections.for_dataset(data)
    wrong = sorted((data / "cat").iterdir())[0]
    gone = sorted((data / "dog").iterdir())[0]
    fixes.relabel(wrong, "cat", "dog")
    fixes.exclude(gone, "dog")
    fixes.save()
    assert default_path(data).exists()

    def evaluate(*extra):
        assert main(["evaluate", str(run), "--data", str(data), "--json", *extra]) == 0
        d = json.loads(capsys.readouterr().out)
        return d, {p["path"]: p["true"] for p in d["predictions"]}

    auto, truth = evaluate()
    assert auto["n_images"] == 11 and str(gone) not in truth
    assert truth[str(wrong)] == 1  # labelled dog by the review
    plain, truth = evaluate("--corrections", "none")
    assert plain["n_images"] == 12 and truth[str(wrong)] == 0 and str(gone) in truth
    assert main(["evaluate", str(run), "--data", str(data), "--corrections", str(tmp_path / "nope.csv")]) == 2
    assert "cannot be read" in capsys.readouterr().err
