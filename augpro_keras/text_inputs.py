"""Raw-text datasets for the Distiller: preprocessing in the input pipeline.

keras-hub tasks run their preprocessor inside `fit`, `evaluate` and
`predict`, as a `tf.data` map, not in the model graph; the Distiller does
the same with one preprocessor for both models (they share one
vocabulary), and a saved pair of tasks shares it again when reloaded. The preprocessor's outputs keep the batch's static size, so a
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


def preprocessor_for(teacher, student, teacher_view, student_view):
    """The preprocessor that tokenizes raw strings for a teacher and student.

    The student's when it gives every input that the two models take, else
    the teacher's (a DistilBERT student gives no segment ids, which a BERT
    teacher reads for sentence pairs).

    Args:
        teacher, student: the models as given (keras-hub tasks carry
            `preprocessor`).
        teacher_view, student_view: the same models through the
            `DistillableClassifier` protocol (their `input_names`).
    """
    needed = set()
    for view in (teacher_view, student_view):
        needed |= set(getattr(view, "input_names", ("token_ids", "padding_mask")))
    return choose_preprocessor([("student", student), ("teacher", teacher)], needed)


def deserialize_pair(teacher_config, student_config):
    """`(teacher, student)` from their serialized configs, sharing a preprocessor again.

    keras-hub tasks that shared one preprocessor when they were saved share
    it again, so that a saved model holds its tokenizer's vocabulary (an
    asset) once.
    """
    # Read before deserializing: keras-hub's `from_config` replaces the
    # preprocessor's config by the object in place.
    shared = _without_sharing_ids(teacher_config.get("config", {}).get("preprocessor"))
    inner = dict(student_config.get("config", {}))
    teacher = keras.saving.deserialize_keras_object(teacher_config)
    if shared is not None and _without_sharing_ids(inner.get("preprocessor")) == shared:
        inner["preprocessor"] = teacher.preprocessor
        student_config = dict(student_config, config=inner)
    return teacher, keras.saving.deserialize_keras_object(student_config)


def _without_sharing_ids(config):
    """A serialized config without Keras's `shared_object_id` marks."""
    if isinstance(config, dict):
        return {k: _without_sharing_ids(v) for k, v in config.items() if k != "shared_object_id"}
    if isinstance(config, list):
        return [_without_sharing_ids(v) for v in config]
    return config
