"""The default CNN Studio run vs a plain Keras script that follows the Keras transfer-learning guide.

Paired, in one process tree: each variant runs in its own child process (a fresh TensorFlow), one
after the other, on the same split of the same images and the same VGG16 ImageNet weights file
(``$CNN_STUDIO_TEST_WEIGHTS`` or ``~/.cache/cnn-studio-test-weights``):

* ``cnn-studio default``: ``training.trainer.train`` with the config that ``cnn-studio train DATA
  --backbone vgg16 --weights FILE --image-size N`` makes (every other option at its default), i.e. the
  automatic schedule (head on cached features until the validation loss stops
  improving at the finder's rate, then block5 fine-tuned with early stopping) and the check after
  training; test accuracy of its best model (``evaluation.evaluate_run``);
* ``keras guide``: ``image_dataset_from_directory`` on the same train/val/test files (linked into
  folders), frozen ``VGG16(include_top=False)`` + ``preprocess_input`` + global average pooling +
  dropout 0.2 + dense softmax, Adam 1e-3 for 5 epochs, then the layers of block5 unfrozen at 1e-5
  for 5 epochs.

Wall time is the training call of each (model building, data and weights loading included; loading
TensorFlow itself and the test evaluation excluded, for both).

    nice python bench/default_vs_guide.py [--data FOLDER] [--image-size 64]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
WEIGHTS = Path(os.environ.get("CNN_STUDIO_TEST_WEIGHTS", "~/.cache/cnn-studio-test-weights")).expanduser() \
    / "vgg16_imagenet_notop.weights.h5"


def _studio(split_file: Path, size: int) -> dict:
    from cnn_studio.core.fsutil import read_json
    from cnn_studio.data.records import Split
    from cnn_studio.evaluation.evaluate import RunEvaluationOptions, evaluate_run
    from cnn_studio.runs.run_folder import read_history
    from cnn_studio.training.trainer import train

    split = Split.from_dict(read_json(split_file))
    run = Path(tempfile.mkdtemp(prefix="bench-default-")) / "run"
    config = default_config(size)
    import keras  # noqa: F401  (TensorFlow loaded before the clock starts, as in the guide's script)
    t = time.monotonic()
    result = train(config, split, run)
    seconds = time.monotonic() - t
    state = read_json(run / "state.json")
    phases = {}
    for name, facts in state["schedule"].items():
        if isinstance(facts, dict) and "start" in facts:  # the best validation accuracy each phase reached
            rows = [r for r in read_history(run / "history.csv") if facts["start"] <= int(float(r["epoch"])) < facts["end"]]
            phases[name] = round(max((float(r["val_accuracy"]) for r in rows), default=float("nan")), 3)
    return {"accuracy": float(evaluate_run(run, RunEvaluationOptions(subset="test")).accuracy), "seconds": seconds, "val_by_phase": phases,
            "epochs": result.epochs_done, "schedule": {k: v.get("how") for k, v in state["schedule"].items()
                                                       if isinstance(v, dict)}}


def default_config(size: int):
    """The config of ``cnn-studio train DATA --backbone vgg16 --weights FILE --image-size SIZE``: every other
    option at the command line's default (the app's Model step starts from the same)."""
    from cnn_studio.cli import build_parser
    from cnn_studio.cli.train import config_from_args

    args = build_parser().parse_args(["train", "data", "--backbone", "vgg16", "--weights", str(WEIGHTS),
                                      "--image-size", str(size), "--out", "run"])
    return config_from_args(args, "vgg16", str(WEIGHTS))


def _link_folders(split, root: Path) -> None:
    for part in ("train", "val", "test"):
        for i, r in enumerate(getattr(split, part)):
            d = root / part / split.class_names[r.label]
            d.mkdir(parents=True, exist_ok=True)
            (d / f"{i}_{Path(r.path).name}").symlink_to(Path(r.path).resolve())


def _guide(split_file: Path, size: int) -> dict:
    import keras

    from cnn_studio.core.fsutil import read_json
    from cnn_studio.data.records import Split

    split = Split.from_dict(read_json(split_file))
    root = Path(tempfile.mkdtemp(prefix="bench-guide-"))
    _link_folders(split, root)
    t = time.monotonic()

    def ds(part, shuffle):
        return keras.utils.image_dataset_from_directory(root / part, image_size=(size, size), batch_size=32,
                                                       label_mode="categorical", shuffle=shuffle, seed=0,
                                                       class_names=list(split.class_names), verbose=False)

    train_ds, val_ds = ds("train", True), ds("val", False)
    base = keras.applications.VGG16(include_top=False, weights=str(WEIGHTS), input_shape=(size, size, 3))
    base.trainable = False
    inputs = keras.Input((size, size, 3))
    x = keras.applications.vgg16.preprocess_input(inputs)
    x = base(x, training=False)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(0.2)(x)
    model = keras.Model(inputs, keras.layers.Dense(len(split.class_names), activation="softmax")(x))
    model.compile(keras.optimizers.Adam(1e-3), "categorical_crossentropy", metrics=["accuracy"])
    model.fit(train_ds, validation_data=val_ds, epochs=5, verbose=0)
    base.trainable = True
    for layer in base.layers:
        layer.trainable = layer.name.startswith("block5")
    model.compile(keras.optimizers.Adam(1e-5), "categorical_crossentropy", metrics=["accuracy"])
    model.fit(train_ds, validation_data=val_ds, epochs=10, initial_epoch=5, verbose=0)
    seconds = time.monotonic() - t
    _loss, acc = model.evaluate(ds("test", False), verbose=0)
    return {"accuracy": float(acc), "seconds": seconds, "epochs": 10}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None, help="image folder (default: the bundled sample)")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--val-fraction", type=float, default=0.2)
    parser.add_argument("--test-fraction", type=float, default=0.2)
    parser.add_argument("--one", choices=("studio", "guide"), help=argparse.SUPPRESS)
    parser.add_argument("--split", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not WEIGHTS.exists():
        print(f"{WEIGHTS} is missing (see bench/pretrained.py for how to make it).", file=sys.stderr)
        return 2
    if args.one:
        out = (_studio if args.one == "studio" else _guide)(Path(args.split), args.image_size)
        print("RESULT " + json.dumps(out), flush=True)
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-default-vs-guide-") as work:
        os.environ["TMPDIR"] = work  # both children's run folders, homes and linked folders go there, removed after
        tempfile.tempdir = None
        return _pair(args)


def _pair(args: argparse.Namespace) -> int:
    from cnn_studio.core.fsutil import write_json
    from cnn_studio.data.prepare import PrepareOptions, prepare
    from cnn_studio.data.sample import sample_dataset_path

    data = args.data or sample_dataset_path()
    split = prepare(data, PrepareOptions(val_fraction=args.val_fraction, test_fraction=args.test_fraction,
                                         seed=0)).split
    split_file = Path(tempfile.mkdtemp(prefix="bench-split-")) / "split.json"
    write_json(split_file, split.to_dict())
    print(f"{data}: {len(split.train)} train / {len(split.val)} val / {len(split.test)} test images, "
          f"{len(split.class_names)} classes, VGG16 at {args.image_size} px", flush=True)
    results = {}
    for name in ("studio", "guide"):
        env = {**os.environ, "CNN_STUDIO_HOME": tempfile.mkdtemp(prefix="bench-home-")}
        proc = subprocess.run([sys.executable, __file__, "--one", name, "--split", str(split_file),
                               "--image-size", str(args.image_size)], capture_output=True, text=True, env=env)
        line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
        if line is None:
            print(proc.stdout[-2000:], proc.stderr[-3000:], file=sys.stderr)
            return 1
        results[name] = json.loads(line[len("RESULT "):])
        r = results[name]
        print(f"{'cnn-studio default' if name == 'studio' else 'keras guide (5+5)':20s} test accuracy "
              f"{r['accuracy']:.3f}  wall {r['seconds']:.0f} s  epochs {r['epochs']}"
              + (f"  best val accuracy by phase {r['val_by_phase']}  {r['schedule']}" if "schedule" in r else ""),
              flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
