"""Helpers shared by tests (importable by name; never import ``conftest`` — two conftests share that name)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


def make_class_image(label: int, size: int = 32, seed: int = 0, mode: str = "RGB"):
    """An easy-to-learn image: class 0 has a bright square top-left, class 1 bottom-right, etc.

    Background noise differs per ``seed`` so no two images are byte-identical.
    """
    from PIL import Image

    rng = np.random.default_rng(seed * 1009 + label)
    arr = rng.integers(0, 60, size=(size, size, 3), dtype=np.uint8)
    q = size // 2
    corners = [(0, 0), (q, q), (0, q), (q, 0)]
    y, x = corners[label % 4]
    arr[y : y + q, x : x + q] = 230
    img = Image.fromarray(arr, "RGB")
    return img.convert(mode) if mode != "RGB" else img


def drop_files(widget, paths):
    """Deliver a real drop event carrying ``paths`` as file URLs to ``widget``; returns the event."""
    from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
    from PySide6.QtGui import QDropEvent

    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    widget.dropEvent(event)
    return event


def tiny_run(tmp_path_factory):
    """A real run folder: small_cnn trained 2 epochs on 2 × 10 generated images.

    Built once per test session (kept under the session's base temp folder) and shared by the
    Evaluate, Classify, Inspect and Export page tests.
    """
    from cnn_studio.data.index import scan
    from cnn_studio.data.split import make_split
    from cnn_studio.training.config import TrainConfig
    from cnn_studio.training.trainer import train

    base = tmp_path_factory.getbasetemp() / "ui_b_tiny"
    run = base / "run"
    if (run / "labels.txt").exists() and any(run.glob("*.keras")):
        return run
    root = base / "data"
    for label, name in enumerate(("cat", "dog")):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(10):
            make_class_image(label, 32, seed=i).save(root / name / f"{name}_{i}.png")
    split = make_split(scan(root), val_fraction=0.3, seed=0)
    cfg = TrainConfig(backbone="small_cnn", weights="none", image_size=32, batch_size=8, epochs=2,
                      learning_rate=3e-3, seed=0)
    train(cfg, split, run)
    return run


def select_backbone(page, key: str) -> None:
    """Make ``key`` the Model step's current backbone, as a click in its list does."""
    from PySide6.QtCore import QItemSelectionModel

    row = page.backbone_model.row_of(key)
    page.backbone_view.selectionModel().setCurrentIndex(page.backbone_model.index(row),
                                                       QItemSelectionModel.SelectionFlag.ClearAndSelect)


def open_dataset(qtbot, page, path) -> bool:
    """Open ``path`` on the Data step ``page`` and wait for the check and the thumbnails; the check's verdict."""
    with qtbot.waitSignal(page.check_finished, timeout=30000) as blocker:
        page.open_dataset(path)
    qtbot.waitUntil(lambda: page._task is None and page._thumb_task is None, timeout=30000)
    return blocker.args[0]


def export_keras_verified(qtbot, window, folder, steps) -> None:
    """Go to the Export step of ``window``, export .keras only into ``folder`` and assert it was verified."""
    xp = window.export_page
    assert window.go_to(steps.index("Export"))
    for key, box in xp.checks.items():
        box.setChecked(key == "keras")
    xp.folder.setText(str(folder))
    xp.export()
    qtbot.waitUntil(lambda: xp.table.rowCount() == 1 and xp.export_button.isEnabled(), timeout=120000)
    assert xp.table.item(0, 2).text().startswith("✓"), xp.table.item(0, 2).text()


def click_backbone(qtbot, page, key: str) -> None:
    """Click ``key`` in the Model step's backbone list (scrolled into view first), as a user does."""
    from PySide6.QtCore import Qt

    index = page.backbone_model.index(page.backbone_model.row_of(key))
    page.backbone_view.scrollTo(index)
    qtbot.mouseClick(page.backbone_view.viewport(), Qt.MouseButton.LeftButton,
                     pos=page.backbone_view.visualRect(index).center())


def planted_issues(root, seed: int = 0):
    """A :class:`~cnn_studio.labels.issues.LabelIssues` of three suspects over real cat/dog PNGs written
    under ``root`` (4 per class), each suspect with neighbours from both classes."""
    from cnn_studio.labels.issues import LabelIssues, Suspect

    classes = ("cat", "dog")
    paths = {}
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(4):
            p = root / name / f"{name}_{i}.png"
            make_class_image(c, 32, seed=seed + i).save(p)
            paths[(name, i)] = str(p)
    nb = {n: tuple(paths[(n, i)] for i in (1, 2, 3)) for n in classes}
    suspects = (Suspect(paths[("cat", 0)], "cat", "dog", 0.9, 0.05, 0.95, "train", nb),
                Suspect(paths[("dog", 0)], "dog", "cat", 0.6, 0.2, 0.8, "val", nb),
                Suspect(paths[("cat", 1)], "cat", "dog", 0.3, 0.35, 0.65, "train", nb))
    return LabelIssues(root=str(root), class_names=classes, backbone="small_cnn", method="fold_models", folds=4,
                       paths=tuple(paths.values()), labels=np.array([0] * 4 + [1] * 4),
                       probabilities=np.full((8, 2), 0.5), thresholds=(0.7, 0.7), suspects=suspects, duplicates=())


@dataclass(frozen=True)
class DicomTags:
    """What :func:`write_dicom` puts beside the pixels.

    ``patient``: the PatientID (None: no PatientID tag, so a scan groups nothing by it); ``rescale``:
    (RescaleSlope, RescaleIntercept); ``window``: (WindowCenter, WindowWidth); ``bits_stored``: of the 16
    allocated (HighBit one less).
    """

    photometric: str = "MONOCHROME2"
    patient: str | None = "P1"
    rescale: tuple[float, float] | None = None
    window: tuple[float, float] | None = None
    bits_stored: int = 16


def write_dicom(path: Path, pixels: np.ndarray, tags: DicomTags = DicomTags()) -> Path:
    """A minimal valid 16-bit DICOM file (explicit VR little endian) written with pydicom's own writer.

    ``pixels``: ``[rows, columns]``, or ``[frames, rows, columns]`` for a multi-frame file.
    """
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    if tags.patient is not None:
        ds.PatientID = tags.patient
    ds.Modality = "OT"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = tags.photometric
    frames = pixels.shape[0] if pixels.ndim == 3 else 1
    if frames > 1:
        ds.NumberOfFrames = frames
    ds.Rows, ds.Columns = pixels.shape[-2:]
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, tags.bits_stored, tags.bits_stored - 1, 0
    if tags.rescale is not None:
        ds.RescaleSlope, ds.RescaleIntercept = tags.rescale
    if tags.window is not None:
        ds.WindowCenter, ds.WindowWidth = tags.window
    ds.PixelData = pixels.astype("<u2").tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path
