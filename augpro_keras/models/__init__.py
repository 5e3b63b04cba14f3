"""Models for the Distiller.

keras-hub `TextClassifier` tasks of every family go in as they are (the
Distiller runs them through `TextClassifierAdapter`); `keras_hub_students`
makes students of them. `EncT5Classifier` (T5 encoder + one decoder layer)
and the small `TinyTransformerClassifier` implement the
`DistillableClassifier` protocol themselves.
"""

from augpro_keras.models.enct5_classifier import EncT5Classifier
from augpro_keras.models.keras_hub_students import student_from_config
from augpro_keras.models.keras_hub_students import student_from_teacher
from augpro_keras.models.presets import minilm_l6_path
from augpro_keras.models.presets import special_token_ids_from_tokenizer
from augpro_keras.models.protocol import DistillableClassifier
from augpro_keras.models.protocol import as_distillable
from augpro_keras.models.serving import export_text_classifier
from augpro_keras.models.text_classifier_adapter import TextClassifierAdapter
from augpro_keras.models.tiny_transformer import TinyTransformerClassifier

__all__ = [
    "DistillableClassifier",
    "EncT5Classifier",
    "TextClassifierAdapter",
    "TinyTransformerClassifier",
    "as_distillable",
    "export_text_classifier",
    "minilm_l6_path",
    "special_token_ids_from_tokenizer",
    "student_from_config",
    "student_from_teacher",
]
