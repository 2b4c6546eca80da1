"""Does XLA make fine-tuning on kept activations faster on this CPU? One table, per backbone and image size.

Fine-tuning "1 block" trains only the part of the classifier above the frozen layers, on their
activations (``training/activation_cache.py``). This bench builds that upper part for each backbone,
fits it on random activations of the right shape with Keras' own kernels (oneDNN) and with XLA
(``jit_compile=True``), in one process, alternating, and prints the median epoch time of each and
their ratio. ``fit_context.upper_jit_compile`` turns XLA on, on a computer without a GPU, only where
this table says it is faster (``Backbone.xla_on_cpu`` and ``fit_context.XLA_MAX_SIDE``).

    python bench/xla_fine_tune.py [--images 256] [--rounds 3] [KEY@SIZE ...]

Default cases: VGG16 at 64 and 224 px, Xception, MobileNetV2, EfficientNetB0, InceptionV3 and ConvNeXt
Tiny at 96 px.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

CASES = ("vgg16@64", "vgg16@224", "xception@96", "mobilenet_v2@96", "efficientnet_b0@96", "inception_v3@96",
         "convnext_tiny@96")


def _epoch_times(key: str, size: int, images: int, rounds: int) -> tuple[tuple, str, dict[bool, float]] | None:
    import keras
    import numpy as np

    from cnn_studio.backbones import registry
    from cnn_studio.backbones.classifier import build_classifier, unfreeze_depth
    from cnn_studio.training.activation_cache import plan_split

    model = build_classifier(registry.get(key), 3, weights="none", image_size=size)
    split = plan_split(model, "1 block")
    if split is None:
        return None
    unfreeze_depth(model, "1 block")
    shape = tuple(int(d) for d in split.lower.output_shape[1:])
    rng = np.random.default_rng(0)
    x = rng.random((images, *shape), dtype=np.float32)
    y = keras.utils.to_categorical(rng.integers(0, 3, images), 3)
    times: dict[bool, list[float]] = {False: [], True: []}
    for jit in (False, True):  # compile and trace once each, untimed
        split.upper.compile(keras.optimizers.Adam(1e-4), "categorical_crossentropy", jit_compile=jit)
        split.upper.fit(x[:64], y[:64], batch_size=32, epochs=1, verbose=0)
    for _ in range(rounds):
        for jit in (False, True, True, False):
            split.upper.compile(keras.optimizers.Adam(1e-4), "categorical_crossentropy", jit_compile=jit)
            split.upper.fit(x[:32], y[:32], batch_size=32, epochs=1, verbose=0)  # retrace outside the clock
            t = time.monotonic()
            split.upper.fit(x, y, batch_size=32, epochs=1, verbose=0)
            times[jit].append(time.monotonic() - t)
    return shape, split.cut_layer, {jit: statistics.median(v) for jit, v in times.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="*", default=list(CASES), help="KEY@SIZE, e.g. vgg16@64")
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    print(f"{'backbone@px':20s} {'activations':14s} {'cut':28s} {'oneDNN s':>9s} {'XLA s':>7s} {'XLA speed-up':>13s}")
    for case in args.cases:
        key, _, size = case.partition("@")
        out = _epoch_times(key, int(size or 96), args.images, args.rounds)
        if out is None:
            print(f"{case:20s} no cut (fine-tuning runs on the images)")
            continue
        shape, cut, t = out
        print(f"{case:20s} {'×'.join(map(str, shape)):14s} {cut:28.28s} {t[False]:9.2f} {t[True]:7.2f} "
              f"{t[False] / t[True]:12.2f}×", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
