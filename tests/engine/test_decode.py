"""decode.probe / decode_file on every supported format, generated in tmp_path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from studio_testkit import DicomTags, write_dicom

from cnn_studio.core.errors import ImageReadError
from cnn_studio.data import formats
from cnn_studio.data.decode import ProbeResult, decode_file, percentile_window, probe


def _gradient16(h: int = 20, w: int = 30) -> np.ndarray:
    return (np.arange(h * w, dtype=np.float64).reshape(h, w) * 100 + 1000).astype(np.uint16)


def _reason(path: Path, fn=decode_file) -> str:
    with pytest.raises(ImageReadError) as info:
        fn(path)
    assert str(path) in info.value.message and info.value.hint
    return info.value.reason


def test_suffix_table():
    assert formats.is_image_suffix("a/B.JPG") and formats.is_image_suffix("v/brain.nii.gz")
    assert not formats.is_image_suffix("notes.txt")
    assert formats.reader_for("x.tif") == "pillow" and formats.reader_for("x.dcm") == "pydicom"
    assert formats.reader_for("x.nii.gz") == "nibabel"


def test_jpeg_exif_orientation_is_applied(tmp_path):
    arr = np.zeros((20, 40, 3), np.uint8)
    arr[:, :20] = 255  # left half white, 40 wide x 20 high as stored
    img = Image.fromarray(arr)
    exif = img.getexif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    path = tmp_path / "photo.jpg"
    img.save(path, exif=exif, quality=95)
    p = probe(path)
    assert (p.width, p.height, p.fmt) == (40, 20, "JPEG")
    out = decode_file(path)
    assert out.shape == (40, 20, 3) and out.dtype == np.uint8
    assert out[:15].mean() > 200 and out[-15:].mean() < 50  # stored-left half is now on top


@pytest.mark.parametrize("mode", ["RGB", "L", "P"])
def test_png_8bit_modes_give_rgb(tmp_path, mode):
    img = Image.fromarray(np.full((8, 10, 3), (200, 30, 30), np.uint8)).convert(mode)
    path = tmp_path / f"img_{mode}.png"
    img.save(path)
    assert probe(path) == ProbeResult(10, 8, mode, "PNG", 1, None)
    out = decode_file(path)
    assert out.shape == (8, 10, 3)
    if mode == "L":
        assert (out[..., 0] == out[..., 1]).all()


def test_rgba_composited_on_white(tmp_path):
    arr = np.zeros((4, 4, 4), np.uint8)
    arr[0, 0] = (255, 0, 0, 255)  # opaque red, rest fully transparent black
    path = tmp_path / "alpha.png"
    Image.fromarray(arr, "RGBA").save(path)
    out = decode_file(path)
    assert tuple(out[0, 0]) == (255, 0, 0) and tuple(out[3, 3]) == (255, 255, 255)


def test_cmyk_jpeg_and_la_png(tmp_path):
    cmyk = tmp_path / "print.jpg"
    Image.new("CMYK", (6, 4), (0, 255, 255, 0)).save(cmyk)  # pure red in CMYK
    assert probe(cmyk).mode == "CMYK"
    red = decode_file(cmyk)
    assert red.shape == (4, 6, 3) and red[0, 0, 0] > 200 and red[0, 0, 1] < 60
    la = tmp_path / "la.png"
    Image.new("LA", (3, 3), (0, 0)).save(la)  # black but fully transparent → white
    assert (decode_file(la) == 255).all()


def test_png_16bit_is_windowed_not_truncated(tmp_path):
    arr = _gradient16()
    path = tmp_path / "deep.png"
    Image.fromarray(arr).save(path)
    assert probe(path).mode.startswith("I")
    out = decode_file(path)
    assert out.shape == (20, 30, 3) and out.min() == 0 and out.max() == 255
    assert np.all(np.diff(out[..., 0].ravel().astype(int)) >= 0)  # monotone like the source


@pytest.mark.parametrize("suffix", ["bmp", "gif", "webp"])
def test_other_pillow_formats(tmp_path, suffix):
    path = tmp_path / f"x.{suffix}"
    Image.fromarray(np.full((6, 9, 3), 120, np.uint8)).save(path)
    assert (probe(path).width, probe(path).height) == (9, 6)
    assert decode_file(path).shape == (6, 9, 3)


def test_gif_uses_first_frame(tmp_path):
    frames = [Image.new("L", (5, 5), v).convert("P") for v in (0, 255)]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    assert decode_file(path).max() < 10


def test_tiff_variants(tmp_path):
    import tifffile

    tifffile.imwrite(tmp_path / "u8.tif", np.full((7, 5), 99, np.uint8))
    tifffile.imwrite(tmp_path / "u16.tif", _gradient16())
    tifffile.imwrite(tmp_path / "rgb16.tif", np.stack([_gradient16()] * 3, -1), photometric="rgb")
    tifffile.imwrite(tmp_path / "f32.tiff", np.linspace(-1, 1, 600, dtype=np.float32).reshape(20, 30))
    stack = np.stack([np.zeros((4, 6), np.uint16), np.full((4, 6), 60000, np.uint16)])
    stack[0, 0, 0] = 1000
    tifffile.imwrite(tmp_path / "pages.tif", stack)

    assert decode_file(tmp_path / "u8.tif")[0, 0, 0] == 99
    for name in ("u16.tif", "rgb16.tif", "f32.tiff"):
        out = decode_file(tmp_path / name)
        assert out.shape == (20, 30, 3) and out.min() == 0 and out.max() == 255, name
    assert probe(tmp_path / "rgb16.tif").width == 30
    assert probe(tmp_path / "pages.tif").frames == 2
    first = decode_file(tmp_path / "pages.tif")
    assert first.shape == (4, 6, 3) and first[0, 0, 0] == 255 and first[1, 1, 0] == 0  # page 0


def test_dicom_rescale_window_and_patient(tmp_path):
    pixels = np.tile(np.arange(0, 64, dtype=np.uint16) * 10, (8, 1))
    plain = write_dicom(tmp_path / "plain.dcm", pixels, DicomTags(patient="PAT-7"))
    p = probe(plain)
    assert (p.width, p.height, p.fmt, p.group) == (64, 8, "DICOM", "PAT-7")
    out = decode_file(plain)
    assert out.shape == (8, 64, 3) and out[0, 0, 0] == 0 and out[0, -1, 0] == 255

    # slope 2, intercept -100 → values -100..1160; a window centred at 200, width 200 shows 100..300
    win = write_dicom(tmp_path / "win.dcm", pixels, DicomTags(rescale=(2.0, -100.0), window=(200.0, 200.0)))
    out = decode_file(win)[0, :, 0].astype(int)
    hu = pixels[0].astype(float) * 2 - 100
    assert (out[hu <= 100] == 0).all() and (out[hu > 300] == 255).all()
    mid = (hu > 120) & (hu < 280)
    assert mid.any() and ((out[mid] > 0) & (out[mid] < 255)).all()


def test_dicom_monochrome1_inverted_and_multiframe_middle(tmp_path):
    pixels = np.tile(np.arange(0, 64, dtype=np.uint16) * 10, (8, 1))
    m1 = write_dicom(tmp_path / "m1.dcm", pixels, DicomTags(photometric="MONOCHROME1"))
    out = decode_file(m1)
    assert out[0, 0, 0] == 255 and out[0, -1, 0] == 0

    stack = np.stack([np.zeros((4, 4)), np.full((4, 4), 500), np.zeros((4, 4))]).astype(np.uint16)
    stack[1, 0, 0] = 0
    multi = write_dicom(tmp_path / "multi", stack)  # no suffix: found by DICM magic
    assert formats.reader_for(multi) == "pydicom"
    assert probe(multi).frames == 3
    out = decode_file(multi)
    assert out[0, 0, 0] == 0 and out[2, 2, 0] == 255  # middle frame, not frame 0 (all zero)


def test_nifti_middle_slice(tmp_path):
    import nibabel

    vol = np.zeros((6, 5, 3), np.float32)
    vol[:, :, 1] = np.arange(30, dtype=np.float32).reshape(6, 5)
    path = tmp_path / "brain.nii.gz"
    nibabel.save(nibabel.Nifti1Image(vol, np.eye(4)), path)
    p = probe(path)
    assert (p.width, p.height, p.frames, p.fmt) == (6, 5, 3, "NIfTI")
    out = decode_file(path)
    assert out.shape == (5, 6, 3) and out.max() == 255 and out.min() == 0


def test_broken_files_have_reasons(tmp_path):
    (tmp_path / "zero.png").write_bytes(b"")
    (tmp_path / "text.jpg").write_text("this is a note, not a photo")
    (tmp_path / "notes.txt").write_text("x")
    good = tmp_path / "good.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(good)
    data = good.read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    png = tmp_path / "good.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(png)
    (tmp_path / "cut.png").write_bytes(png.read_bytes()[:300])
    (tmp_path / "cut_early.jpg").write_bytes(data[:300])  # cut inside the header tables
    (tmp_path / "fake.dcm").write_text("not dicom")

    assert _reason(tmp_path / "zero.png") == "empty"
    assert _reason(tmp_path / "zero.png", probe) == "empty"
    assert _reason(tmp_path / "text.jpg", probe) == "not_an_image"
    assert _reason(tmp_path / "text.jpg") == "not_an_image"
    assert _reason(tmp_path / "notes.txt", probe) == "not_an_image"
    assert _reason(tmp_path / "cut.jpg", probe) == "truncated"
    assert _reason(tmp_path / "cut.jpg") == "truncated"
    assert _reason(tmp_path / "cut.png", probe) == "truncated"
    assert _reason(tmp_path / "cut.png") == "truncated"
    assert _reason(tmp_path / "cut_early.jpg", probe) == "truncated"
    assert _reason(tmp_path / "fake.dcm", probe) == "not_an_image"
    assert _reason(tmp_path / "missing.png", probe) == "unreadable"


def test_data_after_jpeg_end_is_not_truncation(tmp_path):
    path = tmp_path / "motion.jpg"
    Image.fromarray(np.full((16, 16, 3), 90, np.uint8)).save(path)
    path.write_bytes(path.read_bytes() + b"\x00ftypmp42" + bytes(4096))  # e.g. a phone's appended video
    assert probe(path).fmt == "JPEG"
    assert decode_file(path).shape == (16, 16, 3)


def test_bomb_guard(tmp_path):
    path = tmp_path / "big.png"
    Image.new("L", (200, 100)).save(path)
    with pytest.raises(ImageReadError) as info:
        probe(path, max_pixels=10_000)
    assert info.value.reason == "too_large"
    with pytest.raises(ImageReadError) as info:
        decode_file(path, max_pixels=10_000)
    assert info.value.reason == "too_large"
    assert decode_file(path, max_pixels=20_000).shape == (100, 200, 3)


def test_percentile_window_edge_cases():
    assert (percentile_window(np.full((3, 3), 7.0)) == 0).all()
    a = np.array([[np.nan, 0.0], [1.0, np.inf]])
    w = percentile_window(a)
    assert w[0, 0] == 0 and w[1, 0] == 255 and w[1, 1] == 0
