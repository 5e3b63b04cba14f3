"""Small tokenizers shared by the data tests (keras-hub tokenizers)."""

import numpy as np
import pytest
import tensorflow as tf

CORPUS = [
    "a man is playing a flute .",
    "a woman is slicing an onion .",
    "the movie was great and the actors were wonderful .",
    "the plot is thin but the music is lovely .",
    "two dogs are running through a field .",
    "a child is riding a horse on the beach .",
    "the film is a charming and often affecting journey .",
    "nobody expected the ending of this story .",
] * 4

WORDPIECE_VOCAB = [
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",
    "a", "man", "is", "play", "##ing", "flute", "the", "movie", "was", "great",
    "!", ".", ",", "cafe", "##s", "dog", "run", "##n", "music",
]


@pytest.fixture(scope="session")
def sentencepiece_tokenizer():
    from augpro_keras.data import train_sentencepiece

    return train_sentencepiece(CORPUS, vocabulary_size=64)


@pytest.fixture(scope="session")
def wordpiece_vocab_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("vocab") / "vocab.txt"
    path.write_text("\n".join(WORDPIECE_VOCAB) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def wordpiece_tokenizer(wordpiece_vocab_file):
    from augpro_keras.data import wordpiece_tokenizer

    return wordpiece_tokenizer(wordpiece_vocab_file, lowercase=True)


def token_ids(tokenizer, texts):
    """A keras-hub tokenizer's ids of a text (list of ints) or texts (lists of ints)."""
    ids = tokenizer(texts)
    if isinstance(ids, tf.RaggedTensor):
        return ids.to_list()
    if isinstance(ids, list):
        return [np.asarray(row).tolist() for row in ids]
    return np.asarray(ids).tolist()
