"""Training throughput per backbone: a plain ``model.fit`` vs CNN Studio's classifier in float32 and mixed precision.

For each backbone (random weights, ``--image-size`` px, synthetic uint8 images, ``--batch`` images
a step) it times ``--steps`` training steps after one warm-up step, in one process:

* ``plain fit``: ``keras.applications.<Model>(include_top=False, pooling="avg")`` + a softmax layer,
  float32, ``model.fit`` on float32 arrays — the baseline;
* ``studio float32``: ``backbones.classifier.build_classifier`` (preprocessing inside the model, uint8
  batches as the trainer feeds them), float32;
* ``studio mixed``: the same under ``mixed_float16`` (what ``precision="auto"`` picks on a GPU with
  compute capability 7.0 or more; on a CPU it is slower, and it is printed anyway).

Run it on a GPU machine and put the figures in README::

    python bench/gpu.py                                  # resnet50, vgg16, efficientnet_b0, mobilenet_v2 at 224 px
    python bench/gpu.py --models mobilenet_v2 --steps 3 --image-size 96   # a quick check on a CPU
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

CONSTRUCTORS = {"resnet50": "ResNet50", "vgg16": "VGG16", "efficientnet_b0": "EfficientNetB0",
                "mobilenet_v2": "MobileNetV2"}


def _time_fit(model, x, y, steps: int, batch: int) -> float:
    """Images per second of ``steps`` training steps (after one warm-up step that traces the graph)."""
    model.fit(x[:batch], y[:batch], batch_size=batch, epochs=1, verbose=0)
    t0 = time.perf_counter()
    model.fit(x[: steps * batch], y[: steps * batch], batch_size=batch, epochs=1, verbose=0)
    return steps * batch / (time.perf_counter() - t0)


def _plain(key: str, size: int, n_classes: int):
    import keras

    base = getattr(keras.applications, CONSTRUCTORS[key])(include_top=False, weights=None, pooling="avg",
                                                         input_shape=(size, size, 3))
    model = keras.Sequential([base, keras.layers.Dense(n_classes, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    return model


def _studio(key: str, size: int, n_classes: int, policy: str):
    import keras

    from cnn_studio.backbones.classifier import build_classifier
    from cnn_studio.backbones.registry import get
    from cnn_studio.training.devices import precision_policy

    with precision_policy(policy):
        model = build_classifier(get(key), n_classes, weights="none", image_size=size)
        model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
    return model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(CONSTRUCTORS))
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args(argv)

    from cnn_studio.core import tf_runtime

    tf_runtime.import_tensorflow()
    print(tf_runtime.device_line(), flush=True)
    rng = np.random.default_rng(0)
    n = (args.steps + 1) * args.batch
    x8 = rng.integers(0, 256, (n, args.image_size, args.image_size, 3), dtype=np.uint8)
    y = rng.integers(0, 4, n)
    xf = x8.astype("float32") / 127.5 - 1.0
    rows = []
    for key in [k.strip() for k in args.models.split(",") if k.strip()]:
        plain = _time_fit(_plain(key, args.image_size, 4), xf, y, args.steps, args.batch)
        f32 = _time_fit(_studio(key, args.image_size, 4, "float32"), x8, y, args.steps, args.batch)
        mixed = _time_fit(_studio(key, args.image_size, 4, "mixed_float16"), x8, y, args.steps, args.batch)
        rows.append((key, plain, f32, mixed))
        print(f"  {key}: plain {plain:.1f}, studio float32 {f32:.1f}, studio mixed {mixed:.1f} images/s", flush=True)
    print(f"\n{'backbone':<18}{'plain fit':>11}{'studio f32':>12}{'vs plain':>10}{'studio mixed':>14}{'vs plain':>10}")
    for key, plain, f32, mixed in rows:
        print(f"{key:<18}{plain:>11.1f}{f32:>12.1f}{f32 / plain:>9.2f}x{mixed:>14.1f}{mixed / plain:>9.2f}x")
    print(f"\nimages/s over {args.steps} steps of {args.batch} images at {args.image_size} px, random weights, "
          "after one warm-up step")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
