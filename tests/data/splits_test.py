import numpy as np
import pytest

from augpro_keras.data import TextExamples
from augpro_keras.data import labeled_unlabeled_split
from augpro_keras.data import take_fraction


def _examples(n=100):
    return TextExamples(
        texts_a=[f"a{i}" for i in range(n)],
        texts_b=[f"b{i}" for i in range(n)],
        labels=[i % 3 for i in range(n)],
        label_names=("x", "y", "z"),
    )


def test_take_fraction_deterministic_nested_ordered():
    data = _examples()
    small = take_fraction(data, 0.1, seed=7)
    assert small.num_examples == 10
    assert small == take_fraction(data, 0.1, seed=7)
    assert small != take_fraction(data, 0.1, seed=8)
    larger = take_fraction(data, 0.2, seed=7)
    assert set(small.texts_a) <= set(larger.texts_a)
    index = [int(t[1:]) for t in small.texts_a]
    assert index == sorted(index)
    assert small.texts_b == [f"b{i}" for i in index]
    assert small.labels == [i % 3 for i in index]
    assert small.label_names == ("x", "y", "z")
    assert take_fraction(data, 1.0, seed=0) == data
    assert len(take_fraction(list(range(5)), 0.01, seed=0)) == 1


def test_labeled_unlabeled_split_disjoint_and_covering():
    data = _examples(2490)
    labeled, unlabeled = labeled_unlabeled_split(data, labeled_fraction=0.1, seed=0)
    assert labeled.num_examples == 249 and unlabeled.num_examples == 2241
    assert not set(labeled.texts_a) & set(unlabeled.texts_a)
    assert set(labeled.texts_a) | set(unlabeled.texts_a) == set(data.texts_a)
    assert labeled == take_fraction(data, 0.1, seed=0)
    again = labeled_unlabeled_split(data, labeled_fraction=0.1, seed=0)
    assert again == (labeled, unlabeled)


def test_other_data_types():
    texts, labels = [f"t{i}" for i in range(10)], list(range(10))
    part = take_fraction((texts, None, labels), 0.5, seed=1)
    assert isinstance(part, tuple) and part[1] is None
    assert [f"t{y}" for y in part[2]] == part[0]
    array = np.arange(10)
    left, right = labeled_unlabeled_split(array, 0.3, seed=1)
    assert isinstance(left, np.ndarray) and len(left) == 3
    assert sorted(np.concatenate([left, right]).tolist()) == list(range(10))


@pytest.mark.parametrize("fraction", [0, -0.1, 1.5, "0.1", True])
def test_fraction_validation(fraction):
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        take_fraction([1, 2, 3], fraction)
    with pytest.raises(ValueError, match="labeled_fraction"):
        labeled_unlabeled_split([1, 2, 3], fraction)


def test_data_validation():
    with pytest.raises(ValueError, match="empty"):
        take_fraction([], 0.5)
    with pytest.raises(ValueError, match="lengths"):
        take_fraction(([1, 2], [1]), 0.5)
    with pytest.raises(ValueError, match="seed"):
        take_fraction([1, 2], 0.5, seed=-1)
    with pytest.raises(ValueError, match="one entry per text"):
        TextExamples(["a", "b"], labels=[0])
