"""The GLUE metrics the paper reports, in numpy.

All functions take 1-D arrays (or lists) of equal, non-zero length and return
a Python float.
"""

import numpy as np


def _pair(a, b, names=("predictions", "labels")):
    a, b = np.asarray(a), np.asarray(b)
    for name, values in zip(names, (a, b)):
        if values.ndim != 1:
            raise ValueError(f"`{name}` must be 1-D. Received shape {values.shape}.")
    if len(a) != len(b) or len(a) == 0:
        raise ValueError(
            f"`{names[0]}` and `{names[1]}` must have the same non-zero length. "
            f"Received {len(a)} and {len(b)}."
        )
    return a, b


def accuracy(predictions, labels):
    """Fraction of predicted class ids equal to the labels.

    Example:
    ```python
    accuracy([1, 0, 1], [1, 1, 1])  # 0.666...
    ```
    """
    predictions, labels = _pair(predictions, labels)
    return float(np.mean(predictions == labels))


def f1(predictions, labels):
    """Binary F1 score with class 1 as the positive class.

    0.0 when there is no true positive (as scikit-learn).

    Example:
    ```python
    f1([1, 1, 0, 0], [1, 0, 1, 0])  # 0.5
    ```
    """
    predictions, labels = _pair(predictions, labels)
    true_positive = np.sum((predictions == 1) & (labels == 1))
    if true_positive == 0:
        return 0.0
    precision = true_positive / np.sum(predictions == 1)
    recall = true_positive / np.sum(labels == 1)
    return float(2 * precision * recall / (precision + recall))


def matthews_corrcoef(predictions, labels):
    """Matthews correlation coefficient (multi-class form, as scikit-learn).

    0.0 when it is undefined (all predictions or all labels one class).

    Example:
    ```python
    matthews_corrcoef([1, 1, 0, 0], [1, 0, 0, 0])  # 0.577...
    ```
    """
    predictions, labels = _pair(predictions, labels)
    classes, encoded = np.unique(np.concatenate([labels, predictions]), return_inverse=True)
    y_true, y_pred = encoded[: len(labels)], encoded[len(labels):]
    k = len(classes)
    confusion = np.zeros((k, k), dtype=np.float64)
    np.add.at(confusion, (y_true, y_pred), 1)
    t_sum, p_sum = confusion.sum(axis=1), confusion.sum(axis=0)
    n_correct, n = np.trace(confusion), confusion.sum()
    cov_ytyp = n_correct * n - np.dot(t_sum, p_sum)
    cov_ypyp = n * n - np.dot(p_sum, p_sum)
    cov_ytyt = n * n - np.dot(t_sum, t_sum)
    if cov_ypyp * cov_ytyt == 0:
        return 0.0
    return float(cov_ytyp / np.sqrt(cov_ytyt * cov_ypyp))


def pearson(predictions, labels):
    """Pearson correlation coefficient.

    NaN when either input is constant (the correlation is undefined).

    Example:
    ```python
    pearson([1.0, 2.0, 3.0], [2.0, 4.0, 7.0])  # 0.993...
    ```
    """
    x, y = _pair(predictions, labels)
    x, y = x.astype(np.float64), y.astype(np.float64)
    x, y = x - x.mean(), y - y.mean()
    denominator = np.sqrt(np.sum(x * x) * np.sum(y * y))
    if denominator == 0:
        return float("nan")
    return float(np.clip(np.sum(x * y) / denominator, -1.0, 1.0))


def rank_average(values):
    """Ranks from 1, ties sharing the average of their ranks (as scipy's `rankdata`)."""
    values = np.asarray(values)
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    # Ranks of a group of ties: from (values smaller than it) + 1 to + count.
    starts = np.cumsum(counts) - counts
    return (starts + (counts + 1) / 2.0)[inverse.reshape(-1)]


def spearman(predictions, labels):
    """Spearman rank correlation: Pearson of the ranks, ties averaged.

    NaN when either input is constant.

    Example:
    ```python
    spearman([1.0, 2.0, 2.0, 5.0], [1.0, 3.0, 2.0, 4.0])  # 0.948...
    ```
    """
    x, y = _pair(predictions, labels)
    return pearson(rank_average(x), rank_average(y))


_METRICS = {
    "accuracy": accuracy,
    "f1": f1,
    "matthews_corrcoef": matthews_corrcoef,
    "pearson": pearson,
    "spearman": spearman,
}


def _class_ids(predictions):
    if predictions.ndim == 2 and predictions.shape[1] > 1:
        return np.argmax(predictions, axis=1)
    if predictions.ndim == 1 and (
        predictions.dtype.kind in "iub"
        or (predictions.dtype.kind == "f" and np.all(predictions == np.round(predictions)))
    ):
        return predictions.astype(np.int64)
    raise ValueError(
        "For a classification task `predictions` must be logits/probabilities "
        "[N, num_classes] (num_classes >= 2) or class ids [N]. Received shape "
        f"{predictions.shape} with dtype {predictions.dtype}."
    )


def glue_metrics(task, predictions, labels):
    """The paper's metrics for a GLUE task.

    SST-2, QNLI, RTE, MNLI, WNLI: accuracy. CoLA: Matthews correlation.
    MRPC, QQP: accuracy and F1. STS-B: Pearson and Spearman correlation.

    Args:
        task: GLUE task name in any common spelling (`"SST-2"`, `"sst2"`,
            ...) or a `GlueTask`.
        predictions: logits or probabilities `[N, num_classes]`, or class ids
            `[N]`; for STS-B, scores `[N]` or `[N, 1]`.
        labels: class ids `[N]` (STS-B: scores `[N]`).

    Returns:
        A dict from metric name to float, e.g. `{"accuracy": 0.9, "f1": 0.91}`.

    Example:
    ```python
    logits = model.predict(validation_inputs)
    glue_metrics("mrpc", logits, labels)  # {"accuracy": ..., "f1": ...}
    ```
    """
    from augpro_keras.data.glue import get_glue_task

    task = get_glue_task(task)
    predictions = np.asarray(predictions)
    if task.is_regression:
        if predictions.ndim == 2 and predictions.shape[1] == 1:
            predictions = predictions[:, 0]
        if predictions.ndim != 1:
            raise ValueError(
                f"For {task.display_name} `predictions` must be scores [N] or [N, 1]. "
                f"Received shape {predictions.shape}."
            )
    else:
        predictions = _class_ids(predictions)
    return {name: _METRICS[name](predictions, labels) for name in task.metrics}
