"""CNN Studio: fine-tune pretrained CNNs on folders of labeled images.

The engine package. It never imports Qt, and importing it does not import TensorFlow:
modules that need TensorFlow import it inside the functions that build or run models.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
