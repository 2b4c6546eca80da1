"""data.checks: too few images to train and to validate, a tiny validation part, and classes told apart by size or mode."""

from __future__ import annotations

from cnn_studio.data.checks import has_errors, run_checks
from cnn_studio.data.index import scan
from cnn_studio.data.split import make_split


def _codes(findings):
    return {f.code: f for f in findings}


def test_eight_images_a_class_is_not_no_problems(image_folder):
    index = scan(image_folder(classes=("NORMAL", "PNEUMONIA"), per_class=8))
    findings = run_checks(index, make_split(index))
    codes = _codes(findings)
    assert not has_errors(findings)  # warnings: training may still start
    assert "'NORMAL' has 6" in codes["few_to_train"].message and "about 20" in codes["few_to_train"].message
    assert "'PNEUMONIA' has 2" in codes["few_to_validate"].message and "at least 10" in codes["few_to_validate"].message
    assert "only 4 image(s)" in codes["tiny_validation"].message and "30 or more" in codes["tiny_validation"].message
    assert "few_to_train" in _codes(run_checks(index))  # without a split: 8 < 20 + 10


def test_size_and_mode_per_class_is_a_shortcut_warning(tmp_path, image_folder):
    from studio_testkit import make_class_image

    root = image_folder(classes=("NORMAL",), per_class=12, size=32)
    (root / "PNEUMONIA").mkdir()
    for i in range(12):  # another scanner: bigger and greyscale
        make_class_image(1, 48, seed=i, mode="L").save(root / "PNEUMONIA" / f"p{i}.png")
    codes = _codes(run_checks(scan(root)))
    assert "48x48" in codes["class_size_differs"].message and "'PNEUMONIA'" in codes["class_size_differs"].message
    assert "pixel mode L" in codes["class_mode_differs"].message
    assert len(codes["class_size_differs"].paths) == 5


def test_mixed_sizes_in_every_class_are_not_a_shortcut(tmp_path):
    from studio_testkit import make_class_image

    for label, name in enumerate(("a", "b")):
        (tmp_path / name).mkdir()
        for i in range(10):
            make_class_image(label, (32, 48)[i % 2], seed=i).save(tmp_path / name / f"{i}.png")
    assert not {"class_size_differs", "class_mode_differs"} & set(_codes(run_checks(scan(tmp_path))))
