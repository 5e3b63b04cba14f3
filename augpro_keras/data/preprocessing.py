"""Packing texts into fixed-length model inputs, and `tf.data` pipelines."""

import numpy as np
import tensorflow as tf

from augpro_keras.data.tokenizers import copy_tokenizer
from augpro_keras.data.tokenizers import is_preprocessor
from augpro_keras.data.tokenizers import keras_hub_tokenizer
from augpro_keras.data.tokenizers import special_tokens

_TRUNCATE = ("round_robin", "waterfall")


def _check_positive_int(value, name, minimum=1):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"`{name}` must be an int >= {minimum}. Received: {name}={value!r}")


class TextPacker:
    """Turns a text or a text pair into fixed-length model inputs.

    With a keras-hub preprocessor (`TextClassifierPreprocessor`), it packs:
    every family gets its own layout (`[CLS] a [SEP] b [SEP]` for BERT,
    `<s> a </s></s> b </s>` for RoBERTa, ...) and its own ids, with its
    sequence length set to `sequence_length`. With a keras-hub tokenizer the
    layout is `[CLS] a [SEP] b [SEP]` for tokenizers with a start token
    (BERT WordPiece, or SentencePiece with `[CLS]`/`[SEP]` pieces), else
    `a </s> b </s>` (T5-style SentencePiece; keras-hub has no such packer
    for a bare tokenizer). Segment ids are 0 for the first
    text with its separator (and `[CLS]`), 1 for the second text with its
    separator, 0 at padding. Too long inputs are truncated by
    `keras_hub.layers.MultiSegmentPacker`; `"round_robin"` takes one token at
    a time from each text, so the shorter text keeps most of its tokens.

    Works eagerly and inside `tf.data` / `tf.function`.

    Args:
        tokenizer: a keras-hub tokenizer or text-classifier preprocessor.
        sequence_length: int, length of every output row.
        truncate: `"round_robin"` or `"waterfall"` (cut the last text first).

    Call arguments:
        texts_a: str, list of str, or string tensor (scalar or `[B]`).
        texts_b: optional second texts, same shape as `texts_a`.

    Returns:
        A dict with `"token_ids"` (int32), `"padding_mask"` (bool, true at
        real tokens) and `"segment_ids"` (int32), each `[B, sequence_length]`
        (or `[sequence_length]` for a single text).

    Example:
    ```python
    packer = TextPacker(tokenizer, sequence_length=16)
    inputs = packer(["A man plays."], ["Someone plays music."])
    inputs["token_ids"].shape  # (1, 16)
    ```
    """

    def __init__(self, tokenizer, sequence_length, truncate="round_robin"):
        import keras_hub  # Deferred: importing keras-hub takes seconds.

        keras_hub_tokenizer(tokenizer)  # Refuses anything else.
        _check_positive_int(sequence_length, "sequence_length", minimum=3)
        if truncate not in _TRUNCATE:
            raise ValueError(f"`truncate` must be one of {_TRUNCATE}. Received: {truncate!r}")
        self.tokenizer = tokenizer
        self.sequence_length = int(sequence_length)
        self.truncate = truncate
        self._specials = special_tokens(tokenizer)
        if is_preprocessor(tokenizer):
            # A keras-hub preprocessor packs in its family's own layout.
            tokenizer.sequence_length = self.sequence_length
            self._packer = None
            return
        specials = self._specials
        self._packer = keras_hub.layers.MultiSegmentPacker(
            sequence_length=self.sequence_length,
            start_value=[] if specials.start is None else [specials.start],
            end_value=specials.end,
            pad_value=specials.pad,
            truncate=truncate,
            _allow_python_workflow=False,
        )

    def __call__(self, texts_a, texts_b=None):
        if self._packer is None:
            return self._preprocessor_inputs(texts_a, texts_b)
        segments = [self._tokenize(texts_a, "texts_a")]
        if texts_b is not None:
            segments.append(self._tokenize(texts_b, "texts_b"))
        token_ids, segment_ids = self._packer(tuple(segments))
        token_ids = tf.cast(token_ids, tf.int32)
        return {
            "token_ids": token_ids,
            "padding_mask": tf.not_equal(token_ids, self._specials.pad),
            "segment_ids": tf.cast(segment_ids, tf.int32),
        }

    def _preprocessor_inputs(self, texts_a, texts_b):
        as_tensor = lambda t: tf.constant(t) if isinstance(t, (str, list, tuple)) else t  # noqa: E731
        x = as_tensor(texts_a) if texts_b is None else (as_tensor(texts_a), as_tensor(texts_b))
        # `x=`: a tuple passed alone would be read as `(x, y)`.
        inputs = dict(self.tokenizer(x=x))
        token_ids = tf.cast(inputs["token_ids"], tf.int32)
        # Families without a padding mask (F-Net, RoFormerV2) or segment ids
        # (DistilBERT, RoBERTa, ...) get them as the other families have them.
        padding_mask = inputs.get("padding_mask")
        if padding_mask is None:
            padding_mask = tf.not_equal(token_ids, self._specials.pad)
        segment_ids = inputs.get("segment_ids")
        if segment_ids is None:
            segment_ids = tf.zeros_like(token_ids)
        return {
            "token_ids": token_ids,
            "padding_mask": tf.cast(padding_mask, tf.bool),
            "segment_ids": tf.cast(segment_ids, tf.int32),
        }

    def _tokenize(self, texts, name):
        if isinstance(texts, str) or (isinstance(texts, (list, tuple)) and texts):
            texts = tf.constant(texts)
        if not isinstance(texts, tf.Tensor) or texts.dtype != tf.string:
            raise ValueError(
                f"`{name}` must be a str, a non-empty list of str or a string tensor. "
                f"Received: {type(texts).__name__}"
            )
        # Traced (tf.data, tf.function): a copy whose TensorFlow ops belong to
        # this graph, since keras-hub keeps the ops of the first graph it ran in.
        tokenizer = self.tokenizer if tf.executing_eagerly() else copy_tokenizer(self.tokenizer)
        token_ids = tokenizer(texts)
        if isinstance(token_ids, (tf.Tensor, tf.RaggedTensor)):
            return token_ids
        # keras-hub's Python path (eager calls): lists or an array of ids.
        return tf.ragged.constant(token_ids if isinstance(token_ids, list)
                                  else np.asarray(token_ids).tolist(), dtype=tf.int32)


def _labels_array(labels, n):
    values = np.asarray(labels)
    if values.ndim != 1 or len(values) != n:
        raise ValueError(
            f"`labels` must be a flat list with one label per text ({n}). "
            f"Received shape {values.shape}."
        )
    if values.dtype.kind in "iu":
        return values.astype(np.int32)
    if values.dtype.kind == "f":
        return values.astype(np.float32)
    raise ValueError(
        "`labels` must be int class ids or float scores (regression). Received "
        f"values of type {values.dtype} such as {values[:3].tolist()}; map string "
        "labels to ids first (e.g. with load_text_classification_file)."
    )


def _as_text_batch(*element):
    texts = element[0]
    x = texts["texts_a"] if "texts_b" not in texts else (texts["texts_a"], texts["texts_b"])
    return (x,) + tuple(element[1:])


def make_dataset(
    texts_a,
    texts_b,
    labels,
    tokenizer,
    sequence_length,
    batch_size,
    shuffle=False,
    seed=None,
    drop_remainder=False,
):
    """A batched `tf.data.Dataset` of packed model inputs (and labels).

    Elements are `(inputs, labels)`, or `inputs` alone when `labels` is
    `None` (unlabeled distillation data); `inputs` is the dict of
    `TextPacker`. With a keras-hub preprocessor (keras-hub models)
    the elements hold the batch's raw strings instead, `(texts, labels)` or
    `(texts,)` with `texts` a string batch or a pair of them, which keras-hub
    tasks and the Distiller tokenize themselves. Labels are int32 class ids, or float32 scores when the
    labels are floats (regression). Texts are tokenized batch by batch in
    the pipeline. For training (XLA, TPU) pass `drop_remainder=True`: every
    batch then has the static shape `[batch_size, sequence_length]`. For
    evaluation keep `drop_remainder=False` so that no example is left out.

    Args:
        texts_a: list of str.
        texts_b: `None` or a list of str of the same length (text pairs).
        labels: `None` or a list of ints / floats, one per text.
        tokenizer: a keras-hub tokenizer or text-classifier preprocessor.
        sequence_length: int, the length of every row.
        batch_size: int.
        shuffle: whether to shuffle the examples (again every epoch).
        seed: optional int seed of the shuffle.
        drop_remainder: whether to drop the last, smaller batch.

    Returns:
        A `tf.data.Dataset`.

    Example:
    ```python
    texts_a, texts_b, labels = load_glue("rte", "train", glue_dir)
    train = make_dataset(texts_a, texts_b, labels, tokenizer, sequence_length=128,
                         batch_size=32, shuffle=True, seed=0, drop_remainder=True)
    ```
    """
    packer = TextPacker(tokenizer, sequence_length)  # Also sets a preprocessor's length.
    _check_positive_int(batch_size, "batch_size")
    if isinstance(texts_a, str) or not isinstance(texts_a, (list, tuple)):
        raise ValueError(f"`texts_a` must be a list of str. Received: {type(texts_a).__name__}")
    n = len(texts_a)
    if n == 0:
        raise ValueError("`texts_a` is empty: there is nothing to batch.")
    if drop_remainder and n < batch_size:
        raise ValueError(
            f"With drop_remainder=True, {n} examples make no full batch of "
            f"batch_size={batch_size}."
        )
    columns = [list(texts_a)]
    if texts_b is not None:
        if len(texts_b) != n:
            raise ValueError(
                f"`texts_b` must have one text per text in `texts_a` ({n}). "
                f"Received {len(texts_b)}."
            )
        columns.append(list(texts_b))
    for name, column in zip(("texts_a", "texts_b"), columns):
        if not all(isinstance(t, str) for t in column):
            raise ValueError(f"`{name}` must hold only str.")
    label_values = None if labels is None else _labels_array(labels, n)

    texts = dict(zip(("texts_a", "texts_b"), columns))
    dataset = tf.data.Dataset.from_tensor_slices(
        texts if label_values is None else (texts, label_values)
    )
    return _batched(dataset, n, packer, shuffle, seed, batch_size, drop_remainder)


def batch_text_dataset(data, tokenizer, sequence_length, batch_size, shuffle=False, seed=None,
                       drop_remainder=False):
    """A batched `tf.data.Dataset` of a `TextDataset`, as `make_dataset` makes them.

    The strings stay in `tf.data` from the source to the batch: they are
    shuffled (a buffer of the whole split, so the order for a seed is that
    of `make_dataset` on the same examples), batched and tokenized in the
    pipeline. The labels are left out when `data.has_labels` is false.

    Args:
        data: a `TextDataset`.
        The other arguments are those of `make_dataset`.

    Example:
    ```python
    train = batch_text_dataset(glue_dataset("rte", "train"), tokenizer, 128, 32,
                               shuffle=True, seed=0, drop_remainder=True)
    ```
    """
    packer = TextPacker(tokenizer, sequence_length)  # Also sets a preprocessor's length.
    _check_positive_int(batch_size, "batch_size")
    if data.num_examples == 0:
        raise ValueError("The data set is empty: there is nothing to batch.")
    if drop_remainder and data.num_examples < batch_size:
        raise ValueError(
            f"With drop_remainder=True, {data.num_examples} examples make no full batch of "
            f"batch_size={batch_size}."
        )
    return _batched(data.elements(), data.num_examples, packer, shuffle, seed, batch_size,
                    drop_remainder)


def graph_tokenizer(tokenizer):
    """A copy of `tokenizer` whose ops are created where it is called.

    Call it inside a `tf.data` map (or just before an eager use): a
    SentencePiece op created eagerly loses its resource when TensorFlow
    clears its eager caches, which `tf.random.set_seed` and
    `keras.utils.set_random_seed` do. A keras-hub preprocessor is returned
    as it is: keras-hub tasks tokenize in their own pipeline.
    """
    if is_preprocessor(tokenizer):
        return tokenizer
    return copy_tokenizer(keras_hub_tokenizer(tokenizer))


def _batched(dataset, n, packer, shuffle, seed, batch_size, drop_remainder):
    """Unbatched elements `texts` or `(texts, label)` -> shuffled batches of model inputs."""
    tokenizer = packer.tokenizer
    if shuffle:
        dataset = dataset.shuffle(n, seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    # Filters (subsets) hide the size from tf.data; stating it gives Keras the
    # epoch length (progress bars, `predict` without "ran out of data") and
    # fails loudly if the count were ever wrong.
    batches = n // batch_size if drop_remainder else -(-n // batch_size)
    dataset = dataset.apply(tf.data.experimental.assert_cardinality(batches))
    static_batch = batch_size if drop_remainder else None
    if is_preprocessor(tokenizer):
        # keras-hub tasks (and the Distiller) tokenize raw strings in their
        # own input pipeline, with the preprocessor set to this length.
        return dataset.map(_as_text_batch).prefetch(tf.data.AUTOTUNE)
    shape = [static_batch, packer.sequence_length]

    def pack(texts):
        # The tokenizer's ops are created here, inside the dataset's own graph.
        graph_packer = TextPacker(graph_tokenizer(tokenizer), packer.sequence_length,
                                  packer.truncate)
        inputs = graph_packer(texts["texts_a"], texts.get("texts_b"))
        return {key: tf.ensure_shape(value, shape) for key, value in inputs.items()}

    if not isinstance(dataset.element_spec, tuple):
        dataset = dataset.map(pack, num_parallel_calls=tf.data.AUTOTUNE)
    else:
        dataset = dataset.map(
            lambda texts, y: (pack(texts), tf.ensure_shape(y, [static_batch])),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    return dataset.prefetch(tf.data.AUTOTUNE)
