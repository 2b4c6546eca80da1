"""What tf.data's autotuning costs a training epoch on this CPU: one table, autotuning on and off.

Keras starts a new iterator over the dataset each epoch; with autotuning on, an iterator's end waits
for the autotuning thread to wake (seen with gdb: ``RootDataset::Iterator::~Iterator`` waiting on
``Model::OptimizeLoop``), and that thread competes with the training for the cores.
``data.pipeline.without_autotune`` therefore builds every training dataset without it. Each case below
runs the same ``fit`` alternately on the same data with autotuning on and off, in one process, and
prints the median, the slowest and the total of the epoch times.

    python bench/autotune_stalls.py [--epochs 8] [--images 760]

Cases: VGG16's block5 and a new head trained on cached 4×4×512 activations (the fine-tune phase at
64 px), and a small CNN trained on decoded 64 px images through ``make_dataset`` (the image pipeline).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
warnings.filterwarnings("ignore", message="Your input ran out of data")


def _epoch_times(model, dataset, epochs: int) -> list[float]:
    import keras

    times: list[float] = []

    class Clock(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.t = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.t)

    model.fit(dataset, epochs=epochs, verbose=0, callbacks=[Clock()])
    return times


def _upper_case(images: int):
    """VGG16's block5 + pooling + a 10-class head on random activations, and its (x, y) dataset."""
    import keras
    import numpy as np
    import tensorflow as tf

    from cnn_studio.backbones import registry
    from cnn_studio.backbones.classifier import build_classifier, unfreeze_depth
    from cnn_studio.training.activation_cache import plan_split

    model = build_classifier(registry.get("vgg16"), 10, weights="none", image_size=64)
    split = plan_split(model, "1 block")
    unfreeze_depth(model, "1 block")  # plan_split froze the backbone again: block5 trains, as in the fine-tune phase
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 5, (images, *split.shape)).astype("float32")
    y = tf.one_hot(rng.integers(0, 10, images), 10)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(images).batch(32).prefetch(tf.data.AUTOTUNE)

    def fresh():
        split.upper.compile(keras.optimizers.Adam(1e-4), "categorical_crossentropy")
        return split.upper
    return fresh, ds


def _image_case(images: int, folder: str):
    """A small CNN on 64 px PNGs decoded by ``make_dataset`` (cached in memory, shuffled)."""
    import keras
    import numpy as np
    import tensorflow as tf
    from PIL import Image

    from cnn_studio.data.index import scan
    from cnn_studio.data.pipeline import make_dataset

    rng = np.random.default_rng(0)
    for i in range(images):
        d = os.path.join(folder, f"c{i % 4}")
        os.makedirs(d, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(os.path.join(d, f"{i}.png"))
    records = scan(folder).records
    ds = make_dataset(records, 64, 32, shuffle=True, cache="memory")
    ds = ds.map(lambda x, y: (x, tf.one_hot(y, 4)))

    def fresh():
        model = keras.Sequential([keras.Input((64, 64, 3)), keras.layers.Rescaling(1 / 255),
                                  keras.layers.Conv2D(32, 3, activation="relu"), keras.layers.MaxPooling2D(),
                                  keras.layers.Conv2D(64, 3, activation="relu"), keras.layers.GlobalAveragePooling2D(),
                                  keras.layers.Dense(4, activation="softmax")])
        model.compile("adam", "categorical_crossentropy")
        return model
    return fresh, ds


def _with_autotune(ds, enabled: bool):
    import tensorflow as tf

    options = tf.data.Options()
    options.autotune.enabled = enabled
    return ds.with_options(options)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--images", type=int, default=760)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        cases = {"VGG16 block5 on cached activations": _upper_case(args.images),
                 "small CNN on decoded images": _image_case(args.images, folder)}
        print(f"{'case':38} {'autotune':9} {'median s':>9} {'slowest s':>10} {'total s':>8}")
        for name, (fresh, ds) in cases.items():
            rows = {}
            for enabled in (True, False, True, False):  # alternate; the first of each pair includes tracing
                times = _epoch_times(fresh(), _with_autotune(ds, enabled), args.epochs)
                rows.setdefault(enabled, []).append(times)
            for enabled in (True, False):
                times = rows[enabled][-1]  # the second run of each: traced already
                print(f"{name:38} {'on' if enabled else 'off':9} {statistics.median(times):9.2f} "
                      f"{max(times):10.2f} {sum(times):8.1f}")
            ratio = sum(rows[True][-1]) / sum(rows[False][-1])
            print(f"{name:38} {'on / off':9} {'':9} {'':10} {ratio:7.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
