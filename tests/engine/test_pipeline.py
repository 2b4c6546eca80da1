"""The tf.data pipeline: shapes, scaling, resize policies, skipped files, caching, augmentation."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from studio_testkit import DicomTags, make_class_image, write_dicom

from cnn_studio.data.index import scan
from cnn_studio.data.pipeline import (
    DatasetOptions,
    SkipLog,
    load_image,
    load_images,
    make_dataset,
    make_datasets,
)
from cnn_studio.data.pipeline_decode import needs_python_reader
from cnn_studio.data.records import ImageRecord
from cnn_studio.data.split import make_split

NO_PATIENT = DicomTags(patient=None)  # a plain picture: no PatientID to group by


def _record(path, label=0):
    from cnn_studio.data.decode import probe

    p = probe(path)
    return ImageRecord(path=str(path), label=label, width=p.width, height=p.height, mode=p.mode, fmt=p.fmt)


def _all(ds):
    xs, ys = [], []
    for x, y in ds:
        xs.append(x.numpy())
        ys.append(y.numpy())
    return np.concatenate(xs), np.concatenate(ys)


def test_batches_are_float_raw_pixels_with_labels(image_folder):
    root = image_folder(per_class=6, size=40)
    split = make_split(scan(root), val_fraction=0.34, seed=0)
    ds = make_datasets(split, 32, 4)
    x, y = _all(ds.train)
    assert x.shape == (ds.train_count, 32, 32, 3) and x.dtype == np.float32
    assert 0 <= x.min() and x.max() <= 255 and x.max() > 200, "raw 0-255 pixels, not preprocessed"
    assert sorted(y.tolist()) == sorted(r.label for r in split.train)
    xv, yv = _all(ds.val)
    assert xv.shape[0] == ds.val_count and ds.steps_per_epoch == -(-ds.train_count // 4)


def test_training_datasets_run_without_tf_data_autotuning(image_folder):
    """Autotuning's thread made epochs stall ~2 s at each iterator's end on 2 cores (pipeline.without_autotune):
    the image datasets and the cached features' datasets are built without it, and still give every image."""
    from cnn_studio.training.feature_cache import feature_datasets

    split = make_split(scan(image_folder(per_class=6, size=40)), val_fraction=0.34, seed=0)
    ds = make_datasets(split, 32, 4)
    for part in (ds.train, ds.val, ds.train.map(lambda x, y: (x, y))):  # and what is built on them
        assert part.options().autotune.enabled is False
    xy = (np.zeros((10, 4), np.float32), np.arange(10) % 2)
    for part in feature_datasets(xy, xy, 4, seed=0):
        assert part.options().autotune.enabled is False
        assert sum(int(y.shape[0]) for _, y in part) == 10
    assert _all(ds.train)[0].shape[0] == ds.train_count


def test_pure_red_stays_red(tmp_path):
    p = tmp_path / "red.png"
    Image.new("RGB", (20, 10), (255, 0, 0)).save(p)
    x, _ = _all(make_dataset([_record(p)], 16, 1))
    assert np.allclose(x[0, 8, 8], [255, 0, 0], atol=1)
    assert np.allclose(load_image(p, 16), x[0], atol=1)


def test_options_come_whole_or_field_by_field_and_a_keyword_overrides_its_field(tmp_path):
    p = tmp_path / "red.png"
    Image.new("RGB", (20, 10), (255, 0, 0)).save(p)
    options = DatasetOptions(dtype="uint8", cache="none")
    (x, y, keys), = list(make_dataset([_record(p)], 16, 1, options, with_keys=True))
    assert x.dtype == np.uint8 and y.numpy().tolist() == [0] and keys.numpy().tolist() == [str(p).encode()]
    (x, _y), = list(make_dataset([_record(p)], 16, 1, options, dtype="float32"))  # the keyword wins
    assert x.dtype == np.float32 and options.dtype == "uint8"  # the caller's options are not changed
    with pytest.raises(TypeError):
        make_dataset([_record(p)], 16, 1, options, shufle=True)  # not an option: never ignored


def test_resize_policies(tmp_path):
    p = tmp_path / "wide.png"
    arr = np.full((10, 40, 3), 200, np.uint8)
    arr[:, 15:25] = 50  # dark centre stripe
    Image.fromarray(arr).save(p)
    pad = load_image(p, 40, "pad")
    assert pad[0].max() == 0 and pad[20, 0].min() > 150, "pad keeps aspect: black bars top and bottom"
    crop = load_image(p, 40, "crop")
    assert crop[:, :].mean() < 120, "crop keeps the dark centre"
    stretch = load_image(p, 40, "stretch")
    assert stretch[0].min() > 40 and stretch.shape == (40, 40, 3)


def test_truncated_file_is_skipped_and_counted_and_epoch_completes(image_folder):
    root = image_folder(per_class=5)
    index = scan(root)
    victim = index.records[2].path
    data = open(victim, "rb").read()
    open(victim, "wb").write(data[: len(data) // 2])
    skips = SkipLog()
    ds = make_dataset(index.records, 32, 4, skips=skips)
    for _ in range(2):  # the second (cached) epoch has the same size
        x, _ = _all(ds)
        assert x.shape[0] == len(index.records) - 1
    assert skips.paths == [victim]


def test_python_path_for_16_bit_and_dicom_like_inputs(tmp_path):
    import tifffile

    p = tmp_path / "scan16.tif"
    ramp = np.tile(np.linspace(1000, 3000, 32, dtype=np.uint16), (32, 1))
    tifffile.imwrite(p, ramp)
    rec = _record(p)
    assert needs_python_reader(rec)
    x, _ = _all(make_dataset([rec], 32, 1))
    assert x.min() <= 5 and x.max() >= 250, "16-bit range scaled to 0-255, not truncated"
    assert np.all(np.diff(x[0, 0, :, 0]) >= -1), "ordering preserved"


def test_rotated_jpeg_goes_through_python_and_is_upright(tmp_path):
    p = tmp_path / "rot.jpg"
    arr = np.zeros((20, 40, 3), np.uint8)
    arr[:, :20] = 255  # left half white
    img = Image.fromarray(arr)
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90 CW for display
    img.save(p, exif=exif, quality=95)
    rec = _record(p)
    assert needs_python_reader(rec)
    x = load_image(p, 40)
    assert x[:10].mean() > 200 and x[30:].mean() < 60, "after EXIF rotation the white half is on top"


def test_disk_cache_and_shuffle_reproducible(image_folder, tmp_path):
    index = scan(image_folder(per_class=6))
    cache = tmp_path / "cache"
    a = make_dataset(index.records, 32, 3, shuffle=True, seed=7, cache="disk", cache_dir=cache)
    b = make_dataset(index.records, 32, 3, shuffle=True, seed=7, cache="none")
    ya = np.concatenate([y.numpy() for _, y in a])
    yb = np.concatenate([y.numpy() for _, y in b])
    assert ya.tolist() == yb.tolist()
    assert any(cache.iterdir()), "disk cache written"


def test_augmentation_changes_train_but_not_val(image_folder):
    split = make_split(scan(image_folder(per_class=6)), val_fraction=0.34, seed=0)
    plain = make_datasets(split, 32, 64, seed=1)
    aug = make_datasets(split, 32, 64, augment=("rotate", "brightness"), seed=1)
    xp, _ = _all(plain.val)
    xa, _ = _all(aug.val)
    assert np.array_equal(xp, xa)
    tp = np.sort(_all(plain.train)[0].reshape(len(split.train), -1).sum(1))
    ta = np.sort(_all(aug.train)[0].reshape(len(split.train), -1).sum(1))
    assert not np.allclose(tp, ta)
    assert _all(aug.train)[0].max() <= 255.0


def test_unknown_resize_policy_is_a_clear_error(image_folder):
    from cnn_studio.core.errors import ConfigError

    with pytest.raises(ConfigError, match="stretch"):
        make_dataset(scan(image_folder(per_class=3)).records, 32, 2, resize="squash")


def test_dicom_and_png_mixed_keep_their_labels(tmp_path):
    ramp = np.tile(np.linspace(0, 4000, 24), (24, 1)).astype(np.uint16)
    dcm = write_dicom(tmp_path / "scan.dcm", ramp, NO_PATIENT)
    png = tmp_path / "red.png"
    Image.new("RGB", (24, 24), (255, 0, 0)).save(png)
    recs = [_record(dcm, label=1), _record(png, label=0)]
    assert needs_python_reader(recs[0]) and not needs_python_reader(recs[1])
    x, y = _all(make_dataset(recs, 24, 2))
    by_label = dict(zip(y.tolist(), x, strict=True))
    d = by_label[1]
    assert d[..., 0].min() <= 5 and d[..., 0].max() >= 250, "12-bit DICOM scaled to 0-255"
    assert np.array_equal(d[..., 0], d[..., 2]), "grey → RGB"
    assert np.allclose(by_label[0][5, 5], [255, 0, 0], atol=1)
    both = load_images([dcm, png], 24)
    assert both.shape == (2, 24, 24, 3) and both.dtype == np.float32
    assert np.allclose(both[0], d, atol=1)


def test_batch_count_is_stable_across_epochs_and_drop_remainder(image_folder):
    records = scan(image_folder(per_class=5)).records
    ds = make_dataset(records, 32, 4, shuffle=True, seed=3)
    assert [len(list(ds)) for _ in range(2)] == [3, 3]
    dropped = make_dataset(records, 32, 4, drop_remainder=True)
    assert all(x.shape[0] == 4 for x, _ in dropped) and len(list(dropped)) == 2


def test_disk_cache_survives_a_killed_run_and_is_keyed_by_records(image_folder, tmp_path):
    import os

    records = scan(image_folder(per_class=4)).records
    cache = tmp_path / "cache"
    list(make_dataset(records, 32, 4, cache="disk", cache_dir=cache))
    done = sorted(cache.iterdir())
    assert done, "a complete pass writes the cache"
    prefix = done[0].name.split(".")[0]
    for p in done:
        p.unlink()
    # what a process killed during its first epoch leaves behind (older than this process)
    for p in (cache / f"{prefix}_0.lockfile", cache / f"{prefix}_0.data-00000-of-00001.tempstate1"):
        p.write_text("Created at: 1")
        os.utime(p, (1, 1))
    again = make_dataset(records, 32, 4, cache="disk", cache_dir=cache)
    assert sum(int(x.shape[0]) for x, _ in again) == len(records), "a stale lock file must not block the run"
    assert not list(cache.glob("*.lockfile")) and not list(cache.glob("*tempstate*"))
    list(make_dataset(records[:-1], 32, 4, cache="disk", cache_dir=cache))
    assert len({p.name.split(".")[0] for p in cache.iterdir()}) == 2, "other records, other cache file"


def test_batches_stay_full_across_cache_blocks_and_decoder_kinds(tmp_path):
    """Images are cached in blocks of CACHE_BATCH; batches of another size, mixed decoders and a
    corrupt file in the middle must still give full batches (all but the last) and every good image once."""
    from cnn_studio.data.pipeline import CACHE_BATCH, SkipLog

    recs = []
    for i in range(CACHE_BATCH + 7):  # TF-decoded PNGs, more than one block
        p = tmp_path / f"png_{i:03d}.png"
        make_class_image(i % 2, 16, seed=i).save(p)
        recs.append(_record(p, label=i % 2))
    for i in range(5):  # 16-bit PNGs go through the Python readers
        p = tmp_path / f"deep_{i}.png"
        Image.fromarray(np.full((16, 16), 1000 * (i + 1), np.uint16)).save(p)
        recs.append(_record(p, label=1))
    bad = tmp_path / "png_bad.png"
    make_class_image(0, 16, seed=99).save(bad)
    bad.write_bytes(bad.read_bytes()[:60])  # a readable header, then the data cut short (found late)
    # as the scan saw it before the file was cut (the pipeline is the last line of defence)
    recs.insert(10, ImageRecord(path=str(bad), label=0, width=16, height=16, mode="RGB", fmt="PNG"))
    for batch_size, shuffle in ((CACHE_BATCH, False), (10, False), (10, True)):
        skips = SkipLog()
        sizes = [int(y.shape[0]) for _, y in make_dataset(recs, 16, batch_size, shuffle=shuffle, skips=skips)]
        assert sum(sizes) == len(recs) - 1, (batch_size, sizes)
        assert all(s == batch_size for s in sizes[:-1]), (batch_size, sizes)
        assert skips.paths == [str(bad)]


def test_uint8_batches_for_a_model_hold_the_same_pixels(image_folder):
    import keras

    records = scan(image_folder(per_class=4)).records
    xf, yf = _all(make_dataset(records, 32, 4))
    xu, yu = _all(make_dataset(records, 32, 4, dtype="uint8"))
    assert xu.dtype == np.uint8 and xf.dtype == np.float32
    assert np.array_equal(xu.astype(np.float32), xf) and np.array_equal(yu, yf)
    # a Keras model casts the bytes itself: same output as from floats
    inp = keras.Input((32, 32, 3))
    model = keras.Model(inp, keras.layers.Dense(2)(keras.layers.Flatten()(keras.layers.Rescaling(1 / 255)(inp))))
    assert np.allclose(model(xu[:2]).numpy(), model(xf[:2]).numpy())
    # augmentation works on floats, so it gives floats
    xa, _ = _all(make_dataset(records, 32, 4, dtype="uint8", augment=("flip",)))
    assert xa.dtype == np.float32
    from cnn_studio.core.errors import ConfigError

    with pytest.raises(ConfigError):
        make_dataset(records, 32, 4, dtype="float16")


def _index_picture(i: int, side: int = 32) -> np.ndarray:
    """A dark square with a bright vertical stripe at columns 2i, 2i+1: the picture says its own index."""
    arr = np.zeros((side, side), np.float64)
    arr[:, 2 * i:2 * i + 2] = 1.0
    return arr


def _index_of(image: np.ndarray) -> int:
    return int(np.argmax(image[..., 0].mean(0))) // 2


def test_mixed_readers_keep_record_order_and_keys(tmp_path):
    """PNG and JPEG (TensorFlow's decoders) among 16-bit TIFF and DICOM (the Python readers): images come
    out in record order, each with its own key and label (two decode branches used to be concatenated,
    so every Python-read image came after the others and callers pairing by position got them wrong)."""
    import tifffile

    recs = []
    for i in range(12):
        pic = _index_picture(i)
        kind = ("png", "jpg", "tif", "dcm")[i % 4]
        p = tmp_path / f"img_{i:02d}.{kind}"
        if kind == "tif":
            tifffile.imwrite(p, (pic * 3000 + 500).astype(np.uint16))
        elif kind == "dcm":
            write_dicom(p, (pic * 4000).astype(np.uint16), NO_PATIENT)
        else:
            Image.fromarray((pic * 255).astype(np.uint8)).convert("RGB").save(p, quality=95)
        recs.append(_record(p, label=i % 3))
    assert [needs_python_reader(r) for r in recs[:4]] == [False, False, True, True]
    for batch_size in (5, 32):
        seen_idx, seen_y, seen_keys = [], [], []
        for x, y, keys in make_dataset(recs, 32, batch_size, with_keys=True):
            seen_idx += [_index_of(img) for img in x.numpy()]
            seen_y += y.numpy().tolist()
            seen_keys += [k.decode() for k in keys.numpy()]
        assert seen_idx == list(range(12)), f"images out of record order: {seen_idx}"
        assert seen_keys == [r.key for r in recs]
        assert seen_y == [r.label for r in recs]
    x, y = _all(make_dataset(recs, 32, 4))  # without keys: the same order
    assert [_index_of(img) for img in x] == list(range(12))
