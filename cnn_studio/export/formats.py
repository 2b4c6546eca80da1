"""The export formats: how each is written, how it is reloaded in its own runtime, and how close
its outputs must stay to the Keras model's.

Every format takes raw RGB 0–255 float32 images ``[N, H, W, 3]``. The ``.keras``, SavedModel and
ONNX exports accept any image size (the model resizes inside); the TFLite export has a fixed
``[N, S, S, 3]`` input (batch resizable), which is what mobile runtimes expect.

A multi-band model takes its N raw bands instead, float32 ``[N, H, W, bands]`` (TFLite
``[N, S, S, bands]``); its band normalisation is inside the model. The full-integer TFLite export
(uint8 inputs) is refused for it: raw 16-bit or float band values do not fit 0–255.

Tolerances (max |Δ probability| on real images) were measured on the test model with margin; see
``ExportFormat.tolerance``. They are the gate for float32 exports only: a quantized export
(float16, int8, int8_full) is judged by its answers instead (:mod:`cnn_studio.export.verify`).

TFLite quantizations:

* ``float16``: float16 weights, float32 inputs and outputs;
* ``int8``: dynamic range, int8 weights, float32 activations, inputs and outputs;
* ``int8_full``: full integer, int8 weights *and* activations calibrated on a representative set
  drawn from the run's training images, with **uint8 inputs** (the raw 0–255 pixels, scale 1) and
  **uint8 outputs** (probabilities × 256) — what phones' NPUs, the Edge TPU and microcontrollers need.
"""

from __future__ import annotations

import importlib.util
import sys
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cnn_studio.core import tf_runtime
from cnn_studio.core.errors import ExportError

QUANTIZATIONS = ("float32", "float16", "int8", "int8_full")
INTEGER_QUANTIZATIONS = ("int8_full",)
"""Quantizations whose exported model takes and gives integers (it needs a representative set)."""

Predictor = Callable[[np.ndarray], np.ndarray]
"""float32 ``[N, S, S, 3]`` raw pixels → ``[N, C]`` probabilities."""


# ---------------------------------------------------------------------------- writers


def _write_keras(model, path: Path, image_size: int, quantization: str, representative=None) -> None:
    model.save(path)


def _write_savedmodel(model, path: Path, image_size: int, quantization: str, representative=None) -> None:
    model.export(str(path), format="tf_saved_model", verbose=False)


def _write_tflite(model, path: Path, image_size: int, quantization: str,
                  representative: np.ndarray | None = None) -> None:
    """Convert through a SavedModel; ``representative`` (float32 ``[N, S, S, 3]`` training images) is
    needed for ``int8_full``."""
    import keras
    import tensorflow as tf

    with tempfile.TemporaryDirectory(prefix="cnn-studio-tflite-") as tmp:
        saved = Path(tmp) / "saved_model"
        channels = int(model.inputs[0].shape[-1])  # 3, or a multi-band model's band count
        if channels != 3 and quantization == "int8_full":
            raise ExportError(f"A full-integer TFLite export takes uint8 pixels (0–255); this model takes {channels} "
                              "raw bands, whose values do not fit 8 bits.",
                              "Choose float32, float16 or dynamic-range int8 for a multi-band model.")
        spec = keras.InputSpec(shape=(None, image_size, image_size, channels), dtype="float32")
        model.export(str(saved), format="tf_saved_model", verbose=False, input_signature=[spec])
        converter = tf.lite.TFLiteConverter.from_saved_model(str(saved))
        if quantization == "float16":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.target_spec.supported_types = [tf.float16]
        elif quantization == "int8":  # dynamic-range: int8 weights, float activations
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        elif quantization == "int8_full":  # full integer: uint8 in, uint8 out, int8 inside
            if representative is None or not len(representative):
                raise ExportError("A full-integer export needs a few training images to calibrate on; none "
                                  "could be read.", "Check that the run's training images are still in place, "
                                  "or choose dynamic-range int8.")
            images = np.asarray(representative, np.float32)
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.representative_dataset = lambda: ([image[None]] for image in images)
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            converter.inference_input_type = tf.uint8
            converter.inference_output_type = tf.uint8
        with tf_runtime.native_output_to_log():  # "fully_quantize: …" goes to the log
            data = converter.convert()
    path.write_bytes(data)


def _write_onnx(model, path: Path, image_size: int, quantization: str, representative=None) -> None:
    try:
        with warnings.catch_warnings():  # the np.object FutureWarning of keras' tf2onnx import, also in tests
            tf_runtime.quiet_library_warnings()
            model.export(str(path), format="onnx", verbose=False)
    except ImportError as exc:
        raise ExportError(f"ONNX export needs the tf2onnx package: {exc}.",
                          'Install it with `pip install "cnn-studio[onnx]"`, or choose another format.') from exc


# ---------------------------------------------------------------------------- reloaders


def _load_keras(path: Path) -> Predictor:
    import keras

    model = keras.saving.load_model(path, safe_mode=True)
    return lambda x: np.asarray(model.predict_on_batch(x))


def _load_savedmodel(path: Path) -> Predictor:
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))
    fn = loaded.signatures["serving_default"]
    (name,) = fn.structured_input_signature[1].keys()

    def predict(x: np.ndarray) -> np.ndarray:
        out = fn(**{name: tf.constant(x, tf.float32)})
        return next(iter(out.values())).numpy()

    return predict


def _interpreter(path: Path):
    try:
        from ai_edge_litert.interpreter import Interpreter  # the successor of tf.lite.Interpreter
    except ImportError:
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter  # noqa: N806 - a class
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "tf.lite.Interpreter is deprecated": it still works here
        with tf_runtime.native_output_to_log():
            return Interpreter(model_path=str(path))


def to_input(x: np.ndarray, detail: dict) -> np.ndarray:
    """Float pixels → the TFLite input's dtype (quantized with its scale and zero point when integer)."""
    dtype = np.dtype(detail["dtype"])
    if dtype.kind == "f":
        return np.asarray(x, dtype)
    scale, zero = detail["quantization"]
    info = np.iinfo(dtype)
    q = np.round(np.asarray(x, np.float64) / (scale or 1.0) + zero)
    return np.clip(q, info.min, info.max).astype(dtype)


def from_output(y: np.ndarray, detail: dict) -> np.ndarray:
    """A TFLite output → float probabilities (dequantized when integer)."""
    if np.dtype(detail["dtype"]).kind == "f":
        return np.asarray(y).copy()
    scale, zero = detail["quantization"]
    return (np.asarray(y, np.float64) - zero) * (scale or 1.0)


def _load_tflite(path: Path) -> Predictor:
    interp = _interpreter(path)
    inp = interp.get_input_details()[0]
    out = interp.get_output_details()[0]

    def predict(x: np.ndarray) -> np.ndarray:
        rows = []
        interp.resize_tensor_input(inp["index"], [1, *x.shape[1:]])
        with tf_runtime.native_output_to_log():  # "Created TensorFlow Lite XNNPACK delegate for CPU."
            interp.allocate_tensors()
        for image in x:
            interp.set_tensor(inp["index"], to_input(image[None], inp))
            interp.invoke()
            rows.append(from_output(interp.get_tensor(out["index"])[0], out))
        return np.stack(rows)

    return predict


def _load_onnx(path: Path) -> Predictor:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda x: np.asarray(session.run(None, {name: x.astype(np.float32)})[0])


# ---------------------------------------------------------------------------- usage snippets

_LOAD_IMAGE = 'x = np.asarray(Image.open("image.jpg").convert("RGB"){resize}, "float32")[None]'
_LOAD_BANDS = ('x = tifffile.imread("tile.tif").astype("float32")[None]  # [1, H, W, {bands}] raw band values'
               '{resize_note}')

_SNIPPETS = {
    "keras": ["import keras, numpy as np", "from PIL import Image",
              'model = keras.saving.load_model("{file}")', _LOAD_IMAGE,
              "print(model.predict(x))  # probabilities in labels.txt order"],
    "savedmodel": ["import numpy as np, tensorflow as tf", "from PIL import Image",
                   'infer = tf.saved_model.load("{file}").signatures["serving_default"]', _LOAD_IMAGE,
                   "print(list(infer(image=tf.constant(x)).values())[0].numpy())"],
    "tflite": ["import numpy as np, tensorflow as tf  # or ai_edge_litert.interpreter.Interpreter",
               "from PIL import Image",
               'it = tf.lite.Interpreter("{file}"); it.allocate_tensors()', _LOAD_IMAGE + "{integer}",
               'it.set_tensor(it.get_input_details()[0]["index"], x); it.invoke(); '
               'print(it.get_tensor(it.get_output_details()[0]["index"]){dequantize})'],
    "onnx": ["import numpy as np, onnxruntime as ort", "from PIL import Image",
             'sess = ort.InferenceSession("{file}")', _LOAD_IMAGE,
             "print(sess.run(None, {{sess.get_inputs()[0].name: x}})[0])"],
}


# ---------------------------------------------------------------------------- table


@dataclass(frozen=True)
class ExportFormat:
    """One export format.

    ``write(model, path, image_size, quantization)`` creates ``path`` (a file, or a folder when
    ``is_dir``); ``reload(path)`` returns a :data:`Predictor` running in the format's own runtime.
    """

    key: str
    label: str
    suffix: str
    is_dir: bool
    write: Callable[..., None]
    reload: Callable[[Path], Predictor]
    runtime: str
    fixed_size: bool = False
    quantizable: bool = False
    packages: tuple[tuple[str, str], ...] = ()
    """(import name, pip name) of every package writing and checking this format needs."""
    extra: str = ""
    """The install extra that brings those packages (``pip install "cnn-studio[onnx]"``)."""

    def missing_packages(self) -> list[str]:
        """The pip names of this format's packages that are not installed (found without importing them)."""

        missing = []
        for module, pip_name in self.packages:
            try:
                found = importlib.util.find_spec(module) is not None
            except (ImportError, ValueError):
                found = False
            if not found:
                missing.append(pip_name)
        return missing

    def install_hint(self) -> str:
        """The command that installs what this format misses ("" when nothing is missing)."""
        missing = self.missing_packages()
        if not missing:
            return ""
        command = f'pip install "cnn-studio[{self.extra}]"' if self.extra else "pip install " + " ".join(missing)
        if getattr(sys, "frozen", False):  # the desktop download has no pip: it was built without this add-on
            return (f"the CNN Studio download that includes it (this one was built without {', '.join(missing)}), "
                    f"or the pip install with `{command}`")
        return command

    def tolerance(self, quantization: str = "float32") -> float:
        """Largest accepted |Δ probability| against the Keras model (the gate for float32 only; a quantized
        export's difference is reported against it, and the export judged by its answers)."""
        if self.key == "tflite":
            return {"float32": 1e-4, "float16": 1e-2, "int8": 5e-2, "int8_full": 5e-2}[quantization]
        return {"keras": 1e-6, "savedmodel": 1e-5, "onnx": 1e-4}[self.key]

    def file_name(self, quantization: str = "float32") -> str:
        """The exported file (or folder) name inside the output folder."""
        stem = "saved_model" if self.is_dir else "model"
        if self.quantizable and quantization != "float32":
            stem += f"_{quantization}"
        return stem + self.suffix

    def snippet(self, file_name: str, image_size: int, quantization: str = "float32", bands: int = 0) -> str:
        """Five lines of Python that run the export in its own runtime (``bands``: a multi-band model's band count)."""
        resize = f".resize(({image_size}, {image_size}))" if self.fixed_size else ""
        integer = quantization in INTEGER_QUANTIZATIONS
        lines = list(_SNIPPETS[self.key])
        if bands:
            note = f"; resize the tile to {image_size}x{image_size} first" if self.fixed_size else ""
            lines = [(_LOAD_BANDS.format(bands=bands, resize_note=note) if line == _LOAD_IMAGE
                      else line.replace("from PIL import Image", "import tifffile"))
                     for line in lines]
        return "\n".join(line.format(file=file_name, resize=resize,
                                     integer=".astype(np.uint8)  # integer model: uint8 pixels in" if integer else "",
                                     dequantize=" / 256  # uint8 out: probability x 256" if integer else "")
                         for line in lines)


FORMATS: dict[str, ExportFormat] = {
    "keras": ExportFormat("keras", "Keras (.keras)", ".keras", False, _write_keras, _load_keras, "Keras 3",
                          packages=(("keras", "keras"),)),
    "savedmodel": ExportFormat("savedmodel", "TensorFlow SavedModel", "", True, _write_savedmodel,
                               _load_savedmodel, "TensorFlow (tf.saved_model.load / TF Serving)",
                               packages=(("tensorflow", "tensorflow"),)),
    "tflite": ExportFormat("tflite", "TensorFlow Lite (.tflite)", ".tflite", False, _write_tflite, _load_tflite,
                           "TFLite / LiteRT interpreter", fixed_size=True, quantizable=True,
                           packages=(("tensorflow", "tensorflow"),)),
    "onnx": ExportFormat("onnx", "ONNX (.onnx)", ".onnx", False, _write_onnx, _load_onnx, "ONNX Runtime",
                         packages=(("tf2onnx", "tf2onnx"), ("onnx", "onnx"), ("onnxruntime", "onnxruntime")),
                         extra="onnx"),
}


def get_format(key: str) -> ExportFormat:
    """The format named ``key`` (case-insensitive; "saved_model" also accepted).

    Raises :class:`ExportError` listing the valid names.
    """
    k = key.lower().replace("_", "").replace("-", "")
    if k not in FORMATS:
        raise ExportError(f"Export format: expected one of {', '.join(FORMATS)}, received {key!r}.")
    return FORMATS[k]
