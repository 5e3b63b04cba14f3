"""Tests of EncT5 as a keras-hub-style task, on tiny random T5 configurations.

The families' common checks (the adapter equals the task's logits from
embeddings and from every layer, every augmentation distils, students from
the teacher and from a config, the model harness) run for EncT5 in
`tests/models/keras_hub_test.py`; these are EncT5's own.
"""

import io
import json
import subprocess
import sys

import keras
import keras_hub
import numpy as np
import pytest
import tensorflow as tf

import augpro_keras
from augpro_keras.models import EncT5Backbone
from augpro_keras.models import EncT5TextClassifier
from augpro_keras.models import EncT5TextClassifierPreprocessor
from augpro_keras.models import EncT5Tokenizer
from augpro_keras.models import TextClassifierAdapter
from augpro_keras.models import export_text_classifier
from augpro_keras.models import student_from_teacher
from tests import keras_hub_tiny as kt

CONFIG = dict(vocabulary_size=64, num_layers=3, num_heads=2, hidden_dim=16, intermediate_dim=32,
              dropout=0.0, activation="gelu")

# keras-hub's own T5Backbone warns about its attention `mask` argument.
pytestmark = [pytest.mark.filterwarnings("ignore:Layer '.*_attention'"),
              pytest.mark.filterwarnings("ignore:You are using a softmax over axis")]


def make_inputs(batch=3, length=9, vocabulary_size=64):
    rng = np.random.default_rng(0)
    token_ids = rng.integers(3, vocabulary_size, (batch, length)).astype("int32")
    token_ids[0, -1] = 1  # </s>
    token_ids[1, 5:] = 0
    token_ids[1, 4] = 1
    token_ids[2, 2:] = 0
    token_ids[2, 1] = 1
    return {"token_ids": token_ids, "padding_mask": token_ids != 0}


def t5_backbone(seed=1, **overrides):
    keras.utils.set_random_seed(seed)
    config = dict(CONFIG, **overrides)
    return keras_hub.models.T5Backbone(**config)


def t5_reference_logits(t5, head, inputs):
    """EncT5's forward pass computed by hand from keras-hub's own `T5Backbone`.

    The encoder is `T5Backbone`'s; the decoder is its first decoder layer
    on one position holding the padding token's embedding (what EncT5's
    query starts as), then its final norm and the head.
    """
    mask = inputs["padding_mask"].astype("int32")
    encoder_output = t5({
        "encoder_token_ids": inputs["token_ids"], "encoder_padding_mask": mask,
        "decoder_token_ids": np.zeros((len(mask), 1), "int32"),
        "decoder_padding_mask": np.ones((len(mask), 1), "int32"),
    })["encoder_sequence_output"]
    query = t5.token_embedding(np.zeros((len(mask), 1), "int32"))
    # Over one position the first layer's relative position bias is one
    # constant in one softmax score, so it changes nothing.
    y, _ = t5.decoder_transformer_layers[0](
        query, encoder_hidden_states=encoder_output, encoder_attention_mask=mask[:, None, :],
        use_causal_mask=False)
    return head(t5.decoder_layer_norm(y)[:, 0, :])


def test_logits_equal_a_forward_pass_through_keras_hubs_t5():
    t5 = t5_backbone()
    backbone = EncT5Backbone.like_t5(t5)
    backbone.load_t5_weights(t5)
    task = EncT5TextClassifier(backbone, num_classes=3, dropout=0.0)
    inputs = make_inputs()
    expected = t5_reference_logits(t5, task.output_dense, inputs)
    np.testing.assert_allclose(task(inputs), expected, atol=1e-6, rtol=0)
    model = TextClassifierAdapter(task, special_token_ids=(0, 1, 2), pad_token_id=0)
    embeddings = model.embed_tokens(inputs["token_ids"])
    for layer in range(model.num_layers + 1):
        hidden = model.hidden_states_at(embeddings, inputs["padding_mask"], layer=layer)
        np.testing.assert_allclose(
            model.logits_from_hidden(hidden, inputs["padding_mask"], layer=layer), expected,
            atol=1e-6, rtol=0)


def test_the_preprocessor_packs_t5_style():
    tokenizer = kt.tokenizer("enct5")
    preprocessor = EncT5TextClassifierPreprocessor(tokenizer, sequence_length=8)
    the, movie = tokenizer.token_to_id("▁the"), tokenizer.token_to_id("▁movie")
    fun = tokenizer.token_to_id("▁fun")
    single = preprocessor(tf.constant(["the movie"]))
    assert sorted(single) == ["padding_mask", "token_ids"]  # T5 has no segment ids
    np.testing.assert_array_equal(single["token_ids"], [[the, movie, 1, 0, 0, 0, 0, 0]])
    np.testing.assert_array_equal(single["padding_mask"], [[1, 1, 1, 0, 0, 0, 0, 0]])
    pair = preprocessor(x=(tf.constant(["the movie"]), tf.constant(["fun"])))
    np.testing.assert_array_equal(pair["token_ids"], [[the, movie, 1, fun, 1, 0, 0, 0]])
    long = preprocessor(x=(tf.constant(["the movie " * 5]), tf.constant(["fun"])))
    np.testing.assert_array_equal(long["token_ids"], [[the, movie, the, movie, the, 1, fun, 1]])
    assert preprocessor.get_config()["sequence_length"] == 8
    assert type(EncT5TextClassifierPreprocessor.from_config(preprocessor.get_config())) is type(
        preprocessor)


def test_padding_is_masked_and_dropout_is_active_in_training():
    task = kt.task("enct5", dropout=0.1)
    x = task.preprocessor(tf.constant(["the movie was great", "good"]))
    logits = task(x).numpy()
    changed = dict(x, token_ids=tf.where(x["padding_mask"], x["token_ids"], 7))
    np.testing.assert_allclose(task(changed), logits, atol=1e-6, rtol=0)
    assert not np.allclose(task(x, training=True), logits)


def test_special_token_ids_come_from_the_t5_tokenizer():
    task = kt.task("enct5")
    model = TextClassifierAdapter(task)
    size = task.preprocessor.tokenizer.vocabulary_size()
    # <pad>, </s>, <unk>; the tiny vocabulary fills every embedding row.
    assert model.special_token_ids == (0, 1, 2) and model.pad_token_id == 0
    assert model.vocabulary_size == size and model.num_layers == 2
    bigger = EncT5TextClassifier(EncT5Backbone(**dict(CONFIG, vocabulary_size=size + 4)),
                                 num_classes=2, preprocessor=task.preprocessor)
    # Rows beyond the SentencePiece vocabulary (T5 pads its table) are no words.
    assert TextClassifierAdapter(bigger).special_token_ids == (0, 1, 2) + tuple(
        range(size, size + 4))


def test_configs_hold_every_argument():
    backbone = EncT5Backbone(**dict(CONFIG, key_value_dim=4, use_gated_activation=False,
                                    layer_norm_epsilon=1e-5, dropout=0.2))
    config = backbone.get_config()
    for key, value in dict(CONFIG, key_value_dim=4, use_gated_activation=False,
                           layer_norm_epsilon=1e-5, dropout=0.2).items():
        assert config[key] == value, key
    clone = EncT5Backbone.from_config(config)
    assert [w.shape for w in clone.weights] == [w.shape for w in backbone.weights]
    task = EncT5TextClassifier(backbone, num_classes=4, activation="softmax", dropout=0.3)
    config = task.get_config()
    assert (config["num_classes"], config["activation"], config["dropout"]) == (4, "softmax", 0.3)
    # Only the position bias layer holds T5's relative position table.
    owners = [layer.name for layer in backbone.transformer_layers
              if layer.self_attention.use_relative_attention_bias]
    assert owners == [] and backbone.relative_position_bias.embeddings.shape == (32, 2)


def test_invalid_arguments_are_refused():
    with pytest.raises(ValueError, match="hidden_dim=16, num_heads=3"):
        EncT5Backbone(**dict(CONFIG, num_heads=3))
    with pytest.raises(ValueError, match="num_layers.*Received: 0"):
        EncT5Backbone(**dict(CONFIG, num_layers=0))
    with pytest.raises(ValueError, match=r"dropout.*\[0, 1\).*Received: 1.5"):
        EncT5Backbone(**dict(CONFIG, dropout=1.5))
    backbone = EncT5Backbone(**CONFIG)
    with pytest.raises(ValueError, match="num_classes.*Received: -1"):
        EncT5TextClassifier(backbone, num_classes=-1)
    with pytest.raises(ValueError, match="must be an `EncT5Backbone`. Received: T5Backbone"):
        EncT5TextClassifier(t5_backbone(), num_classes=2)


def test_from_t5_preset_folder_uses_the_t5_weights(tmp_path):
    t5 = t5_backbone(num_layers=2, dropout=0.0)
    t5.save_to_preset(str(tmp_path))
    tokenizer = kt.tokenizer("enct5")
    keras_hub.models.T5Tokenizer(proto=tokenizer.proto).save_to_preset(str(tmp_path))
    task = EncT5TextClassifier.from_t5_preset(str(tmp_path), num_classes=2, sequence_length=16)
    assert isinstance(task.preprocessor.tokenizer, EncT5Tokenizer)
    assert task.preprocessor.sequence_length == 16
    backbone = task.backbone
    assert backbone.num_layers == 2 and backbone.get_config()["activation"] == "gelu"
    np.testing.assert_array_equal(backbone.token_embedding.embeddings, t5.token_embedding.embeddings)
    np.testing.assert_array_equal(backbone.relative_position_bias.embeddings,
                                  t5.encoder_transformer_layers[0].self_attention.relative_attention_bias)
    np.testing.assert_array_equal(backbone.decoder.query, t5.token_embedding.embeddings[0])
    source = t5.decoder_transformer_layers[0]
    np.testing.assert_array_equal(backbone.decoder.transformer_layer.cross_attention.key_projector.kernel,
                                  source.cross_attention.key_projector.kernel)
    assert len(backbone.decoder.transformer_layer.weights) == len(source.weights) - 1  # no bias
    inputs = make_inputs(length=7)
    np.testing.assert_allclose(task(inputs), t5_reference_logits(t5, task.output_dense, inputs),
                               atol=1e-6, rtol=0)
    # The preset's special ids reach the Distiller's view: <pad>, </s>, <unk>
    # and the embedding rows beyond the tokenizer's vocabulary.
    size = tokenizer.vocabulary_size()
    assert size < 64
    assert TextClassifierAdapter(task).special_token_ids == (0, 1, 2) + tuple(range(size, 64))

    (tmp_path / "tokenizer.json").unlink()
    with pytest.raises(ValueError, match="Could not load the T5 tokenizer of preset"):
        EncT5TextClassifier.from_t5_preset(str(tmp_path), num_classes=2)


RELOADED = """
import json
import numpy as np, tensorflow as tf, tensorflow_text  # noqa: F401
import keras_hub
import augpro_keras  # registers the EncT5 classes
from augpro_keras.models import EncT5TextClassifier
sentences = {sentences!r}
task = keras_hub.models.TextClassifier.from_preset({preset!r})
same = EncT5TextClassifier.from_preset({preset!r})
served = tf.saved_model.load({saved_model!r})
print(json.dumps({{
    "class": type(task).__name__,
    "tokenizer": type(task.preprocessor.tokenizer).__name__,
    "base_tokenizer": type(keras_hub.tokenizers.Tokenizer.from_preset({preset!r})).__name__,
    "preset": task.predict(sentences, verbose=0).tolist(),
    "same": same.predict(sentences, verbose=0).tolist(),
    "served": served.serve(tf.constant(sentences))["logits"].numpy().tolist(),
}}))
"""


def test_a_distilled_enct5_student_saves_to_a_preset_reloads_and_serves_raw_strings(tmp_path):
    teacher = kt.task("enct5", num_layers=2)
    student = student_from_teacher(teacher, num_layers=1)
    distiller = augpro_keras.Distiller(teacher, student, augmentations=["augpro_mix"], seed=0)
    distiller.compile(optimizer=keras.optimizers.Adam(1e-2), jit_compile=False)
    distiller.fit(kt.text_dataset(n=16), epochs=1, verbose=0)
    assert type(distiller.student) is EncT5TextClassifier
    preset, saved_model = str(tmp_path / "student"), str(tmp_path / "saved_model")
    distiller.student.save_to_preset(preset)
    export_text_classifier(distiller.student, saved_model)
    sentences = kt.SENTENCES[:3]
    expected = distiller.student.predict(sentences, verbose=0)
    code = RELOADED.format(sentences=sentences, preset=preset, saved_model=saved_model)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    reloaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert reloaded["class"] == "EncT5TextClassifier"
    assert reloaded["tokenizer"] == reloaded["base_tokenizer"] == "EncT5Tokenizer"
    for key in ("preset", "same", "served"):
        np.testing.assert_allclose(reloaded[key], expected, atol=1e-5, err_msg=key)


def test_sentence_pairs_are_served_packed_as_a_pair(tmp_path):
    task = kt.task("enct5")
    export_text_classifier(task, str(tmp_path / "saved_model"))
    served = tf.saved_model.load(str(tmp_path / "saved_model"))
    a, b = kt.SENTENCES[:2], kt.SENTENCES[2:4]
    expected = task.predict((a, b), verbose=0)
    outputs = served.signatures["serve_pairs"](text_a=tf.constant(a), text_b=tf.constant(b))
    np.testing.assert_allclose(outputs["logits"].numpy(), expected, atol=1e-5)
    assert not np.allclose(expected, task.predict(a, verbose=0))
