"""Registers the package's public classes with Keras serialization."""

import keras

export = keras.saving.register_keras_serializable(package="augpro_keras")
