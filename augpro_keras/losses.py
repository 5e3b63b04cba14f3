"""Per-example losses of distillation: the student loss and the distance `d`.

Every function returns one float32 value per example, shape `[B]`. The
Distiller sums them and divides by the *global* batch size, so that the
gradients summed across replicas by `tf.distribute` equal the gradient of
the global mean.
"""

from keras import ops

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


def student_loss(student_logits, labels, task="classification"):
    """Cross-entropy with integer labels, or squared error for regression."""
    student_logits = ops.cast(student_logits, "float32")
    if task == "regression":
        return ops.square(student_logits[:, 0] - ops.cast(labels, "float32"))
    labels = ops.cast(ops.reshape(labels, (-1,)), "int32")
    return ops.sparse_categorical_crossentropy(labels, student_logits, from_logits=True)


def mixed_student_loss(student_logits, labels, partner_index, lam, task="classification"):
    """The student loss against MixUp labels `lam * y + (1 - lam) * y_partner`."""
    student_logits = ops.cast(student_logits, "float32")
    lam = ops.cast(lam, "float32")
    if task == "regression":
        labels = ops.cast(labels, "float32")
        mixed = lam * labels + (1.0 - lam) * ops.take(labels, partner_index, axis=0)
        return ops.square(student_logits[:, 0] - mixed)
    num_classes = student_logits.shape[-1]
    one_hot = ops.one_hot(ops.cast(ops.reshape(labels, (-1,)), "int32"), num_classes)
    mixed = lam[:, None] * one_hot + (1.0 - lam[:, None]) * ops.take(one_hot, partner_index, axis=0)
    return ops.categorical_crossentropy(mixed, student_logits, from_logits=True)
