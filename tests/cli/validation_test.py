"""ValidationSet: the predictions of `predict` on raw strings, from inputs tokenized once."""

import numpy as np
import pytest

from augpro_keras.cli.validation import ValidationSet
from tests import keras_hub_tiny


@pytest.mark.parametrize("pairs", [False, True])
def test_predictions_are_those_of_predict_on_raw_strings(pairs):
    teacher = keras_hub_tiny.task("bert", seed=0)
    student = keras_hub_tiny.task("bert", seed=1, num_layers=1,
                                  tokenizer_=teacher.preprocessor.tokenizer)
    student.preprocessor = teacher.preprocessor  # one preprocessor, as students from a teacher
    dataset = keras_hub_tiny.text_dataset(n=24, batch_size=8, labeled=False, pairs=pairs)
    labels = np.arange(24) % 2
    validation = ValidationSet(dataset, num_examples=20, labels=labels)  # 4 padding examples
    np.testing.assert_array_equal(validation.labels, labels[:20])
    for model in (teacher, student, teacher):
        expected = model.predict(dataset, verbose=0)[:20]
        np.testing.assert_array_equal(validation.predict(model), expected)
        assert model.preprocessor is teacher.preprocessor  # set back after the call
    # Tokenized once: both models share the prepared inputs of their preprocessor.
    assert validation.inputs_of(student) is validation.inputs_of(teacher)


def test_models_without_a_preprocessor_take_the_batches_as_they_are():
    teacher = keras_hub_tiny.task("bert", seed=0)
    dataset = keras_hub_tiny.text_dataset(n=16, batch_size=8, labeled=False).map(
        teacher.preprocess_samples)
    teacher.preprocessor = None
    validation = ValidationSet(dataset, num_examples=16, labels=np.zeros(16))
    np.testing.assert_array_equal(validation.predict(teacher), teacher.predict(dataset, verbose=0))
    assert teacher.preprocessor is None


def test_a_set_larger_than_max_bytes_streams_through_predict():
    teacher = keras_hub_tiny.task("bert", seed=0)
    dataset = keras_hub_tiny.text_dataset(n=16, batch_size=8, labeled=False)
    # One batch of 8 x 12 int32 ids and segment ids and a bool mask is 864 bytes.
    validation = ValidationSet(dataset, num_examples=16, labels=np.zeros(16), max_bytes=1000)
    assert validation.inputs_of(teacher) is None
    np.testing.assert_array_equal(validation.predict(teacher), teacher.predict(dataset, verbose=0))
    assert ValidationSet(dataset, 16, np.zeros(16), max_bytes=2000).inputs_of(teacher) is not None
