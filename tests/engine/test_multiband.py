"""Multi-band images without training: reading, names, statistics, composites, checks, the band
adapter and the band input of the model, and the float32 pipeline branch."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from PIL import Image

from cnn_studio.core.errors import ConfigError, DatasetError
from cnn_studio.data import bands as band_io
from cnn_studio.data.checks import run_checks
from cnn_studio.data.decode import decode_file, probe
from cnn_studio.data.index import scan
from cnn_studio.synthetic.multiband import S2_BANDS, make_multiband_dataset


@pytest.fixture(scope="module")
def tiles(tmp_path_factory):
    return make_multiband_dataset(tmp_path_factory.mktemp("mb") / "tiles", classes=("wheat", "barley"), per_class=6,
                                  size=16, seed=3)


def test_a_sentinel2_tile_is_read_with_its_raw_values_and_band_names(tiles):
    path = tiles / "wheat" / "tile_0000.tif"
    info = probe(path)
    assert (info.bands, info.dtype, info.band_names) == (13, "uint16", S2_BANDS)
    assert (info.width, info.height, info.fmt) == (16, 16, "TIFF")
    raw = band_io.read_bands(path)
    assert raw.dtype == np.float32 and raw.shape == (16, 16, 13)
    assert np.array_equal(raw, tifffile.imread(path).astype(np.float32)), "raw values, no windowing"
    assert raw[..., 7].mean() > 1000, "reflectance x 10,000, far beyond 0-255"
    shown = decode_file(path)  # for people: the default composite B04, B03, B02
    assert shown.dtype == np.uint8 and shown.shape == (16, 16, 3)
    assert np.array_equal(shown, band_io.composite(raw, (4, 3, 2)))


def test_rgb_tiffs_stay_pictures_and_npy_arrays_are_bands(tmp_path):
    rgb = tmp_path / "photo.tif"
    Image.new("RGB", (8, 8), (10, 20, 30)).save(rgb)
    assert not band_io.is_multiband(rgb) and probe(rgb).bands == 0
    two = tmp_path / "two.tif"
    tifffile.imwrite(two, np.zeros((8, 8, 2), np.uint16), photometric="minisblack", planarconfig="contig")
    assert band_io.is_multiband(two) and probe(two).bands == 2
    arr = np.arange(8 * 6 * 4, dtype=np.float64).reshape(8, 6, 4)
    npy = tmp_path / "a.npy"
    np.save(npy, arr)
    info = probe(npy)
    assert (info.bands, info.dtype, info.width, info.height, info.fmt) == (4, "float64", 6, 8, "NPY")
    assert np.array_equal(band_io.read_bands(npy), arr.astype(np.float32))
    grey = tmp_path / "g.npy"
    np.save(grey, np.ones((5, 5), np.int16))
    assert band_io.read_bands(grey).shape == (5, 5, 1)
    assert decode_file(grey).shape == (5, 5, 3), "a single band is shown repeated"


def test_default_rgb_bands_from_names_or_numbers():
    assert band_io.default_rgb_bands(S2_BANDS, 13) == (4, 3, 2)
    assert band_io.default_rgb_bands(("nir", "Red", "green", "blue"), 4) == (2, 3, 4)
    assert band_io.default_rgb_bands((), 6) == (1, 2, 3)
    assert band_io.default_rgb_bands((), 2) == (1, 2, 2)


def test_scan_reports_bands_and_band_summary_gives_ranges(tiles):
    index = scan(tiles)
    assert index.bands == 13 and index.band_names == S2_BANDS
    assert all(r.bands == 13 and r.dtype == "uint16" for r in index.records)
    summary = band_io.band_summary(index.records, max_files=8, names=index.band_names)
    assert [s.band for s in summary] == list(range(1, 14)) and summary[7].name == "B08"
    assert all(s.min <= s.low <= s.mean <= s.high <= s.max for s in summary)
    assert summary[7].describe().startswith("B08: ")
    assert band_io.band_summary([r for r in index.records if False]) == []


def test_band_info_round_trips_and_checks_band_numbers(tiles, tmp_path):
    records = scan(tiles).records
    info = band_io.make_band_info(records, bands=(8, 4, 3, 2), max_files=4)
    assert (info.count, info.dtype, info.selected, info.rgb) == (13, "uint16", (8, 4, 3, 2), (4, 3, 2))
    assert info.channel_map() == [None, 0, 1, 2]
    band_io.write_band_info(tmp_path / "bands.json", info)
    assert band_io.read_band_info(tmp_path / "bands.json") == info
    with pytest.raises(ConfigError, match="band numbers go from 1 to 13; received 14"):
        band_io.make_band_info(records, bands=(1, 14))
    with pytest.raises(ConfigError, match="three band numbers"):
        band_io.make_band_info(records, rgb=(4, 3))


def test_mixed_pictures_and_band_counts_are_error_findings(tiles, tmp_path):
    import shutil

    root = tmp_path / "mixed"
    shutil.copytree(tiles, root)
    Image.new("RGB", (16, 16), "red").save(root / "wheat" / "photo.png")
    findings = run_checks(scan(root), find_duplicates=False)
    mixed = [f for f in findings if f.code == "mixed_bands"]
    assert mixed and mixed[0].severity == "error" and mixed[0].paths == (str(root / "wheat" / "photo.png"),)
    with pytest.raises(DatasetError, match="mixes pictures"):
        band_io.dataset_band_layout(scan(root).records)
    (root / "wheat" / "photo.png").unlink()
    np.save(root / "barley" / "odd.npy", np.zeros((16, 16, 4), np.uint16))
    findings = run_checks(scan(root), find_duplicates=False)
    differs = [f for f in findings if f.code == "band_count_differs"]
    assert differs and differs[0].severity == "error" and differs[0].paths == (str(root / "barley" / "odd.npy"),)


# ---------------------------------------------------------------------------- band adapter


def test_widened_kernel_takes_the_rgb_slices_and_the_mean_scaled():
    import keras

    from cnn_studio.backbones.band_adapter import adapt_input_weights

    def net(channels):
        inp = keras.Input((8, 8, channels))
        x = keras.layers.Conv2D(4, 3, name="first")(inp)
        x = keras.layers.Conv2D(2, 1, name="second")(x)
        return keras.Model(inp, x, name=f"net{channels}")

    rgb, wide = net(3), net(5)
    kernel = rgb.get_layer("first").kernel.numpy()
    channel_map = [None, 0, 1, 2, None]  # five bands; bands 2, 3, 4 stand for R, G, B
    adapted = adapt_input_weights(rgb, wide, channel_map, "tf")
    assert adapted == ["first"]
    new = wide.get_layer("first").kernel.numpy()
    scale = 3 / 5
    for k, c in enumerate(channel_map):
        expected = kernel.mean(axis=2) if c is None else kernel[:, :, c]
        np.testing.assert_allclose(new[:, :, k], expected * scale, rtol=1e-6)
    np.testing.assert_array_equal(wide.get_layer("first").bias.numpy(), rgb.get_layer("first").bias.numpy())
    np.testing.assert_array_equal(wide.get_layer("second").kernel.numpy(), rgb.get_layer("second").kernel.numpy())
    # caffe backbones were trained on BGR: the band standing for R takes the kernel's channel 2
    adapt_input_weights(rgb, wide, channel_map, "caffe")
    new = wide.get_layer("first").kernel.numpy()
    np.testing.assert_allclose(new[:, :, 1], kernel[:, :, 2] * scale, rtol=1e-6)
    np.testing.assert_allclose(new[:, :, 3], kernel[:, :, 0] * scale, rtol=1e-6)
    # three RGB bands in RGB order reproduce a tf-mode kernel exactly
    same = net(3)
    adapt_input_weights(rgb, same, [0, 1, 2], "tf")
    np.testing.assert_array_equal(same.get_layer("first").kernel.numpy(), kernel)


@pytest.mark.parametrize("mode", ["caffe", "tf", "torch", "unit", "none"])
def test_band_normalize_standardises_then_scales_like_the_backbone_preprocess(mode):
    from cnn_studio.backbones.band_adapter import channel_affine
    from cnn_studio.backbones.classifier import build_classifier
    from cnn_studio.backbones.registry import Backbone
    from cnn_studio.data.bands import BandInfo, BandStats

    spec = Backbone("small_cnn", "Small", "Custom", "cnn_studio.backbones.small_cnn:SmallCNN", mode, 32, 16,
                    None, 128, 0.1, "fast", "")
    stats = tuple(BandStats(b, "", 0, 5000, 1000.0 * b, 100.0 * b, 0, 5000) for b in range(1, 6))
    info = BandInfo(5, "uint16", (), (5, 2, 3, 4), (4, 3, 2), stats)
    model = build_classifier(spec, 2, image_size=16, bands=info)
    assert model.inputs[0].shape[-1] == 5 and model.get_layer("band_select").trainable is False
    x = np.random.default_rng(0).uniform(0, 6000, (1, 16, 16, 5)).astype(np.float32)
    import keras

    upto = keras.Model(model.inputs, model.get_layer("band_normalize").output)
    y = np.asarray(upto([x]))
    for k, (band, channel) in enumerate(zip(info.used, info.channel_map(), strict=True)):
        z = (x[..., band - 1] - stats[band - 1].mean) / stats[band - 1].std
        a, b = channel_affine(mode, channel)
        np.testing.assert_allclose(y[..., k], a * z + b, rtol=1e-4, atol=1e-3)


# ---------------------------------------------------------------------------- pipeline


def test_pipeline_gives_raw_float32_bands_and_geometric_augmentation_only(tiles):
    from cnn_studio.data.augment import multiband_augment
    from cnn_studio.data.pipeline import SkipLog, load_image, make_dataset

    records = scan(tiles).records
    skips = SkipLog()
    ds = make_dataset(records, 16, 4, cache="memory", dtype="uint8", skips=skips)
    x, y = next(iter(ds))
    assert x.dtype.name == "float32" and tuple(x.shape) == (4, 16, 16, 13)
    first = band_io.read_bands(records[0].path)
    np.testing.assert_allclose(x.numpy()[0], first, rtol=1e-6)
    assert float(x.numpy().max()) > 255, "never clipped to 0-255"
    assert sum(int(b[1].shape[0]) for b in ds) == len(records) and skips.count == 0
    assert multiband_augment(("flip", "contrast", "zoom", "brightness")) == (("flip", "zoom"), ("contrast", "brightness"))
    aug = make_dataset(records, 16, 4, shuffle=True, augment=("flip", "brightness"), cache="none")
    xa, _ = next(iter(aug))
    assert tuple(xa.shape) == (4, 16, 16, 13) and float(xa.numpy().max()) > 255
    assert load_image(records[0].path, 8).shape == (8, 8, 13)
