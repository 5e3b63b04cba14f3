"""Deterministic subsets of a data set: a fraction, or labeled / unlabeled parts."""

import math

import numpy as np

from augpro_keras.data.examples import TextExamples


def _check_fraction(fraction, name):
    if (
        isinstance(fraction, bool)
        or not isinstance(fraction, (int, float))
        or not 0 < fraction <= 1
    ):
        raise ValueError(f"`{name}` must be a number in (0, 1]. Received: {name}={fraction!r}")


def _check_seed(seed):
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"`seed` must be an int >= 0. Received: seed={seed!r}")


def _num_examples(data):
    if isinstance(data, TextExamples):
        return data.num_examples
    if isinstance(data, tuple):
        lengths = {len(column) for column in data if column is not None}
        if len(lengths) != 1:
            raise ValueError(
                "A tuple `data` must hold parallel sequences of one length (None "
                f"entries are kept as None). Received lengths: {sorted(lengths)}"
            )
        return lengths.pop()
    if isinstance(data, (list, np.ndarray)):
        return len(data)
    raise ValueError(
        "`data` must be TextExamples, a list or numpy array, or a tuple of "
        f"parallel sequences. Received: {type(data).__name__}"
    )


def _select(data, indices):
    if isinstance(data, TextExamples):
        return data.select(indices)
    if isinstance(data, tuple):
        return tuple(None if column is None else _select(column, indices) for column in data)
    if isinstance(data, np.ndarray):
        return data[np.asarray(indices, dtype=np.int64)]
    return [data[i] for i in indices]


def _permutation_and_count(data, fraction, seed, name):
    _check_fraction(fraction, name)
    _check_seed(seed)
    n = _num_examples(data)
    if n == 0:
        raise ValueError("`data` is empty: cannot take a fraction of 0 examples.")
    count = min(n, max(1, math.floor(fraction * n + 0.5)))
    order = np.random.default_rng(int(seed)).permutation(n)
    return order, count


def take_fraction(data, fraction, seed=0):
    """Returns a random `fraction` of the examples, the same for the same seed.

    `round(fraction * n)` examples (at least one) are kept, in their original
    order. The subsets for one seed are nested: the 10% subset is inside the
    20% subset. Used for the paper's Figure 3 (distillation with less data).

    Args:
        data: `TextExamples`, a list or numpy array, or a tuple of parallel
            sequences (`None` entries stay `None`), e.g.
            `(texts_a, texts_b, labels)`.
        fraction: number in (0, 1].
        seed: int >= 0.

    Returns:
        The subset, of the same type as `data`.

    Example:
    ```python
    examples = load_glue("sst2", "train", glue_dir)
    small = take_fraction(examples, 0.1, seed=0)
    ```
    """
    order, count = _permutation_and_count(data, fraction, seed, "fraction")
    return _select(data, np.sort(order[:count]))


def labeled_unlabeled_split(data, labeled_fraction=0.1, seed=0):
    """Splits the examples into a labeled part and an unlabeled part.

    The paper's Table 2 setting: the teacher is fine-tuned on 10% of the
    training set with labels, and distillation uses the other 90% without
    labels. The two parts are disjoint, together hold every example, keep
    the original order, and are the same for the same seed; the labeled part
    equals `take_fraction(data, labeled_fraction, seed)`.

    The unlabeled part keeps its labels (to measure, e.g., the teacher on
    it); pass `labels=None` to `make_dataset` to train without them.

    Args:
        data: `TextExamples`, a list or numpy array, or a tuple of parallel
            sequences (`None` entries stay `None`).
        labeled_fraction: number in (0, 1].
        seed: int >= 0.

    Returns:
        `(labeled, unlabeled)`, each of the same type as `data`.

    Example:
    ```python
    labeled, unlabeled = labeled_unlabeled_split(examples, 0.1, seed=0)
    teacher_data = make_dataset(*labeled, tokenizer=tokenizer, ...)
    distill_data = make_dataset(unlabeled.texts_a, unlabeled.texts_b, None,
                                tokenizer=tokenizer, ...)
    ```
    """
    order, count = _permutation_and_count(data, labeled_fraction, seed, "labeled_fraction")
    return _select(data, np.sort(order[:count])), _select(data, np.sort(order[count:]))
