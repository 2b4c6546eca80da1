"""The table of backbones CNN Studio can fine-tune. Strings and numbers only: no TensorFlow import.

Each :class:`Backbone` names its constructor lazily as ``"module:attr"`` (imported only when a
model is built), the preprocessing its ImageNet weights expect (built into the model, see
``preprocessing.py``), its default and minimum input sizes, the Keras cache file name of its
no-top ImageNet weights, the width of its pooled features and a plain-words "when to pick it"; it
knows its image-size rule, its weights choices and how to build its headless network.
:func:`get` turns a key (a CLI option, a config.json value) into a :class:`Backbone` once; the rest of
the engine passes the object. The bottom of the backbones package: it imports none of its modules.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from cnn_studio.core.errors import ConfigError

WEIGHTS_KINDS = ("imagenet", "none", "file")  # a weights setting's kinds (weights.parse_weights reads them)


@dataclass(frozen=True)
class Backbone:
    """One backbone: everything the app shows or needs before TensorFlow is imported, and how to build it."""

    key: str
    label: str
    family: str
    constructor: str  # "module:attr", a keras.applications-style function
    preprocess: str  # "caffe" | "tf" | "torch" | "unit" | "none"
    input_size: int  # default (and ImageNet training) size
    min_size: int
    weights_file_notop: str | None  # file in ~/.keras/models; None = no pretrained weights
    feature_width: int
    params_millions: float
    speed: str  # "fast" | "medium" | "slow" (on a laptop CPU)
    when_to_pick: str
    constructor_kwargs: tuple[tuple[str, object], ...] = ()
    # fine-tuning on kept activations compiles with XLA on a CPU (when ``jit`` is "auto"): measured faster only
    # for VGG's plain convolutions; slower for separable/depthwise ones (bench/xla_fine_tune.py)
    xla_on_cpu: bool = False

    @property
    def has_pretrained_weights(self) -> bool:
        return self.weights_file_notop is not None

    def weights_choices(self) -> tuple[str, ...]:
        """The weights kinds this backbone takes, its default first: ImageNet, none or a file; without
        pretrained weights, none (from scratch) or a file."""
        return WEIGHTS_KINDS if self.has_pretrained_weights else ("none", "file")

    @property
    def default_weights(self) -> str:
        """The weights it gets when none were given: "imagenet" with pretrained weights, else "none"."""
        return self.weights_choices()[0]

    def image_size(self, requested: int | None = None) -> int:
        """The side images are resized to: ``requested``, or this backbone's default when ``None``/0.

        The one place of the size rule: raises :class:`ConfigError` below ``min_size``.
        """
        size = int(requested or self.input_size)
        if size < self.min_size:
            raise ConfigError(f"Image size for {self.label}: expected at least {self.min_size} pixels, "
                              f"received {size}.", f"Use {self.input_size} (its default) or more.")
        return size

    def weights_file_for(self, image_size: int | None) -> str | None:
        """The no-top weights file Keras looks for at ``image_size`` (MobileNetV2's depends on it)."""
        if self.key == "mobilenet_v2" and self.weights_file_notop:
            rows = image_size if image_size in (96, 128, 160, 192, 224) else 224
            return f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_{rows}_no_top.h5"
        return self.weights_file_notop

    def keras_constructor(self):
        """The Keras constructor function (``keras.applications.VGG16`` ...), imported now (TensorFlow)."""
        module, attr = self.constructor.split(":")
        return getattr(importlib.import_module(module), attr)

    def build_base(self, image_size: int | None = None, channels: int = 3):
        """The headless network (no top, no pooling, no weights loaded) for ``channels``-channel images of
        :meth:`image_size` (``image_size``). Not ``name=``: EfficientNetV2 looks its blocks up by its own name."""
        size = self.image_size(image_size)
        return self.keras_constructor()(**dict(self.constructor_kwargs), include_top=False, weights=None,
                                        input_shape=(size, size, channels), pooling=None)


_K = "keras.applications"
_SPECS: tuple[Backbone, ...] = (
    Backbone("small_cnn", "Small CNN (from scratch)", "Custom", "cnn_studio.backbones.small_cnn:SmallCNN",
             "unit", 64, 16, None, 128, 0.1, "fast",
             "Trains from scratch in seconds on a CPU; for small, simple images (digits, symbols, "
             "parts on a plain background) or when no pretrained weights are available."),
    Backbone("mobilenet_v2", "MobileNetV2", "MobileNet", f"{_K}.mobilenet_v2:MobileNetV2", "tf", 224, 32,
             "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5", 1280, 2.3, "fast",
             "A good first choice: small and fast, accurate enough for most tasks, runs on phones."),
    Backbone("mobilenet_v3_small", "MobileNetV3 Small", "MobileNet", f"{_K}:MobileNetV3Small",
             "none", 224, 32, "weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5", 576, 0.9, "fast",
             "The smallest and fastest; pick it for microcontrollers, phones or very slow computers.",
             (("include_preprocessing", True),)),
    Backbone("mobilenet_v3_large", "MobileNetV3 Large", "MobileNet", f"{_K}:MobileNetV3Large",
             "none", 224, 32, "weights_mobilenet_v3_large_224_1.0_float_no_top_v2.h5", 960, 3.0, "fast",
             "Fast like MobileNetV2 and a little more accurate; good for phone apps.",
             (("include_preprocessing", True),)),
    Backbone("efficientnet_b0", "EfficientNetB0", "EfficientNet", f"{_K}.efficientnet:EfficientNetB0", "none",
             224, 32, "efficientnetb0_notop.h5", 1280, 4.0, "medium",
             "Very accurate for its size; a strong default when a GPU is available."),
    Backbone("efficientnet_b1", "EfficientNetB1", "EfficientNet", f"{_K}.efficientnet:EfficientNetB1", "none",
             240, 32, "efficientnetb1_notop.h5", 1280, 6.6, "medium",
             "A step up from B0 for finer detail, at 240-pixel images."),
    Backbone("efficientnet_b2", "EfficientNetB2", "EfficientNet", f"{_K}.efficientnet:EfficientNetB2", "none",
             260, 32, "efficientnetb2_notop.h5", 1408, 7.8, "medium",
             "More accuracy for fine-grained classes (plant diseases, tissue types); needs a GPU."),
    Backbone("efficientnet_b3", "EfficientNetB3", "EfficientNet", f"{_K}.efficientnet:EfficientNetB3", "none",
             300, 32, "efficientnetb3_notop.h5", 1536, 10.8, "slow",
             "High accuracy on detailed 300-pixel images; slow on a CPU."),
    Backbone("efficientnet_v2_b0", "EfficientNetV2B0", "EfficientNet", f"{_K}.efficientnet_v2:EfficientNetV2B0",
             "none", 224, 32, "efficientnetv2-b0_notop.h5", 1280, 5.9, "medium",
             "The newer EfficientNet: trains faster than B0 with similar accuracy.",
             (("include_preprocessing", True),)),
    Backbone("resnet50", "ResNet50", "ResNet", f"{_K}.resnet:ResNet50", "caffe", 224, 32,
             "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5", 2048, 23.6, "medium",
             "The classic, widely published baseline; a safe choice for papers and comparisons."),
    Backbone("resnet50_v2", "ResNet50V2", "ResNet", f"{_K}.resnet_v2:ResNet50V2", "tf", 224, 32,
             "resnet50v2_weights_tf_dim_ordering_tf_kernels_notop.h5", 2048, 23.6, "medium",
             "ResNet50 with improved training; often fine-tunes a little better."),
    Backbone("vgg16", "VGG16", "VGG", f"{_K}.vgg16:VGG16", "caffe", 224, 32,
             "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5", 512, 14.7, "slow",
             "Simple and well understood, easy to explain layer by layer; large and slow.", xla_on_cpu=True),
    Backbone("vgg19", "VGG19", "VGG", f"{_K}.vgg19:VGG19", "caffe", 224, 32,
             "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5", 512, 20.0, "slow",
             "VGG16 with three more layers; pick it to reproduce work that used VGG19.", xla_on_cpu=True),
    Backbone("inception_v3", "InceptionV3", "Inception", f"{_K}.inception_v3:InceptionV3", "tf", 299, 75,
             "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5", 2048, 21.8, "slow",
             "Looks at several scales at once; a proven choice for medical images (299-pixel input)."),
    Backbone("xception", "Xception", "Inception", f"{_K}.xception:Xception", "tf", 299, 71,
             "xception_weights_tf_dim_ordering_tf_kernels_notop.h5", 2048, 20.9, "slow",
             "An efficient Inception successor; accurate at 299 pixels, needs a GPU to be pleasant."),
    Backbone("densenet121", "DenseNet121", "DenseNet", f"{_K}.densenet:DenseNet121", "torch", 224, 32,
             "densenet121_weights_tf_dim_ordering_tf_kernels_notop.h5", 1024, 7.0, "medium",
             "Reuses features densely; popular for chest X-rays (CheXNet) and other medical images."),
    Backbone("convnext_tiny", "ConvNeXt Tiny", "ConvNeXt", f"{_K}.convnext:ConvNeXtTiny", "none", 224, 32,
             "convnext_tiny_notop.h5", 768, 27.8, "slow",
             "A modern CNN with transformer-era design; the most accurate here, needs a GPU.",
             (("include_preprocessing", True),)),
)

_BY_KEY = {s.key: s for s in _SPECS}

DEFAULT_BACKBONE = "mobilenet_v2"
"""What a new run trains when no backbone was chosen (the CLI, the Model step, the label check)."""
FALLBACK_BACKBONE = "small_cnn"
"""What trains instead when the default backbone's pretrained weights cannot be had (it needs none)."""


def _normalise(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


_ALIASES = {_normalise(s.key): s.key for s in _SPECS} | {_normalise(s.label): s.key for s in _SPECS}


def all_specs() -> tuple[Backbone, ...]:
    """Every backbone, in display order (small and fast first)."""
    return _SPECS


def keys() -> tuple[str, ...]:
    return tuple(s.key for s in _SPECS)


def get(key: str) -> Backbone:
    """The backbone for ``key`` (case and punctuation ignored: "VGG16", "InceptionV3", "mobilenet-v2").

    Raises
    ------
    ConfigError
        For an unknown name, listing the valid keys.
    """
    if not isinstance(key, str):
        raise TypeError(f"registry.get takes a backbone key, received a {type(key).__name__}: pass the Backbone "
                        "itself (call get once, where the key comes in)")
    found = _ALIASES.get(_normalise(str(key)))
    if found is None:
        raise ConfigError(f"Unknown backbone: expected one of {', '.join(keys())}, received {key!r}.",
                          "Run `cnn-studio backbones` to see them with their sizes and when to pick each.")
    return _BY_KEY[found]
