"""Tiny teachers, students and batches for fast tests."""

import keras
import numpy as np
import tensorflow as tf

from augpro_keras.models import TinyTransformerClassifier

VOCAB = 48
PAD, UNK, CLS, SEP = 0, 1, 2, 3
SPECIAL = (PAD, UNK, CLS, SEP)


def model(num_layers=2, hidden_dim=16, seed=0, num_classes=3, vocabulary_size=VOCAB, dropout=0.0):
    keras.utils.set_random_seed(seed)
    return TinyTransformerClassifier(
        vocabulary_size=vocabulary_size,
        num_classes=num_classes,
        hidden_dim=hidden_dim,
        num_layers=num_layers,
        num_heads=2,
        intermediate_dim=2 * hidden_dim,
        max_sequence_length=64,
        dropout=dropout,
        special_token_ids=SPECIAL,
    )


def pair(num_classes=3, seed=0):
    """A 2-layer teacher (hidden 16) and a 1-layer student (hidden 8)."""
    return (
        model(num_layers=2, hidden_dim=16, seed=seed, num_classes=num_classes),
        model(num_layers=1, hidden_dim=8, seed=seed + 1, num_classes=num_classes),
    )


def smallest_pair(num_classes=3, seed=0):
    """One layer of width 8 each: the cheapest models to compile with XLA."""
    return (
        model(num_layers=1, hidden_dim=8, seed=seed, num_classes=num_classes),
        model(num_layers=1, hidden_dim=8, seed=seed + 1, num_classes=num_classes),
    )


def batch(batch_size=8, length=10, seed=0, num_classes=3, pairs=True):
    """`[CLS] a [SEP] b [SEP] pad...` rows of varied length, and labels."""
    rng = np.random.default_rng(seed)
    ids = np.zeros((batch_size, length), "int32")
    segments = np.zeros((batch_size, length), "int32")
    for row in range(batch_size):
        n = int(rng.integers(4, length + 1))
        ids[row, :n] = rng.integers(4, VOCAB, size=n)
        ids[row, 0] = CLS
        ids[row, n - 1] = SEP
        if pairs and n >= 6:
            ids[row, n // 2] = SEP
            segments[row, n // 2 + 1 : n] = 1
    x = {"token_ids": ids, "padding_mask": ids != PAD, "segment_ids": segments}
    y = rng.integers(0, num_classes, size=batch_size).astype("int32")
    return x, y


def dataset(batch_size=8, num_batches=1, labeled=True, seed=0, length=10):
    x, y = batch(batch_size * num_batches, length=length, seed=seed)
    data = (x, y) if labeled else x
    return tf.data.Dataset.from_tensor_slices(data).batch(batch_size, drop_remainder=True)
