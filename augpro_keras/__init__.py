"""AugPro: Augmentation with Projection for knowledge distillation (Keras 3)."""

import os

# keras-hub and the Distiller's train step need the TensorFlow backend.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# TensorFlow's C++ start-up notices (CUDA probing, oneDNN) are noise for users.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from augpro_keras.cli.quiet import native_start_up_notices_hidden  # noqa: E402

# Its CUDA probe and oneDNN notices are written before its logging starts.
with native_start_up_notices_hidden():
    import tensorflow  # noqa: E402, F401

from augpro_keras import augmentations  # noqa: E402
from augpro_keras import callbacks  # noqa: E402
from augpro_keras import checkpointing  # noqa: E402
from augpro_keras import layers  # noqa: E402
from augpro_keras import losses  # noqa: E402
from augpro_keras import models  # noqa: E402
from augpro_keras.distiller import Distiller  # noqa: E402

__version__ = "0.1.0"
