"""Raw-text datasets for the Distiller: preprocessing in the input pipeline.

keras-hub tasks run their preprocessor inside `fit`, `evaluate` and
`predict`, as a `tf.data` map, not in the model graph; the Distiller does
the same with one preprocessor for both models (they share one
vocabulary). The preprocessor's outputs keep the batch's static size, so a
dataset batched with `drop_remainder=True` stays XLA- and TPU-ready.
"""

import keras
import tensorflow as tf


def holds_text(dataset):
    """Whether the inputs of a `tf.data` dataset's elements are strings."""
    if not isinstance(dataset, tf.data.Dataset):
        return False
    spec = dataset.element_spec
    x = spec[0] if isinstance(spec, tuple) else spec
    return any(s.dtype == tf.string for s in tf.nest.flatten(x))


def choose_preprocessor(models, needed_keys):
    """The first model's preprocessor whose outputs hold every key in `needed_keys`.

    Args:
        models: `(role, model)` pairs in order of preference (the student
            first: it is the model that ships with its preprocessor).
        needed_keys: the input names the models take together.

    Raises:
        ValueError: when no model has a preprocessor, or none gives all keys.
    """
    found = []
    for role, model in models:
        preprocessor = getattr(model, "preprocessor", None)
        if preprocessor is None:
            continue
        keys = set(preprocessor(tf.constant(["a"])))
        if set(needed_keys) <= keys:
            return preprocessor
        found.append(f"the {role}'s {type(preprocessor).__name__} gives {sorted(keys)}")
    if not found:
        raise ValueError(
            "The dataset holds raw strings, but neither the teacher nor the student has a "
            "preprocessor to tokenize them: attach one (keras-hub tasks take "
            "`preprocessor=`) or give the Distiller preprocessed inputs (dicts of "
            "token_ids, padding_mask, segment_ids)."
        )
    raise ValueError(
        f"The models take the inputs {sorted(needed_keys)}, but " + "; ".join(found) + "."
    )


def preprocess(dataset, preprocessor):
    """Maps `preprocessor` over a batched dataset of strings (and labels).

    Elements may be `x`, `(x,)`, `(x, y)` or `(x, y, sample_weight)` with `x`
    a batch of strings or a tuple of string batches (sentence pairs), as
    keras-hub's `TextClassifier.fit` takes them. The outputs' batch size is
    the inputs' static batch size where it has one.
    """

    def map_fn(*element):
        # `tf.data` passes a tuple element's parts as arguments: `(x,)`,
        # `(x, y)` or `(x, y, sample_weight)`, with `x` itself a pair of
        # string batches for sentence pairs.
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(element)
        batch_size = tf.nest.flatten(x)[0].shape[0]
        outputs = preprocessor(x, y, sample_weight)
        return tf.nest.map_structure(
            lambda t: tf.ensure_shape(t, [batch_size] + t.shape[1:]) if t.shape.rank else t, outputs
        )

    return dataset.map(map_fn, num_parallel_calls=tf.data.AUTOTUNE)
