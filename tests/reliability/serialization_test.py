"""Every layer, model adapter and the Distiller survive get_config/from_config and `.keras` files."""

import keras
import keras_hub
import numpy as np
import pytest

from augpro_keras import Distiller
from augpro_keras import augmentations as aug
from augpro_keras.layers import EmbeddingProjection
from augpro_keras.layers import FGSMPerturb
from augpro_keras.layers import MixUpEmbedding
from augpro_keras.models import EncT5Backbone
from augpro_keras.models import EncT5TextClassifier
from augpro_keras.models import TextClassifierAdapter
from tests import tiny

B, L, H, V = 3, 6, 8, 20


def _layer_cases():
    rng = np.random.default_rng(0)
    embeddings = rng.normal(size=(B, L, H)).astype("float32")
    table = rng.normal(size=(V, H)).astype("float32")
    gradient = rng.normal(size=(B, L, H)).astype("float32")
    mask = np.ones((B, L), bool)
    mask[1, 4:] = False

    def projection():
        layer = EmbeddingProjection(similarity="dot", chunk_size=7, excluded_token_ids=(0, 1), pad_token_id=0)
        e, t, m = keras.Input((L, H)), keras.Input((H,), batch_size=V), keras.Input((L,), dtype="bool")
        return layer, keras.Model([e, t, m], layer(e, t, m)), [embeddings, table, mask]

    def mixup():
        layer = MixUpEmbedding(lam=0.3, alpha=None, seed=4)
        e, m = keras.Input((L, H)), keras.Input((L,), dtype="bool")
        p, w = keras.Input((), dtype="int32"), keras.Input(())
        mixed, mixed_mask = layer(e, m, p, w)
        inputs = [embeddings, mask, np.array([2, 0, 1], "int32"), np.array([0.3, 0.5, 1.0], "float32")]
        return layer, keras.Model([e, m, p, w], [mixed, mixed_mask]), inputs

    def fgsm():
        layer = FGSMPerturb(epsilon=0.25, direction="descent", seed=2)
        e, g, m = keras.Input((L, H)), keras.Input((L, H)), keras.Input((L,), dtype="bool")
        return layer, keras.Model([e, g, m], layer(e, g, m)), [embeddings, gradient, mask]

    return {"EmbeddingProjection": projection, "MixUpEmbedding": mixup, "FGSMPerturb": fgsm}


@pytest.mark.parametrize("name", ["EmbeddingProjection", "MixUpEmbedding", "FGSMPerturb"])
def test_layers_round_trip(name, tmp_path):
    layer, model, inputs = _layer_cases()[name]()
    clone = type(layer).from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    path = tmp_path / f"{name}.keras"
    model.save(path)
    restored = keras.models.load_model(path)
    restored_layer = next(x for x in restored.layers if isinstance(x, type(layer)))
    assert restored_layer.get_config() == layer.get_config()
    # Called directly: the table input has its own "batch" size (V rows).
    for a, b in zip(keras.tree.flatten(model(inputs)), keras.tree.flatten(restored(inputs))):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def _tiny_transformer():
    return tiny.model(num_layers=1, hidden_dim=8, dropout=0.1)


def _bert():
    keras.utils.set_random_seed(0)
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=tiny.VOCAB, num_layers=1, num_heads=2, hidden_dim=8,
        intermediate_dim=16, max_sequence_length=16)
    return keras_hub.models.BertTextClassifier(backbone, num_classes=3, preprocessor=None)


def _enct5():
    keras.utils.set_random_seed(0)
    backbone = EncT5Backbone(vocabulary_size=tiny.VOCAB, hidden_dim=8, num_layers=1, num_heads=2,
                             intermediate_dim=16)
    return EncT5TextClassifier(backbone, num_classes=3, preprocessor=None)


@pytest.mark.parametrize("make", [_tiny_transformer, _bert, _enct5], ids=["tiny", "bert", "enct5"])
def test_model_adapters_round_trip(make, tmp_path):
    model = make()
    x, _ = tiny.batch(4, length=8)
    if isinstance(model, keras_hub.models.TextClassifier):
        x = {key: x[key] for key in model.input}  # EncT5 takes no segment ids
    expected = model.predict(x, verbose=0)
    clone = type(model).from_config(model.get_config())
    clone.set_weights(model.get_weights())
    np.testing.assert_array_equal(clone.predict(x, verbose=0), expected)
    assert _view(clone).special_token_ids == _view(model).special_token_ids

    path = tmp_path / "model.keras"
    model.save(path)
    restored = keras.models.load_model(path)
    assert type(restored) is type(model)
    np.testing.assert_array_equal(restored.predict(x, verbose=0), expected)
    embeddings = _view(restored).embed_tokens(x["token_ids"])
    from_embeddings = _view(restored).call_from_embeddings(
        embeddings, x["padding_mask"], x.get("segment_ids"))
    np.testing.assert_array_equal(from_embeddings, model(x))  # both eager


def _view(model):
    """The model through the Distiller's protocol (keras-hub tasks through the adapter)."""
    if isinstance(model, keras_hub.models.TextClassifier):
        return TextClassifierAdapter(model, special_token_ids=tiny.SPECIAL, pad_token_id=0)
    return model


def test_distiller_round_trip_restores_teacher_student_and_optimizer(tmp_path):
    teacher, student = tiny.smallest_pair()
    distiller = Distiller(
        teacher, student,
        augmentations=["augpro_mix", aug.AugProFGSM(epsilon=0.5, direction="random"), aug.TMix(1, 1)],
        temperature=2.0, mix_group_size=2, projection_chunk_size=16, seed=11,
    )
    distiller.compile(optimizer=keras.optimizers.Adam(1e-3), metrics=["accuracy"], run_eagerly=True)
    distiller.fit(tiny.dataset(batch_size=4), verbose=0)
    x, _ = tiny.batch(4, length=10, seed=2)

    clone = Distiller.from_config(distiller.get_config())
    assert clone.get_config() == distiller.get_config()

    path = tmp_path / "distiller.keras"
    distiller.save(path)
    restored = keras.models.load_model(path)
    assert isinstance(restored, Distiller)
    assert [a.get_config() for a in restored.augmentation_list] == [
        a.get_config() for a in distiller.augmentation_list
    ]
    for original, loaded in ((distiller.teacher, restored.teacher), (distiller.student, restored.student)):
        for a, b in zip(original.get_weights(), loaded.get_weights()):
            np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(restored.predict(x, verbose=0), distiller.predict(x, verbose=0))
    np.testing.assert_array_equal(restored.teacher.predict(x, verbose=0), distiller.teacher.predict(x, verbose=0))
    # Frozen teacher, compiled with the same optimizer state: training goes on.
    assert not restored.teacher.trainable
    assert {id(v) for v in restored.trainable_variables} == {id(v) for v in restored.student.trainable_variables}
    assert int(restored.optimizer.iterations.numpy()) == int(distiller.optimizer.iterations.numpy()) == 1
    for a, b in zip(distiller.optimizer.variables, restored.optimizer.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    restored.fit(tiny.dataset(batch_size=4), verbose=0)
    distiller.fit(tiny.dataset(batch_size=4), verbose=0)
    for a, b in zip(distiller.student.get_weights(), restored.student.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
