"""Boundary checks shared by the layers, the losses and the Distiller.

Every check names what was given and what is allowed. There are three kinds:

- **Static**: Python numbers and static shapes, checked when an object is
  built or a call is traced. They raise `ValueError` everywhere, XLA and
  TPU included, and cost nothing at run time.
- **Eager**: tensor values in eager mode are checked at once and raise
  `ValueError`.
- **Graph**: tensor values inside a `tf.function` become
  `tf.debugging.Assert` ops that the result depends on. The final message,
  values included, is built in the graph (`tf.strings.join` and
  `tf.strings.format`) and is the assertion's only data, after `MARKER`; a
  failed one raises `tf.errors.InvalidArgumentError` carrying it, and
  `as_value_error` (or the `value_errors()` context) raises a `ValueError`
  with exactly that message, unescaped: nothing is parsed back out of the
  text. XLA cannot run
  assertions (it drops them, logging "Ignoring Assert operator"), so inside
  an XLA-compiled function (`jit_compile=True`, TPU programs) none is built
  and value checks are skipped: check such data before the compiled part
  (the Distiller's input checks, `batch_checks`) or in the input pipeline.
"""

import codecs
import contextlib
import math
import numbers

import keras
import numpy as np
import tensorflow as tf

try:  # Private, but the only way to see that a graph is being compiled by XLA.
    from tensorflow.python.ops import control_flow_util as _control_flow_util
except ImportError:  # pragma: no cover - TF moved it; XLA then drops the assertions itself.
    _control_flow_util = None

#: Prefix of every graph assertion message built here (see `as_value_error`).
MARKER = "augpro_keras check failed: "


def in_xla_context():
    """Whether ops created now are compiled by XLA (`jit_compile=True`, TPU)."""
    if _control_flow_util is None or tf.executing_eagerly():
        return False
    return bool(_control_flow_util.GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph()))


def validate_number(value, name, minimum=None, maximum=None):
    """A finite real Python/NumPy number in `[minimum, maximum]`, as a float.

    Raises `ValueError` naming `name`, the value and the allowed range for
    bools, non-numbers, NaN, infinities and values out of range.
    """
    allowed = "a finite number"
    if minimum is not None and maximum is not None:
        allowed = f"a number in [{minimum}, {maximum}]"
    elif minimum is not None:
        allowed = f"a number >= {minimum} (not NaN or infinite)"
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not math.isfinite(float(value))
        or (minimum is not None and value < minimum)
        or (maximum is not None and value > maximum)
    ):
        raise ValueError(f"`{name}` must be {allowed}. Received: {name}={value!r}")
    return float(value)


def with_checks(value, checks):
    """`value`, made to depend on the assertion ops `checks` (none: unchanged)."""
    if not checks:
        return value
    with tf.control_dependencies(checks):
        return tf.identity(value)


def check(condition, message):
    """Checks a tensor `condition` whose failure message is `message`, as it is.

    `message` is the final text: a Python string or a scalar string tensor
    built from the values (`tf.strings.format`, `message_text`). Eager:
    raises `ValueError(message)` at once. Graph: returns
    `[tf.debugging.Assert]` whose only data is `MARKER + message`. Under
    XLA: returns `[]` (see the module docstring).
    """
    if tf.executing_eagerly():
        if not bool(np.all(np.asarray(condition))):
            raise ValueError(_as_text(message))
        return []
    if in_xla_context():
        return []
    text = tf.strings.join([MARKER, message])
    return [tf.debugging.Assert(tf.reduce_all(condition), [text])]


def message_text(*parts):
    """A scalar string tensor: `parts` joined by spaces, tensors as `tf.strings.format` prints them."""
    pieces = [p if isinstance(p, str) else tf.strings.format("{}", (p,)) for p in parts]
    return tf.strings.join(pieces, separator=" ")


def _as_text(message):
    if isinstance(message, str):
        return message
    return np.asarray(message).item().decode("utf-8")


def check_values(condition, message, data=(), eager_detail=None):
    """Checks a tensor `condition` that must hold everywhere.

    Eager: raises `ValueError(message + detail)` at once, where `detail`
    is `eager_detail()` (or the values of `data`). Graph: returns
    `[tf.debugging.Assert]` whose message is `message` followed by `data`
    (strings as they are, tensors printed), built in the graph. Under XLA:
    returns `[]` (see the module docstring).
    """
    if tf.executing_eagerly():
        if not bool(np.all(np.asarray(condition))):
            detail = eager_detail() if eager_detail is not None else " ".join(
                str(np.asarray(d).tolist()) for d in data
            )
            raise ValueError(f"{message} {detail}".rstrip())
        return []
    if in_xla_context():
        return []
    return check(condition, message_text(message, *data))


def check_in_range(values, low, high, name, high_exclusive=False, allowed=None):
    """Checks that every entry of `values` is in `[low, high]` (or `[low, high)`).

    NaN fails the check. `high` may be a scalar tensor (a dynamic batch
    size). Returns the graph assertions (see `check_values`).
    """
    interval = f"[{low}, {high})" if high_exclusive else f"[{low}, {high}]"
    allowed = allowed or f"in {interval}"
    values = tf.convert_to_tensor(values)
    upper = values < tf.cast(high, values.dtype) if high_exclusive else values <= tf.cast(high, values.dtype)
    inside = tf.logical_and(values >= tf.cast(low, values.dtype), upper)

    def detail():
        array = np.asarray(values)
        bad = ~np.asarray(inside)
        return f"Received {name}={_values_text(array)} (outside: {_values_text(array[bad])})."

    data = ()
    if not tf.executing_eagerly():
        data = ("received values from", tf.reduce_min(values), "to", tf.reduce_max(values))
    return check_values(inside, f"`{name}` must be {allowed}.", data, detail)


def _values_text(array, limit=10):
    """`[0.3, 1.3]`: at most `limit` values, floats with 6 significant digits."""
    flat = np.asarray(array).reshape(-1)
    items = [repr(float(f"{v:.6g}")) if isinstance(v, float) else str(v) for v in flat[:limit].tolist()]
    more = f", ... ({flat.size} values)" if flat.size > limit else ""
    return "[" + ", ".join(items) + more + "]"


def check_shape(shape, expected, name, expected_name):
    """Static check that `shape` is compatible with `expected` (unknown dims pass).

    Raises `ValueError` naming both shapes.
    """
    shape, expected = tf.TensorShape(shape), tf.TensorShape(expected)
    if not shape.is_compatible_with(expected):
        raise ValueError(
            f"`{name}` must have shape {_shape_text(expected)} to match {expected_name}, "
            f"but has shape {_shape_text(shape)}."
        )


def _shape_text(shape):
    if shape.rank is None:
        return "<unknown>"
    return "[" + ", ".join("None" if d is None else str(d) for d in shape.as_list()) + "]"


def _static_count(shape):
    shape = tf.TensorShape(shape)
    return shape.num_elements() if shape.is_fully_defined() else None


def _check_one_per_example(labels, batch_size, what):
    """Labels `[B]` or `[B, 1]` for a batch of `batch_size` (static check)."""
    shape = tf.TensorShape(labels.shape)
    count = _static_count(shape)
    bad_rank = shape.rank is not None and (shape.rank > 2 or (shape.rank == 2 and shape[1] not in (None, 1)))
    if bad_rank or (batch_size is not None and count is not None and count != batch_size):
        raise ValueError(
            f"{what} must hold one value per example, shape [{batch_size}] or "
            f"[{batch_size}, 1] for a batch of {batch_size}; received labels of shape "
            f"{_shape_text(shape)}."
        )


def class_label_checks(labels, num_classes=None):
    """Checks on classification labels; returns the graph assertions.

    Float labels must be whole numbers (0.3 or 1.3 are refused, 1.0 is
    accepted); with `num_classes`, every label must be in
    `[0, num_classes)`. Eager: `ValueError` at once; graph: assertions;
    XLA: none (see the module docstring).
    """
    labels = tf.convert_to_tensor(labels)
    checks = []
    if labels.dtype.is_floating:
        whole = tf.equal(labels, tf.round(labels))

        def detail():
            array = np.asarray(labels)
            return f"Received labels {_values_text(array.reshape(-1)[~np.asarray(whole).reshape(-1)])}."

        data = () if tf.executing_eagerly() else ("received", labels)
        checks += check_values(
            whole,
            "Classification labels must be whole class ids, not fractions (use "
            "task='regression' for scores).",
            data,
            detail,
        )
    if num_classes is not None:
        checks += check_in_range(
            labels, 0, int(num_classes), "labels", high_exclusive=True,
            allowed=f"class ids in [0, {int(num_classes)}) (the logits have {int(num_classes)} classes)",
        )
    return checks


def class_labels(labels, num_classes, batch_size=None):
    """Classification labels as int32 `[B]`, checked (see `class_label_checks`).

    Args:
        labels: `[B]` or `[B, 1]`, integer or float holding whole numbers.
        num_classes: the number of classes (the logits' last dimension), or
            `None` to skip the range check.
        batch_size: the static batch size, or `None`.
    """
    labels = tf.convert_to_tensor(labels)
    _check_one_per_example(labels, batch_size, "Classification labels")
    checks = class_label_checks(labels, num_classes)
    labels = with_checks(labels, checks)
    return tf.cast(tf.reshape(labels, (-1,)), "int32")


def regression_targets(labels, batch_size=None):
    """Regression labels as float32 `[B]`; `[B, 1]` is flattened, not broadcast."""
    labels = tf.convert_to_tensor(labels)
    _check_one_per_example(labels, batch_size, "Regression labels")
    return tf.reshape(tf.cast(labels, "float32"), (-1,))


def label_checks(labels, task, num_classes=None):
    """The label checks of a batch (see `class_label_checks`).

    For `task="classification"`: float labels must be whole numbers and,
    with `num_classes`, in `[0, num_classes)`. Regression labels are not
    checked here. Eager: raises `ValueError`; graph: returns assertions to
    use as control dependencies; under XLA: `[]`.

    Example:
    ```python
    with tf.control_dependencies(input_checks.label_checks(y, "classification", 3)):
        y = tf.identity(y)
    ```
    """
    if labels is None or task != "classification":
        return []
    return class_label_checks(labels, num_classes)


# === The Distiller's batch checks ===
def token_id_checks(token_ids, vocabulary_size):
    """Checks that every token id is in `[0, vocabulary_size)`.

    The message names the range, the vocabulary size and the batch's
    smallest and largest ids. Eager: `ValueError`; graph: assertions; XLA:
    none.
    """
    ids = tf.cast(token_ids, "int64")
    lowest, highest = tf.reduce_min(ids), tf.reduce_max(ids)
    size = int(vocabulary_size)
    message = tf.strings.format(
        f"Token ids must be in [0, {size - 1}]: the teacher's and the student's vocabulary "
        f"has {size} tokens, but a batch holds ids from {{}} to {{}} (largest id {{}}). "
        "Tokenize the data with the models' tokenizer.",
        (lowest, highest, highest),
    )
    return check(tf.logical_and(lowest >= 0, highest < size), message)


def label_range_checks(labels, num_classes):
    """Checks that every class label is in `[0, num_classes)`; names the batch's range."""
    labels = tf.cast(labels, "int64")
    lowest, highest = tf.reduce_min(labels), tf.reduce_max(labels)
    count = int(num_classes)
    message = tf.strings.format(
        f"Labels must be class ids in [0, {count - 1}] (the models have {count} classes), "
        "but a batch holds labels from {} to {}. Check the label column and the models' "
        "`num_classes`.",
        (lowest, highest),
    )
    return check(tf.logical_and(lowest >= 0, highest < count), message)


def batch_checks(token_ids, labels, vocabulary_size, task, num_classes=None):
    """The checks of one batch for `fit` and `evaluate` (and `validate_dataset`).

    Token ids in `[0, vocabulary_size)`; for classification, labels that
    are whole numbers and, with `num_classes`, in `[0, num_classes)`.
    Returns the graph assertions (eager: raises `ValueError`; XLA: none).
    """
    checks = token_id_checks(token_ids, vocabulary_size)
    if labels is not None and task == "classification":
        checks += class_label_checks(labels)
        if num_classes:
            checks += label_range_checks(labels, num_classes)
    return checks


def in_tpu_program():
    """Whether the current strategy is a `TPUStrategy` (its programs cannot check)."""
    return isinstance(
        tf.distribute.get_strategy(),
        (tf.distribute.TPUStrategy, tf.distribute.experimental.TPUStrategy),
    )


# === Failed graph checks as `ValueError`s ===
def as_value_error(error):
    """A `ValueError` for a failed graph check built here, or `None` for other errors.

    Its message is the check's own text: what follows `MARKER` on its line,
    less the bracket that closes the assertion's data, with the escapes that
    TensorFlow adds to printed strings undone.
    """
    message = str(getattr(error, "message", error))
    index = message.find(MARKER)
    if index < 0:
        return None
    text = message[index + len(MARKER):].split("\n")[0]
    if text.endswith("]"):
        text = text[:-1]
    return ValueError(codecs.escape_decode(text.encode("utf-8"))[0].decode("utf-8"))


@contextlib.contextmanager
def value_errors():
    """Raises a failed graph check of this module as its `ValueError`.

    Other errors pass unchanged.

    Example:
    ```python
    with input_checks.value_errors():
        model.fit(dataset)
    ```
    """
    try:
        yield
    except tf.errors.InvalidArgumentError as error:
        replacement = as_value_error(error)
        if replacement is None:
            raise
        raise replacement from None


# === Static batch facts and checked datasets ===
def static_batch_size(token_ids):
    """The static batch size of `token_ids`; `ValueError` when it is unknown."""
    batch_size = token_ids.shape[0]
    if batch_size is None:
        raise ValueError(
            "The Distiller needs batches of a static size: batch the dataset with "
            "`drop_remainder=True` and a fixed sequence length. Under "
            "MultiWorkerMirroredStrategy, tf.distribute hides the batch size of finite "
            "datasets (it allows a last partial batch): repeat the dataset and pass "
            "`steps_per_epoch` to fit()."
        )
    return batch_size


def checked_dataset(dataset, checks):
    """`dataset` whose elements pass `checks(x, y)` (a list of assertions) in the pipeline.

    Elements are `x`, `(x, y)` or `(x, y, sample_weight)`; every tensor of
    an element depends on the assertions.
    """
    def check(*element):
        data = element[0] if len(element) == 1 else element
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        with tf.control_dependencies(checks(x, y)):
            return keras.tree.map_structure(identity, data)

    return dataset.map(check)


def identity(value):
    """`tf.identity(value)`, `None` for `None` (an absent label)."""
    return None if value is None else tf.identity(value)
