"""Pretrained VGG16 through CNN Studio vs a plain Keras transfer-learning script vs VGG16 from scratch.

The exact ImageNet VGG16 no-top weights come from ``tools/offline_imagenet_weights.py``
(``$CNN_STUDIO_TEST_WEIGHTS`` or ``~/.cache/cnn-studio-test-weights``); without them the script
says how to make them and exits. All three variants train on the same split of the same images
(the bundled sample digits by default, or ``--data FOLDER``) at the same size, for the same number
of epochs, and are measured on the same validation images:

* ``cnn-studio``: ``training.trainer.train`` with the weights file (head on cached features, then
  the top block fine-tuned), accuracy of its best model on the validation images;
* ``plain keras``: the Keras transfer-learning guide's recipe — ``VGG16(include_top=False)`` with
  the same weights, frozen, ``preprocess_input``, global average pooling and a softmax layer,
  ``model.fit`` for the same epochs;
* ``from scratch``: CNN Studio with ``weights="none"`` (a random VGG16).

    python bench/pretrained.py [--epochs 6] [--fine-tune-epochs 4] [--image-size 48] [--repeat 1]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

WEIGHTS_DIR = Path(os.environ.get("CNN_STUDIO_TEST_WEIGHTS", "~/.cache/cnn-studio-test-weights")).expanduser()
VGG16_FILE = WEIGHTS_DIR / "vgg16_imagenet_notop.weights.h5"


def _arrays(records, size: int) -> np.ndarray:
    from cnn_studio.data.decode import decode_file
    from cnn_studio.data.pipeline import resize_image

    images = []
    for r in records:
        pixels = decode_file(r.path)
        pixels = np.repeat(pixels[..., :1], 3, axis=-1) if pixels.ndim == 2 or pixels.shape[-1] == 1 else pixels[..., :3]
        images.append(np.asarray(resize_image(pixels, size, "stretch")))
    return np.stack(images).astype("float32")


def _studio(split, size: int, epochs: int, fine_tune_epochs: int, weights: str, seed: int) -> float:
    from cnn_studio.evaluation.evaluate import evaluate_run
    from cnn_studio.training.config import TrainConfig
    from cnn_studio.training.trainer import train

    run = Path(tempfile.mkdtemp(prefix="bench-pretrained-")) / "run"
    cfg = TrainConfig(backbone="vgg16", weights=weights, image_size=size, batch_size=16, epochs=epochs,
                      fine_tune_epochs=fine_tune_epochs if weights != "none" else 0, seed=seed)
    train(cfg, split, run)
    return float(evaluate_run(run).accuracy)


def _plain_keras(split, size: int, epochs: int, seed: int) -> float:
    import keras
    from keras.applications import vgg16

    keras.utils.set_random_seed(seed)
    x_train, x_val = _arrays(split.train, size), _arrays(split.val, size)
    y_train = np.array([r.label for r in split.train])
    y_val = np.array([r.label for r in split.val])
    base = vgg16.VGG16(include_top=False, weights=None, input_shape=(size, size, 3))
    base.load_weights(str(VGG16_FILE))
    base.trainable = False
    inputs = keras.Input((size, size, 3))
    x = base(vgg16.preprocess_input(inputs), training=False)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(len(split.class_names), activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train, batch_size=16, epochs=epochs, verbose=0)
    return float(model.evaluate(x_val, y_val, verbose=0)[1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="a folder of class folders (default: the bundled sample digits)")
    parser.add_argument("--epochs", type=int, default=6, help="head epochs (and the plain script's epochs)")
    parser.add_argument("--fine-tune-epochs", type=int, default=4)
    parser.add_argument("--image-size", type=int, default=48)
    parser.add_argument("--repeat", type=int, default=1, help="seeds per variant")
    args = parser.parse_args(argv)
    if not VGG16_FILE.is_file():
        print(f"{VGG16_FILE} not found: run `python3 tools/offline_imagenet_weights.py` once "
              "(about a minute, 150 MB) or set CNN_STUDIO_TEST_WEIGHTS.", file=sys.stderr)
        return 2

    from cnn_studio.core import tf_runtime
    from cnn_studio.data.index import scan
    from cnn_studio.data.sample import sample_dataset_path
    from cnn_studio.data.split import make_split

    tf_runtime.import_tensorflow()  # its start-up lines go to the log, not into the table
    root = Path(args.data) if args.data else sample_dataset_path()
    split = make_split(scan(root), val_fraction=0.25, seed=0)
    print(f"data: {root} — {len(split.class_names)} classes, {len(split.train)} training and {len(split.val)} "
          f"validation images, {args.image_size} px; VGG16 weights {VGG16_FILE}", flush=True)
    variants = {
        "cnn-studio (ImageNet)": lambda seed: _studio(split, args.image_size, args.epochs, args.fine_tune_epochs,
                                                      str(VGG16_FILE), seed),
        "plain keras (ImageNet)": lambda seed: _plain_keras(split, args.image_size, args.epochs + args.fine_tune_epochs,
                                                            seed),
        "cnn-studio (from scratch)": lambda seed: _studio(split, args.image_size,
                                                          args.epochs + args.fine_tune_epochs, 0, "none", seed),
    }
    rows = []
    for name, run in variants.items():
        accs, times = [], []
        for seed in range(args.repeat):
            t0 = time.perf_counter()
            accs.append(run(seed))
            times.append(time.perf_counter() - t0)
            print(f"  {name}, seed {seed}: accuracy {accs[-1]:.3f} in {times[-1]:.0f} s", flush=True)
        rows.append((name, accs, times))
    print(f"\n{'variant':<28}{'val accuracy':>14}{'range':>16}{'seconds':>9}")
    for name, accs, times in rows:
        print(f"{name:<28}{np.mean(accs):>14.3f}{f'{min(accs):.3f}–{max(accs):.3f}':>16}{np.mean(times):>9.0f}")
    print(f"\n(epochs: {args.epochs} head + {args.fine_tune_epochs} fine-tune for CNN Studio; the same total for "
          "the plain script and from scratch)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
