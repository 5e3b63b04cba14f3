"""Models for the Distiller.

keras-hub `TextClassifier` tasks of every family go in as they are (the
Distiller runs them through `TextClassifierAdapter`); `keras_hub_students`
makes students of them. EncT5 (T5 encoder + one decoder layer, the paper's
model; keras-hub has no T5 classifier) is a keras-hub-style task of this
package: `EncT5TextClassifier` on an `EncT5Backbone`, with
`EncT5TextClassifierPreprocessor` and `EncT5Tokenizer`. The small
`TinyTransformerClassifier` implements the `DistillableClassifier` protocol
itself.
"""

from augpro_keras.models.enct5_backbone import EncT5Backbone
from augpro_keras.models.enct5_preprocessor import EncT5TextClassifierPreprocessor
from augpro_keras.models.enct5_text_classifier import EncT5TextClassifier
from augpro_keras.models.enct5_tokenizer import EncT5Tokenizer
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
    "EncT5Backbone",
    "EncT5TextClassifier",
    "EncT5TextClassifierPreprocessor",
    "EncT5Tokenizer",
    "TextClassifierAdapter",
    "TinyTransformerClassifier",
    "as_distillable",
    "export_text_classifier",
    "minilm_l6_path",
    "special_token_ids_from_tokenizer",
    "student_from_config",
    "student_from_teacher",
]
