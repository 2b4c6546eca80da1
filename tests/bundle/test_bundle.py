"""The desktop bundle, unpacked in a clean folder with nothing but the bundle on PATH (no Python), driven
headless: doctor, sample, train the Small CNN, evaluate, export (TFLite, ONNX), DICOM/NIfTI/TIFF, and the
window on a virtual screen with a training started from it.

Runs only with CNN_STUDIO_BUNDLE_TEST set (see conftest.py): ``build`` builds with tools/build_bundle.py
(10-20 minutes), a path reuses an archive (``dist/cnn-studio-*.tar.xz``) or an unpacked bundle folder.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from frozen_app import VirtualScreen, build_archive, clean_env, start_until_window, stop, unpack, window_ids

pytestmark = [pytest.mark.bundle, pytest.mark.slow]

TRAIN = ["--backbone", "small_cnn", "--weights", "none", "--image-size", "32", "--epochs", "1",
         "--batch-size", "16"]


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """(bundle folder, clean environment, a working folder) for the whole module."""
    wanted = os.environ.get("CNN_STUDIO_BUNDLE_TEST", "")
    source = build_archive() if wanted in ("1", "build") else Path(wanted).resolve()
    root = tmp_path_factory.mktemp("clean")
    bundle = unpack(source, root / "app")
    env = clean_env(bundle, root / "home")
    assert shutil.which("python3", path=env["PATH"]) is None and shutil.which("python", path=env["PATH"]) is None
    work = root / "work"
    work.mkdir()
    return bundle, env, work


def studio(app, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    bundle, env, work = app
    proc = subprocess.run(["cnn-studio", *args], env=env, cwd=work, capture_output=True, text=True,
                          timeout=timeout, check=False, executable=str(bundle / "cnn-studio"))
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    return proc


def test_doctor_runs_frozen(app):
    proc = studio(app, "doctor", "--json")
    report = json.loads(proc.stdout)
    names = {c["name"]: c for c in report["checks"]}
    assert names["GPU support"]["status"] == "info" and "CUDA" in names["GPU support"]["detail"]
    assert report["facts"]["versions"]["tensorflow"] and report["facts"]["versions"]["keras"]
    assert "TensorFlow" not in names  # TensorFlow imports in the frozen app
    assert report["facts"]["device"]
    problems = [c for c in report["checks"] if c["status"] == "problem"]
    assert problems == [], problems


def test_sample_train_evaluate_export(app):
    _, _, work = app
    sample = studio(app, "sample")
    assert sample.returncode == 0, sample.stderr
    digits = Path(sample.stdout.strip().splitlines()[-1])
    assert sorted(p.name for p in digits.iterdir() if p.is_dir()) == ["one", "seven", "two", "zero"]
    run = work / "run-digits"
    trained = studio(app, "train", str(digits), *TRAIN, "--out", str(run))
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert (run / "best.keras").is_file()
    with (run / "history.csv").open() as f:
        assert len(list(csv.DictReader(f))) >= 1
    evaluated = studio(app, "evaluate", str(run), "--json")
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    assert 0.0 <= json.loads(evaluated.stdout)["accuracy"] <= 1.0
    out = work / "exports"
    exported = studio(app, "export", str(run), "--format", "tflite", "--format", "onnx", "--out", str(out), "--json")
    assert exported.returncode == 0, exported.stderr[-3000:]
    assert list(out.glob("*.tflite")) and list(out.glob("*.onnx"))


def _medical_folder(root: Path) -> Path:
    """Two classes, each with DICOM, NIfTI and TIFF pictures (written by the test machine's libraries)."""
    import nibabel as nib
    import tifffile
    from studio_testkit import DicomTags, write_dicom

    rng = np.random.default_rng(0)
    for label, level in (("bright", 3000), ("dark", 300)):
        folder = root / label
        folder.mkdir(parents=True)
        for i in range(6):
            pixels = (rng.random((32, 32)) * 200 + level).astype(np.uint16)
            write_dicom(folder / f"d{i}.dcm", pixels, DicomTags(patient=f"{label}{i}"))
            nib.save(nib.Nifti1Image(pixels[:, :, None].astype(np.float32), np.eye(4)), str(folder / f"n{i}.nii.gz"))
            tifffile.imwrite(folder / f"t{i}.tif", pixels)
    return root


def test_dicom_nifti_and_tiff_are_read_frozen(app):
    _, _, work = app
    data = _medical_folder(work / "medical")
    scanned = studio(app, "scan", str(data))
    assert scanned.returncode == 0, scanned.stderr[-3000:]
    for fmt in ("DICOM", "NIfTI", "TIFF"):
        assert fmt in scanned.stdout, scanned.stdout
    run = work / "run-medical"
    trained = studio(app, "train", str(data), *TRAIN, "--out", str(run))
    assert trained.returncode == 0, trained.stderr[-3000:]
    predicted = studio(app, "predict", str(run), str(data / "bright" / "d0.dcm"), str(data / "dark" / "n0.nii.gz"),
                       str(data / "bright" / "t0.tif"), "--json")
    assert predicted.returncode == 0, predicted.stderr[-3000:]
    answers = json.loads(predicted.stdout)  # the NIfTI file is a study (its slices), the others images
    assert [s["error"] for s in answers["studies"]] == [None] and [i["error"] for i in answers["images"]] == [None, None]
    assert sorted(Path(i["path"]).suffix for i in answers["images"]) == [".dcm", ".tif"]


def test_window_opens_and_trains_from_it(app):
    bundle, env, work = app
    screen = VirtualScreen()
    try:
        genv = dict(env, DISPLAY=screen.display)
        proc, seconds = start_until_window([str(bundle / "cnn-studio")], genv, work, screen.display,
                                           work / "gui.log")
        try:
            time.sleep(2)  # the sample dataset is checked after the window shows
            screen.key(window_ids(screen.display)[-1], "ctrl+Return")  # Start training (Train step)
            history = _wait_for_epoch(Path(env["CNN_STUDIO_HOME"]) / "runs", timeout_s=600)
            screen.screenshot(work / "gui-training.png")
            assert history is not None, (work / "gui.log").read_text()[-3000:]
        finally:
            stop(proc)
    finally:
        screen.close()


def _wait_for_epoch(runs: Path, timeout_s: float) -> Path | None:
    """The first run's history.csv once it holds an epoch (training in the frozen child worked)."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        for history in runs.glob("**/history.csv"):
            with history.open() as f:
                if list(csv.DictReader(f)):
                    return history
        time.sleep(1)
    return None
