"""Per-example losses of distillation: the student loss and the distance `d`.

Every function returns one float32 value per example, shape `[B]`. The
Distiller sums them and divides by the *global* batch size, so that the
gradients summed across replicas by `tf.distribute` equal the gradient of
the global mean.

Labels are checked at this boundary (`augpro_keras.input_checks`):

- shape: one label per example, `[B]` or `[B, 1]` (a `[B, 1]` label is
  flattened, never broadcast against `[B]` predictions); other shapes raise
  `ValueError` naming both shapes (static check).
- classification: float labels must be whole numbers (0.3 or 1.3 are
  refused, 1.0 is class 1) and every label must be in `[0, C)` for `C`
  logits. Eager: `ValueError` at once. Inside a `tf.function`: assertions,
  raising `tf.errors.InvalidArgumentError` when the graph runs
  (`input_checks.as_value_error` turns it into the `ValueError`). Under XLA
  (`jit_compile=True`, TPU) assertions are dropped, so these values are not
  checked there: check labels before the compiled part
  (`input_checks.label_checks`, for the Distiller's input checks) or in the
  input pipeline.
- regression: the logits must have one output.
"""

from keras import ops

from augpro_keras import input_checks

DISTANCES = ("kl", "mse")
TASKS = ("classification", "regression")


def validate_distance(distance):
    if distance not in DISTANCES:
        raise ValueError(
            f"Unknown distillation loss {distance!r}. Allowed values: {', '.join(DISTANCES)}."
        )
    return distance


def validate_task(task):
    if task not in TASKS:
        raise ValueError(f"Unknown task {task!r}. Allowed values: {', '.join(TASKS)}.")
    return task


def distillation_distance(student_logits, teacher_logits, distance="kl", temperature=1.0):
    """`d(student, teacher)` per example.

    "kl": `T^2 * KL(softmax(teacher / T) || softmax(student / T))`, the
    Hinton et al. (2015) scaling that keeps gradient sizes independent of T.
    "mse": mean squared difference of the logits (the paper's alternative,
    and the choice for regression).
    """
    student_logits = ops.cast(student_logits, "float32")
    teacher_logits = ops.stop_gradient(ops.cast(teacher_logits, "float32"))
    if distance == "mse":
        return ops.mean(ops.square(student_logits - teacher_logits), axis=-1)
    teacher_log_probs = ops.log_softmax(teacher_logits / temperature, axis=-1)
    student_log_probs = ops.log_softmax(student_logits / temperature, axis=-1)
    kl = ops.sum(ops.exp(teacher_log_probs) * (teacher_log_probs - student_log_probs), axis=-1)
    return (temperature**2) * kl


def _regression_predictions(student_logits):
    if student_logits.shape[-1] not in (None, 1):
        raise ValueError(
            "Regression needs one output per example, but the logits have shape "
            f"{tuple(student_logits.shape)}."
        )
    return student_logits[:, 0]


def student_loss(student_logits, labels, task="classification"):
    """Cross-entropy with integer labels, or squared error for regression.

    Args:
        student_logits: `[B, C]` (`[B, 1]` for regression).
        labels: `[B]` or `[B, 1]`: class ids (integers, or floats holding
            whole numbers) in `[0, C)`, or regression targets.
        task: "classification" or "regression".

    Returns:
        float32 `[B]`.
    """
    student_logits = ops.cast(student_logits, "float32")
    batch_size = student_logits.shape[0]
    if task == "regression":
        targets = input_checks.regression_targets(labels, batch_size)
        return ops.square(_regression_predictions(student_logits) - targets)
    labels = input_checks.class_labels(labels, student_logits.shape[-1], batch_size)
    return ops.sparse_categorical_crossentropy(labels, student_logits, from_logits=True)


def mixed_student_loss(student_logits, labels, partner_index, lam, task="classification"):
    """The student loss against MixUp labels `lam * y + (1 - lam) * y_partner`.

    `labels` as for `student_loss`; `partner_index` int `[B]` and `lam`
    float `[B]` as drawn for the mix.
    """
    student_logits = ops.cast(student_logits, "float32")
    batch_size = student_logits.shape[0]
    lam = ops.cast(lam, "float32")
    if task == "regression":
        targets = input_checks.regression_targets(labels, batch_size)
        mixed = lam * targets + (1.0 - lam) * ops.take(targets, partner_index, axis=0)
        return ops.square(_regression_predictions(student_logits) - mixed)
    num_classes = student_logits.shape[-1]
    one_hot = ops.one_hot(input_checks.class_labels(labels, num_classes, batch_size), num_classes)
    mixed = lam[:, None] * one_hot + (1.0 - lam[:, None]) * ops.take(one_hot, partner_index, axis=0)
    return ops.categorical_crossentropy(mixed, student_logits, from_logits=True)
