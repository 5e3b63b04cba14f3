"""Models that implement the Distiller's protocol."""

from augpro_keras.models.protocol import DistillableClassifier
from augpro_keras.models.tiny_transformer import TinyTransformerClassifier

__all__ = ["DistillableClassifier", "TinyTransformerClassifier"]
