"""Issue 8 defects: a DICOM with WindowWidth 0 gets a clear message; explain reduces a large picture while reading it."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from studio_testkit import DicomTags, write_dicom

from cnn_studio.core.errors import StudioError
from cnn_studio.data.decode import decode_file
from cnn_studio.explain.gradcam import explain_picture
from cnn_studio.predict.predictor import Classifier
from cnn_studio.runs.run_folder import load_model


def test_a_dicom_with_window_width_0_is_a_clear_error_not_a_pydicom_traceback(tmp_path):
    pixels = np.tile(np.arange(0, 64, dtype=np.uint16) * 10, (8, 1))
    path = write_dicom(tmp_path / "ww0.dcm", pixels, DicomTags(window=(200.0, 0.0)))
    with pytest.raises(StudioError) as info:
        decode_file(path)
    assert "WindowWidth is 0" in str(info.value) and "ww0.dcm" in str(info.value)


def test_explain_decodes_a_large_picture_reduced_to_about_the_model_size(tmp_path, trained_run):
    path = tmp_path / "big.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (1024, 1024, 3), np.uint8)).save(path)
    original, model_input, _cam, heat = explain_picture(Classifier(load_model(trained_run), (), 32), path)
    assert model_input.shape == (32, 32, 3)
    assert 64 <= original.shape[0] < 1024 and original.shape[:2] == heat.shape  # reduced while read
