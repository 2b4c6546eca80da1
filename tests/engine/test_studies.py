"""Study-level results: aggregation, study metrics, and scan → train → evaluate → predict per study through the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cnn_studio.evaluation.evaluate import Metrics, MetricsOptions, compute_metrics
from cnn_studio.evaluation.studies import aggregate, study_metrics, study_results


def test_aggregate_mean_and_max():
    p = np.array([[0.9, 0.1], [0.8, 0.2], [0.1, 0.9]])
    np.testing.assert_allclose(aggregate(p), [0.6, 0.4])
    np.testing.assert_allclose(aggregate(p, "max"), [0.5, 0.5])
    with pytest.raises(Exception, match="mean"):
        aggregate(p, "median")


def test_study_metrics_match_a_recomputation_and_name_the_driving_slices():
    names = ("healthy", "lesion")
    keys = [f"s{s}.nii.gz#slice=2:{i}" for s in range(4) for i in range(3)]
    studies = [k.split("#")[0] for k in keys]
    labels = [0] * 6 + [1] * 6
    p = np.array([[0.7, 0.3], [0.6, 0.4], [0.8, 0.2],   # s0 healthy → healthy
                  [0.2, 0.8], [0.7, 0.3], [0.7, 0.3],   # s1 healthy → healthy by mean (0.467), lesion by max
                  [0.5, 0.5], [0.1, 0.9], [0.6, 0.4],   # s2 lesion → lesion (mean 0.6)
                  [0.7, 0.3], [0.8, 0.2], [0.6, 0.4]])  # s3 lesion → healthy
    m = study_metrics(keys, studies, labels, p, names)
    assert m["aggregate"] == "mean" and m["count"] == 4
    assert m["confusion"] == [[2, 0], [1, 1]] and m["accuracy"] == 0.75 and m["balanced_accuracy"] == 0.75
    assert [r["support"] for r in m["per_class"]] == [2, 2]
    lesion = m["per_class"][1]
    assert (lesion["precision"], lesion["recall"]) == (1.0, 0.5)
    s2 = m["studies"][2]
    assert s2["study"] == "s2.nii.gz" and (s2["label"], s2["predicted"], s2["slices"]) == (1, 1, 3)
    np.testing.assert_allclose(s2["probabilities"], p[6:9].mean(axis=0))
    assert s2["top_slices"] == ["s2.nii.gz#slice=2:1", "s2.nii.gz#slice=2:0", "s2.nii.gz#slice=2:2"]
    by_max = study_results(keys, studies, p, labels, how="max")
    assert [r.predicted for r in by_max] == [0, 1, 1, 0]
    assert study_metrics(keys, [None] * 12, labels, p, names) == {}


def _studies(n_per_class: int, wrong: int = 0):
    """Two classes of ``n_per_class`` studies (3 slices each); the first ``wrong`` studies of class 0 misread."""
    keys, studies, labels, rows = [], [], [], []
    for s in range(2 * n_per_class):
        label = s % 2
        answer = 1 - label if label == 0 and s // 2 < wrong else label
        for i in range(3):
            keys.append(f"s{s}.nii#slice=2:{i}")
            studies.append(f"s{s}.nii")
            labels.append(label)
            rows.append([0.8, 0.2] if answer == 0 else [0.2, 0.8])
    return keys, studies, labels, np.array(rows)


def test_study_figures_carry_intervals_counts_and_the_chance_verdict():
    from cnn_studio.evaluation.intervals import TOO_FEW, wilson

    m = study_metrics(*_studies(4), ("a", "b"))  # 8 studies, all right: too few to tell
    iv = m["intervals"]
    assert m["accuracy"] == 1.0 and iv["accuracy"]["n"] == 8 and iv["accuracy"]["verdict"] == TOO_FEW
    assert iv["balanced_accuracy"]["verdict"] == TOO_FEW and iv["per_class"]["a"]["recall"]["n"] == 4
    assert m["chance"]["n"] == 8
    m = study_metrics(*_studies(12, wrong=1), ("a", "b"))  # 24 studies, one wrong
    iv = m["intervals"]
    acc, bal = iv["accuracy"], iv["balanced_accuracy"]
    assert acc["verdict"] is None and acc["n"] == 24 and (acc["low"], acc["high"]) == pytest.approx(wilson(23, 24))
    assert bal["value"] == pytest.approx(m["balanced_accuracy"]) and bal["low"] < bal["value"] <= bal["high"]
    assert m["chance"]["verdict"] == "better"
    thin = study_metrics(*_studies(5, wrong=2), ("a", "b"))  # 10 studies, 8 right: cannot beat guessing
    assert thin["chance"]["verdict"] == "unproven" and thin["chance"]["message"].startswith("10 studies cannot show")


def test_study_report_and_model_card_lines_say_how_sure_the_study_figures_are():
    from cnn_studio.evaluation.studies import study_figures, study_text

    m = study_metrics(*_studies(12, wrong=1), ("a", "b"))
    line = study_figures(m, 2)
    assert line.startswith("accuracy 0.96 (95% CI 0.80–0.99, 24 studies), balanced accuracy 0.96 (95% CI")
    text = "\n".join(study_text(study_metrics(*_studies(5, wrong=2), ("a", "b")), ["a", "b"]))
    assert "study accuracy too few studies to tell (10 studies)" not in text  # 10 is enough
    assert "study accuracy 0.8000 (95% CI" in text and "WARNING: 10 studies cannot show" in text
    assert "recall    too few studies to tell (5 studies)" in text


def test_metrics_carry_study_results_in_json_and_text():
    keys = [f"v{s}.nii#slice=2:{i}" for s in range(2) for i in range(2)] + ["photo.png"]
    studies = ["v0.nii", "v0.nii", "v1.nii", "v1.nii", None]
    p = np.array([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7], [0.4, 0.6], [0.2, 0.8]])
    m = compute_metrics([0, 0, 1, 1, 1], p, ["a", "b"], keys, studies=studies, options=MetricsOptions(study_aggregate="max"))
    assert m.study["count"] == 2 and m.study["aggregate"] == "max" and m.study["accuracy"] == 1.0
    assert {p["path"] for p in m.predictions} == set(keys) and m.predictions[0]["study"] == "v0.nii"
    again = Metrics.from_dict(json.loads(json.dumps(m.to_dict())))
    assert again.study == m.study
    text = m.to_text()
    assert "5 slices of 2 studies" in text and "study accuracy too few studies to tell (2 studies)" in text
    assert "study accuracy 1.0000" not in text  # 1.0 from 2 studies is no certainty
    plain = compute_metrics([0, 1], p[:2], ["a", "b"], ["x.png", "y.png"])
    assert plain.study == {} and "study" not in plain.to_text()


# ---------------------------------------------------------------------------- end to end (CLI)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A folder of generated NIfTI studies and a small_cnn run trained on its slices through the CLI."""
    from cnn_studio.cli import main
    from cnn_studio.synthetic.volumes import make_volume_dataset

    base = tmp_path_factory.mktemp("studies")
    data = make_volume_dataset(base / "mri", studies_per_class=16, patients=8, seed=1)
    run = base / "run"
    code = main(["train", str(data.root), "--backbone", "small_cnn", "--weights", "none", "--image-size", "32",
                 "--epochs", "20", "--learning-rate", "0.003", "--batch-size", "32",
                 "--val-fraction", "0.25", "--test-fraction", "0.25", "--seed", "1", "--out", str(run)])
    assert code in (0, 1)  # 1: finished with warnings (e.g. a slice-level "not better than guessing")
    return data, run



@pytest.mark.slow
def test_scan_says_studies_slices_patients(trained, capsys):
    from cnn_studio.cli import main

    data, _ = trained
    assert main(["scan", str(data.root), "--slices", "middle:6", "--no-duplicates"]) == 0
    assert "32 studies, 192 slices, 8 patients" in capsys.readouterr().out
    assert main(["scan", str(data.root), "--slices", "middle"]) == 2
    assert "middle:K" in capsys.readouterr().err


@pytest.mark.slow
def test_the_model_learns_the_lesion_at_study_level(trained, tmp_path, capsys):
    """A lesion in about half of a study's tissue slices: the study answer (mean of the slices) is clearly
    better than chance on held-out patients, and the slices that drove a lesion answer show the lesion."""
    from cnn_studio.cli import main
    from cnn_studio.data.index import scan
    from cnn_studio.data.records import parse_key
    from cnn_studio.synthetic.volumes import make_volume_dataset

    _, run = trained
    fresh = make_volume_dataset(tmp_path / "new", studies_per_class=10, patients=5, seed=7)  # unseen patients
    assert main(["evaluate", str(run), "--data", str(fresh.root), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    study = d["study"]
    assert set(study) == {"aggregate", "count", "accuracy", "balanced_accuracy", "per_class", "confusion", "studies",
                          "intervals", "chance"}
    assert study["intervals"]["accuracy"]["n"] == 20 and study["chance"]["n"] == 20
    held_out = scan(fresh.root).records
    assert study["count"] == 20 and d["n_images"] == len(held_out)
    # the numbers match a recomputation from the slice predictions
    slice_p = {p["path"]: p for p in d["predictions"]}
    assert set(slice_p) == {r.key for r in held_out}
    recomputed = study_metrics([r.key for r in held_out], [r.study for r in held_out], [r.label for r in held_out],
                               np.array([_probs(slice_p[r.key]) for r in held_out]), d["class_names"])
    assert recomputed["confusion"] == study["confusion"] and recomputed["accuracy"] == pytest.approx(study["accuracy"])
    # honest bar: 20 studies of 5 unseen patients; chance is 0.5 (14 of 20 or more by guessing: about 6 %).
    # Measured: study accuracy 0.85 (17 of 20), slice accuracy 0.70.
    print("held-out study figures:", study["accuracy"], study["balanced_accuracy"], study["confusion"], "slice accuracy", d["accuracy"])
    assert study["balanced_accuracy"] >= 0.7, study["confusion"]
    data = fresh
    lesion = {s.path: set(s.lesion_slices) for s in data.studies}
    hits = [parse_key(k)[2] in lesion[s["study"]] for s in study["studies"] if s["label"] == s["predicted"] == 1
            for k in s["top_slices"][:1]]
    assert hits and sum(hits) >= 0.8 * len(hits)


def _probs(pred: dict) -> list[float]:
    """Both class probabilities of a 2-class slice prediction."""
    c = pred["confidence"]
    return [c, 1 - c] if pred["pred"] == 0 else [1 - c, c]


@pytest.mark.slow
def test_predict_a_volume_and_a_dicom_series_per_study(trained, tmp_path, capsys):
    from cnn_studio.cli import main
    from cnn_studio.synthetic.volumes import StudyFormat, make_volume_dataset

    data, run = trained
    lesion = next(s for s in data.studies if s.label == "lesion")
    assert main(["predict", str(run), lesion.path, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["images"] == [] and len(out["studies"]) == 1
    st = out["studies"][0]
    assert st["study"] == lesion.path and st["slices"] >= 16 and st["aggregate"] == "mean"
    assert len(st["top_slices"]) == 3 and all(k.startswith(lesion.path + "#slice=2:") for k, _ in st["top_slices"])
    assert sum(st["probabilities"]) == pytest.approx(1.0)
    assert main(["predict", str(run), lesion.path, "--top-slices", "2", "--study-aggregate", "max"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(lesion.path + "\t") and "slices, max; drove it: slice " in line

    series = make_volume_dataset(tmp_path / "dcm", studies_per_class=1, patients=1, seed=9, form=StudyFormat(dicom=True))
    folders = [s.path for s in series.studies]
    assert main(["predict", str(run), str(series.root), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert sorted(s["study"] for s in out["studies"]) == sorted(folders) and out["images"] == []
    assert all(s["error"] is None and s["slices"] >= 16 and s["top_slices"][0][0].endswith(".dcm")
               for s in out["studies"])


@pytest.mark.slow
def test_model_card_says_how_a_volume_is_cut_windowed_and_answered(trained, tmp_path, capsys):
    from cnn_studio.cli import main

    _, run = trained
    assert main(["evaluate", str(run)]) == 0
    out = tmp_path / "export"
    assert main(["export", str(run), "--format", "keras", "--out", str(out)]) == 0
    capsys.readouterr()
    card = json.loads((out / "model_card.json").read_text(encoding="utf-8"))
    assert card["studies"]["slice_axis"] == 2 and card["studies"]["aggregate"] == "mean"
    assert card["studies"]["window_percentiles"] == [0.5, 99.5]
    assert card["metrics"]["study"]["count"] >= 2 and "studies" not in card["metrics"]["study"]
    text = (out / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert "## Studies (volumes)" in text and "window each slice over its WHOLE volume" in text
    assert f"Per study (mean of its slices' probabilities), on {card['metrics']['study']['count']} studies" in text
