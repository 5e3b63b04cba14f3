"""Models that implement the Distiller's protocol."""

from augpro_keras.models.bert_classifier import BertClassifier
from augpro_keras.models.enct5_classifier import EncT5Classifier
from augpro_keras.models.presets import minilm_l6_path
from augpro_keras.models.presets import special_token_ids_from_tokenizer
from augpro_keras.models.protocol import DistillableClassifier
from augpro_keras.models.students import bert_student_from_config
from augpro_keras.models.students import bert_student_from_teacher
from augpro_keras.models.tiny_transformer import TinyTransformerClassifier

__all__ = [
    "BertClassifier",
    "DistillableClassifier",
    "EncT5Classifier",
    "TinyTransformerClassifier",
    "bert_student_from_config",
    "bert_student_from_teacher",
    "minilm_l6_path",
    "special_token_ids_from_tokenizer",
]
