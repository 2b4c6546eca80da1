"""VGG16 with its real ImageNet weights taking 13 bands: the first convolution is built from the RGB
kernel (bands mapped to R, G, B get its BGR-ordered slices, the others their mean, all × 3/13) and
every other layer keeps its pretrained weights. Skipped when the offline weights file is absent."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from cnn_studio.backbones import registry

WEIGHTS_DIR = Path(os.environ.get("CNN_STUDIO_TEST_WEIGHTS", "~/.cache/cnn-studio-test-weights")).expanduser()
VGG16 = WEIGHTS_DIR / "vgg16_imagenet_notop.weights.h5"

pytestmark = [pytest.mark.pretrained, pytest.mark.slow]


def test_vgg16_imagenet_first_conv_is_adapted_to_13_bands():
    if not VGG16.is_file():
        pytest.skip(f"{VGG16.name} not found in {WEIGHTS_DIR} (set CNN_STUDIO_TEST_WEIGHTS, or run "
                    "`python3 tools/offline_imagenet_weights.py` once)")
    from cnn_studio.backbones.classifier import backbone_of, build_backbone, build_classifier
    from cnn_studio.data.bands import BandInfo, BandStats

    stats = tuple(BandStats(b, f"B{b:02d}", 0, 10000, 1000.0, 200.0, 10, 9000) for b in range(1, 14))
    info = BandInfo(13, "uint16", tuple(s.name for s in stats), tuple(range(1, 14)), (4, 3, 2), stats)
    model = build_classifier(registry.get("vgg16"), 3, weights=str(VGG16), image_size=32, bands=info)
    assert model.inputs[0].shape[-1] == 13
    rgb = build_backbone(registry.get("vgg16"), 32, str(VGG16)).get_layer("block1_conv1").kernel.numpy()  # (3, 3, 3 BGR, 64)
    wide = backbone_of(model).get_layer("block1_conv1").kernel.numpy()
    assert wide.shape == (3, 3, 13, 64)
    scale = 3 / 13
    np.testing.assert_allclose(wide[:, :, 3], rgb[:, :, 2] * scale, rtol=1e-6)  # B04 → R (BGR channel 2)
    np.testing.assert_allclose(wide[:, :, 2], rgb[:, :, 1] * scale, rtol=1e-6)  # B03 → G
    np.testing.assert_allclose(wide[:, :, 1], rgb[:, :, 0] * scale, rtol=1e-6)  # B02 → B
    for k in (0, 4, 7, 12):
        np.testing.assert_allclose(wide[:, :, k], rgb.mean(axis=2) * scale, rtol=1e-5)
    deeper = build_backbone(registry.get("vgg16"), 32, str(VGG16)).get_layer("block3_conv2").kernel.numpy()
    np.testing.assert_array_equal(backbone_of(model).get_layer("block3_conv2").kernel.numpy(), deeper)
    scratch = build_classifier(registry.get("vgg16"), 3, weights="none", image_size=32, bands=info)
    assert not np.allclose(backbone_of(scratch).get_layer("block1_conv1").kernel.numpy(), wide)


XCEPTION = WEIGHTS_DIR / "xception_imagenet_notop.weights.h5"


def test_xception_imagenet_takes_13_bands_in_rgb_order_and_tf_scale():
    """A "tf"-mode backbone (RGB order, inputs in [-1, 1]): the bands chosen as R, G, B get kernel slices
    0, 1, 2, and a tile at its bands' training means enters the backbone as ImageNet's mean pixel would."""
    if not XCEPTION.is_file():
        pytest.skip(f"{XCEPTION.name} not found in {WEIGHTS_DIR} (set CNN_STUDIO_TEST_WEIGHTS, or run "
                    "`python3 tools/offline_imagenet_weights.py` once)")
    import keras

    from cnn_studio.backbones.classifier import backbone_of, build_backbone, build_classifier
    from cnn_studio.backbones.preprocessing import IMAGENET_MEAN_RGB
    from cnn_studio.data.bands import BandInfo, BandStats

    stats = tuple(BandStats(b, f"B{b:02d}", 0, 10000, 500.0 + 100 * b, 50.0 + 5 * b, 10, 9000) for b in range(1, 14))
    info = BandInfo(13, "uint16", tuple(s.name for s in stats), tuple(range(1, 14)), (8, 4, 3), stats)
    model = build_classifier(registry.get("xception"), 2, weights=str(XCEPTION), image_size=71, bands=info)
    rgb = build_backbone(registry.get("xception"), 71, str(XCEPTION)).get_layer("block1_conv1").kernel.numpy()  # (3, 3, 3 RGB, 32)
    wide = backbone_of(model).get_layer("block1_conv1").kernel.numpy()
    scale = 3 / 13
    np.testing.assert_allclose(wide[:, :, 7], rgb[:, :, 0] * scale, rtol=1e-6)  # B08 → R
    np.testing.assert_allclose(wide[:, :, 3], rgb[:, :, 1] * scale, rtol=1e-6)  # B04 → G
    np.testing.assert_allclose(wide[:, :, 2], rgb[:, :, 2] * scale, rtol=1e-6)  # B03 → B
    np.testing.assert_allclose(wide[:, :, 0], rgb.mean(axis=2) * scale, rtol=1e-5)

    normalised = keras.Model(model.inputs[0], model.get_layer("band_normalize").output)
    at_means = np.broadcast_to(np.array([s.mean for s in stats], np.float32), (1, 71, 71, 13))
    out = np.asarray(normalised(at_means))[0, 35, 35]
    for band, channel in ((8, 0), (4, 1), (3, 2)):  # tf mode: x / 127.5 - 1 of ImageNet's mean pixel
        assert out[band - 1] == pytest.approx(2 * IMAGENET_MEAN_RGB[channel] - 1, abs=1e-4)
    assert out[0] == pytest.approx(2 * float(np.mean(IMAGENET_MEAN_RGB)) - 1, abs=1e-4)
