"""Boundary checks shared by the layers, the losses and the Distiller.

Every check names what was given and what is allowed. There are three kinds:

- **Static**: Python numbers and static shapes, checked when an object is
  built or a call is traced. They raise `ValueError` everywhere, XLA and
  TPU included, and cost nothing at run time.
- **Eager**: tensor values in eager mode are checked at once and raise
  `ValueError`.
- **Graph**: tensor values inside a `tf.function` become
  `tf.debugging.Assert` ops that the result depends on; a failed one raises
  `tf.errors.InvalidArgumentError` with the same text when the graph runs
  (`as_value_error` turns it back into a `ValueError`). XLA cannot run
  assertions (it drops them, logging "Ignoring Assert operator"), so inside
  an XLA-compiled function (`jit_compile=True`, TPU programs) none is built
  and value checks are skipped: check such data before the compiled part
  (the Distiller's input checks) or in the input pipeline.
"""

import math
import numbers

import numpy as np
import tensorflow as tf

try:  # Private, but the only way to see that a graph is being compiled by XLA.
    from tensorflow.python.ops import control_flow_util as _control_flow_util
except ImportError:  # pragma: no cover - TF moved it; XLA then drops the assertions itself.
    _control_flow_util = None

#: Prefix of every graph assertion message built here (see `as_value_error`).
MARKER = "augpro_keras check failed:"


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


def check_values(condition, message, data=(), eager_detail=None):
    """Checks a tensor `condition` that must hold everywhere.

    Eager: raises `ValueError(message + detail)` at once, where `detail`
    is `eager_detail()` (or the values of `data`). Graph: returns
    `[tf.debugging.Assert]` (message and `data` in its text). Under XLA:
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
    return [tf.debugging.Assert(tf.reduce_all(condition), [f"{MARKER} {message}", *data])]


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
    """The label checks of a batch, for the Distiller's input checks.

    For `task="classification"`: float labels must be whole numbers and,
    with `num_classes`, in `[0, num_classes)`. Regression labels are not
    checked here. Eager: raises `ValueError`; graph: returns assertions to
    use as control dependencies; under XLA: `[]`.

    Example (in `Distiller._input_checks`, beside the token-id check):
    ```python
    checks += input_checks.label_checks(y, self.task, self.num_classes)
    ```
    """
    if labels is None or task != "classification":
        return []
    return class_label_checks(labels, num_classes)


def as_value_error(error):
    """A `ValueError` for a failed graph check built here, or `None` for other errors."""
    message = str(getattr(error, "message", error))
    index = message.find(MARKER)
    if index < 0:
        return None
    text = message[index + len(MARKER):].split("\n")[0]
    text = text.replace("] [", " ").strip(" []").replace("\\'", "'")
    return ValueError(text)
