import numpy as np
import pytest
import tensorflow as tf

from augpro_keras import input_checks, losses

LOGITS = np.array([[2.0, 0.5, -1.0], [0.1, 0.2, 0.3], [-1.0, 3.0, 0.0], [0.0, 0.0, 0.0]], "float32")


def log_softmax(z):
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


@pytest.mark.parametrize("shape", [(4,), (4, 1)])
def test_regression_labels_are_one_per_example_not_broadcast(shape):
    predictions = np.array([[0.5], [1.0], [2.0], [4.0]], "float32")
    scores = np.array([1.0, 1.0, 3.0, 0.0], "float32")
    loss = losses.student_loss(predictions, scores.reshape(shape), "regression").numpy()
    assert loss.shape == (4,)
    np.testing.assert_allclose(loss, (predictions[:, 0] - scores) ** 2)
    partner_index, lam = np.array([1, 0, 3, 2], "int32"), np.array([0.5, 0.25, 1.0, 0.0], "float32")
    mixed = losses.mixed_student_loss(predictions, scores.reshape(shape), partner_index, lam, "regression").numpy()
    assert mixed.shape == (4,)
    target = lam * scores + (1 - lam) * scores[partner_index]
    np.testing.assert_allclose(mixed, (predictions[:, 0] - target) ** 2, rtol=1e-6)


def test_regression_shapes_are_checked():
    predictions = np.zeros((4, 1), "float32")
    with pytest.raises(ValueError, match=r"one value per example, shape \[4\] or \[4, 1\] .* labels of shape \[4, 2\]"):
        losses.student_loss(predictions, np.zeros((4, 2), "float32"), "regression")
    with pytest.raises(ValueError, match=r"labels of shape \[8\]"):
        losses.student_loss(predictions, np.zeros((8,), "float32"), "regression")
    with pytest.raises(ValueError, match=r"one output per example, but the logits have shape \(4, 2\)"):
        losses.student_loss(np.zeros((4, 2), "float32"), np.zeros((4,), "float32"), "regression")


@pytest.mark.parametrize("shape", [(4,), (4, 1)])
def test_classification_labels_int_or_whole_floats(shape):
    labels = np.array([0, 2, 1, 1])
    expected = -log_softmax(LOGITS)[np.arange(4), labels]
    for dtype in ("int32", "int64", "float32"):
        loss = losses.student_loss(LOGITS, labels.astype(dtype).reshape(shape)).numpy()
        np.testing.assert_allclose(loss, expected, rtol=1e-5)
    mixed = losses.mixed_student_loss(
        LOGITS, labels.astype("float32").reshape(shape), np.array([1, 0, 3, 2]), np.full((4,), 1.0, "float32")
    ).numpy()
    np.testing.assert_allclose(mixed, expected, rtol=1e-5)


@pytest.mark.parametrize(
    "labels, message",
    [
        ([0.3, 1.3, 1.0, 0.0], r"whole class ids, not fractions .* Received labels \[0\.3.*, 1\.3.*\]"),
        ([0, 3, 1, 1], r"`labels` must be class ids in \[0, 3\) \(the logits have 3 classes\)\. Received labels=\[0, 3, 1, 1\] \(outside: \[3\]\)"),
        ([0, -1, 1, 1], r"outside: \[-1\]"),
    ],
)
def test_fractional_and_out_of_range_class_labels_are_refused(labels, message):
    dtype = "float32" if isinstance(labels[0], float) else "int32"
    labels = np.array(labels, dtype)
    with pytest.raises(ValueError, match=message):
        losses.student_loss(LOGITS, labels)
    with pytest.raises(ValueError, match=message):
        losses.mixed_student_loss(LOGITS, labels, np.array([1, 0, 3, 2]), np.full((4,), 0.5, "float32"))


def test_class_label_shape_is_checked():
    with pytest.raises(ValueError, match=r"Classification labels must hold one value per example, shape \[4\] or \[4, 1\]"):
        losses.student_loss(LOGITS, np.zeros((4, 3), "int32"))


def test_graph_checks_raise_when_run_and_xla_skips_them():
    graph = tf.function(losses.student_loss)
    np.testing.assert_allclose(
        graph(LOGITS, np.array([0.0, 2.0, 1.0, 1.0], "float32")).numpy(),
        losses.student_loss(LOGITS, np.array([0, 2, 1, 1])).numpy(), rtol=1e-6,
    )
    with pytest.raises(tf.errors.InvalidArgumentError, match="whole class ids") as info:
        graph(LOGITS, np.array([0.3, 1.3, 1.0, 0.0], "float32"))
    converted = input_checks.as_value_error(info.value)
    assert isinstance(converted, ValueError) and "whole class ids" in str(converted)
    assert "(use task='regression' for scores)" in str(converted)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"class ids in \[0, 3\)"):
        graph(LOGITS, np.array([0, 3, 1, 1], "int32"))
    # XLA drops assertions (documented): the compiled loss computes without checking.
    compiled = tf.function(losses.student_loss, jit_compile=True)
    assert compiled(LOGITS, np.array([0.3, 1.3, 1.0, 0.0], "float32")).shape == (4,)


def test_label_checks_for_the_distiller():
    assert input_checks.label_checks(None, "classification", 3) == []
    assert input_checks.label_checks(np.array([0.5]), "regression", 1) == []
    assert input_checks.label_checks(np.array([0, 2]), "classification", 3) == []
    with pytest.raises(ValueError, match="whole class ids"):
        input_checks.label_checks(np.array([0.3, 1.3], "float32"), "classification", 2)
    with pytest.raises(ValueError, match=r"class ids in \[0, 2\)"):
        input_checks.label_checks(np.array([0, 2]), "classification", 2)

    @tf.function
    def checked(labels):
        with tf.control_dependencies(input_checks.label_checks(labels, "classification", 2)):
            return tf.identity(labels)

    np.testing.assert_array_equal(checked(tf.constant([0.0, 1.0])).numpy(), [0.0, 1.0])
    with pytest.raises(tf.errors.InvalidArgumentError, match="whole class ids"):
        checked(tf.constant([0.3, 1.3]))
    assert input_checks.as_value_error(RuntimeError("something else")) is None
