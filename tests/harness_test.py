"""The shared harness on the tiny reference model, and on broken objects it must reject."""

import keras
import numpy as np
import pytest

from augpro_keras.augmentations import base
from augpro_keras.layers import MixUpEmbedding
from tests import harness
from tests import tiny


def test_tiny_transformer_model_harness():
    x, _ = tiny.batch(4, length=8)
    loaded = harness.run_model_test(tiny.model(num_layers=1, hidden_dim=8, dropout=0.1), x)
    assert loaded.special_token_ids == tiny.model().special_token_ids


@keras.saving.register_keras_serializable(package="tests")
class ForgetfulMixUp(MixUpEmbedding):
    """A layer whose config forgets `lam`: the round trip gives another layer."""

    def get_config(self):
        config = super().get_config()
        config.pop("lam")
        return config


def test_the_layer_harness_rejects_a_layer_whose_config_loses_an_argument():
    rng = np.random.default_rng(0)
    data = {
        "embeddings": rng.normal(size=(2, 3, 4)).astype("float32"),
        "padding_mask": np.ones((2, 3), bool),
        "partner_index": np.array([1, 0], "int32"),
    }
    with pytest.raises(AssertionError):
        harness.run_layer_test(ForgetfulMixUp, {"lam": 0.3}, data, expected_output_shape=((2, 3, 4), (2, 3)))


def test_the_layer_harness_checks_the_output_shape():
    rng = np.random.default_rng(0)
    data = {"embeddings": rng.normal(size=(2, 3, 4)).astype("float32"), "padding_mask": np.ones((2, 3), bool)}
    with pytest.raises(AssertionError):
        harness.run_layer_test(MixUpEmbedding, {"seed": 1}, data, expected_output_shape=((2, 3, 5), (2, 3)),
                               deterministic=False)


@keras.saving.register_keras_serializable(package="tests")
class OutOfVocabulary(base.Augmentation):
    """Produces ids past the vocabulary: the harness must notice (not registered by name)."""

    default_name = "out_of_vocabulary"
    produces_tokens = True

    def compute(self, context):
        ids = keras.ops.cast(context.token_ids, "int32") + 1000
        return base.AugmentationOutput(
            loss=context.distance(context.student_logits_on(context.token_ids, context.padding_mask,
                                                            context.segment_ids), context.teacher_logits),
            token_ids=ids,
            padding_mask=context.padding_mask,
        )


def test_the_augmentation_harness_rejects_invalid_token_outputs():
    with pytest.raises(AssertionError):
        harness.run_augmentation_test(OutOfVocabulary(), run_jit_check=False)
