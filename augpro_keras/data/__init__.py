"""Data: tokenizers, packing into model inputs, GLUE and user files, splits."""

from augpro_keras.data.examples import TextExamples
from augpro_keras.data.glue import GLUE_TASKS
from augpro_keras.data.glue import GlueTask
from augpro_keras.data.glue import get_glue_task
from augpro_keras.data.glue import glue_dataset
from augpro_keras.data.glue import load_glue
from augpro_keras.data.preprocessing import TextPacker
from augpro_keras.data.preprocessing import batch_text_dataset
from augpro_keras.data.preprocessing import make_dataset
from augpro_keras.data.splits import labeled_unlabeled_split
from augpro_keras.data.splits import take_fraction
from augpro_keras.data.text_dataset import TextDataset
from augpro_keras.data.tokenizers import SpecialTokens
from augpro_keras.data.tokenizers import bert_preprocessor
from augpro_keras.data.tokenizers import compute_wordpiece_vocabulary
from augpro_keras.data.tokenizers import detokenize
from augpro_keras.data.tokenizers import read_vocabulary_file
from augpro_keras.data.tokenizers import sentencepiece_tokenizer
from augpro_keras.data.tokenizers import special_tokens
from augpro_keras.data.tokenizers import train_sentencepiece
from augpro_keras.data.tokenizers import wordpiece_tokenizer
from augpro_keras.data.tsv import load_text_classification_file
from augpro_keras.data.tsv import text_classification_dataset

__all__ = [
    "GLUE_TASKS",
    "GlueTask",
    "SpecialTokens",
    "TextDataset",
    "TextExamples",
    "TextPacker",
    "batch_text_dataset",
    "bert_preprocessor",
    "compute_wordpiece_vocabulary",
    "detokenize",
    "get_glue_task",
    "glue_dataset",
    "labeled_unlabeled_split",
    "load_glue",
    "load_text_classification_file",
    "make_dataset",
    "read_vocabulary_file",
    "sentencepiece_tokenizer",
    "special_tokens",
    "take_fraction",
    "text_classification_dataset",
    "train_sentencepiece",
    "wordpiece_tokenizer",
]
