"""The augmentations of the paper, usable in `Distiller(augmentations=[...])`.

By name: "mixup", "augpro_mix", "tmix", "fgsm", "augpro_fgsm", "knn",
"random_tokens" (defaults), or as instances for other settings.
"""

from augpro_keras.augmentations.base import Augmentation
from augpro_keras.augmentations.base import AugmentationOutput
from augpro_keras.augmentations.base import DistillationSettings
from augpro_keras.augmentations.base import StepContext
from augpro_keras.augmentations.base import available
from augpro_keras.augmentations.base import get
from augpro_keras.augmentations.base import get_class
from augpro_keras.augmentations.fgsm import FGSM
from augpro_keras.augmentations.fgsm import AugProFGSM
from augpro_keras.augmentations.mixup import AugProMix
from augpro_keras.augmentations.mixup import MixUp
from augpro_keras.augmentations.mixup import TMix
from augpro_keras.augmentations.token_replacement import KNNReplacement
from augpro_keras.augmentations.token_replacement import RandomTokens

__all__ = [
    "Augmentation",
    "AugmentationOutput",
    "AugProFGSM",
    "AugProMix",
    "DistillationSettings",
    "FGSM",
    "KNNReplacement",
    "MixUp",
    "RandomTokens",
    "StepContext",
    "TMix",
    "available",
    "get",
    "get_class",
]
