"""The three AugPro layers."""

from augpro_keras.layers.embedding_projection import EmbeddingProjection
from augpro_keras.layers.fgsm_perturb import FGSMPerturb
from augpro_keras.layers.mixup_embedding import MixUpEmbedding

__all__ = ["EmbeddingProjection", "FGSMPerturb", "MixUpEmbedding"]
