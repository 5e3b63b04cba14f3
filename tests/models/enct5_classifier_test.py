"""Tests of `EncT5Classifier` on tiny random T5 configurations."""

import io

import keras
import keras_hub
import numpy as np
import pytest

from augpro_keras.models.enct5_classifier import EncT5Classifier

CONFIG = dict(
    vocabulary_size=64,
    hidden_dim=16,
    num_layers=3,
    num_heads=2,
    intermediate_dim=32,
    dropout=0.1,
    activation="gelu",
)


def make_inputs(batch=3, length=9, vocabulary_size=64):
    rng = np.random.default_rng(0)
    token_ids = rng.integers(3, vocabulary_size, (batch, length)).astype("int32")
    token_ids[0, -1] = 1  # </s>
    token_ids[1, 5:] = 0
    token_ids[1, 4] = 1
    token_ids[2, 2:] = 0
    token_ids[2, 1] = 1
    return {"token_ids": token_ids, "padding_mask": token_ids != 0}


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    return EncT5Classifier(num_classes=3, special_token_ids=[0, 1, 2], **CONFIG)


def test_embeddings_path_and_layer_split_equal_call(model):
    inputs = make_inputs()
    logits = model(inputs)
    assert logits.shape == (3, 3) and np.isfinite(logits).all()
    embeddings = model.embed_tokens(inputs["token_ids"])
    np.testing.assert_array_equal(
        model.call_from_embeddings(embeddings, inputs["padding_mask"]), logits
    )
    for layer in range(model.num_layers + 1):
        hidden = model.hidden_states_at(embeddings, inputs["padding_mask"], layer=layer)
        assert hidden.shape == (3, 9, 16)
        np.testing.assert_array_equal(
            model.logits_from_hidden(hidden, inputs["padding_mask"], layer=layer), logits
        )
    # Segment ids do not exist in T5 and change nothing.
    np.testing.assert_array_equal(
        model(dict(inputs, segment_ids=np.ones_like(inputs["token_ids"]))), logits
    )
    with pytest.raises(ValueError, match=r"\[0, 3\].*Received: 4"):
        model.logits_from_hidden(embeddings, inputs["padding_mask"], layer=4)


def test_padding_is_masked(model):
    inputs = make_inputs()
    logits = model(inputs)
    changed = inputs["token_ids"].copy()
    changed[2, 2:] = 7  # Different tokens behind the padding mask of row 2.
    other = model({"token_ids": changed, "padding_mask": inputs["padding_mask"]})
    np.testing.assert_allclose(other[2], logits[2], rtol=1e-6, atol=1e-6)


def test_protocol_properties_and_dropout(model):
    assert model.num_layers == 3 and model.num_classes == 3
    assert model.vocabulary_size == 64 and model.embedding_dim == 16
    assert model.special_token_ids == (0, 1, 2) and model.pad_token_id == 0
    inputs = make_inputs()
    assert not np.allclose(model(inputs, training=True), model(inputs))
    # Only the first encoder layer owns a relative position bias.
    owners = [
        layer.name
        for layer in model.encoder_transformer_layers + [model.decoder_layer]
        if layer.self_attention.use_relative_attention_bias
    ]
    assert owners == ["transformer_encoder_layer_0"]


def test_config_and_keras_file_round_trip(model, tmp_path):
    inputs = make_inputs()
    config = model.get_config()
    assert config["activation"] == "gelu" and config["key_value_dim"] == 8
    clone = EncT5Classifier.from_config(config)
    assert [w.shape for w in clone.weights] == [w.shape for w in model.weights]
    path = str(tmp_path / "enct5.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    assert isinstance(restored, EncT5Classifier)
    np.testing.assert_array_equal(restored(inputs), model(inputs))


def tiny_t5_tokenizer():
    import sentencepiece

    words = [f"{a}{b}" for a in "abcdefgh" for b in "ijklmnop"]
    sentences = [" ".join(words[i : i + 7]) for i in range(0, len(words) - 7)]
    proto = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences),
        model_writer=proto,
        vocab_size=60,
        model_type="word",
        pad_id=0,
        eos_id=1,
        unk_id=2,
        bos_id=-1,
        pad_piece="<pad>",
        eos_piece="</s>",
        unk_piece="<unk>",
        hard_vocab_limit=False,
    )
    return keras_hub.models.T5Tokenizer(proto=proto.getvalue())


# keras-hub's own T5Backbone warns about its attention `mask` argument.
@pytest.mark.filterwarnings("ignore:Layer '.*_attention'")
@pytest.mark.filterwarnings("ignore:You are using a softmax over axis")
def test_from_preset_folder_uses_the_t5_weights(tmp_path):
    keras.utils.set_random_seed(1)
    backbone = keras_hub.models.T5Backbone(
        vocabulary_size=64,
        num_layers=2,
        num_heads=2,
        hidden_dim=16,
        intermediate_dim=32,
        dropout=0.0,
        activation="gelu",
    )
    backbone.save_to_preset(str(tmp_path))
    tokenizer = tiny_t5_tokenizer()
    tokenizer.save_to_preset(str(tmp_path))
    model = EncT5Classifier.from_preset(str(tmp_path), num_classes=2)

    # Special ids from the tokenizer: <pad>, </s>, <unk> and the embedding rows
    # beyond its vocabulary.
    tokenizer_size = tokenizer.vocabulary_size()
    assert tokenizer_size < 64
    assert model.special_token_ids == (0, 1, 2) + tuple(range(tokenizer_size, 64))
    assert model.pad_token_id == 0
    assert model.num_layers == 2 and model.config_values["activation"] == "gelu"
    np.testing.assert_array_equal(model.embedding_matrix, backbone.token_embedding.embeddings)
    for source, target in zip(
        backbone.encoder_transformer_layers, model.encoder_transformer_layers
    ):
        for a, b in zip(source.get_weights(), target.get_weights()):
            np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(
        model.decoder_query, backbone.token_embedding.embeddings[0]
    )
    source = backbone.decoder_transformer_layers[0]
    np.testing.assert_array_equal(
        model.decoder_layer.cross_attention.key_projector.kernel,
        source.cross_attention.key_projector.kernel,
    )
    assert len(model.decoder_layer.weights) == len(source.weights) - 1  # No position bias.

    # The encoder, run from embeddings, is exactly keras-hub's T5 encoder.
    inputs = make_inputs(length=7)
    padding_mask = inputs["padding_mask"].astype("int32")
    expected = backbone(
        {
            "encoder_token_ids": inputs["token_ids"],
            "encoder_padding_mask": padding_mask,
            "decoder_token_ids": np.zeros((3, 1), "int32"),
            "decoder_padding_mask": np.ones((3, 1), "int32"),
        }
    )["encoder_sequence_output"]
    hidden = model.hidden_states_at(
        model.embed_tokens(inputs["token_ids"]), inputs["padding_mask"], layer=2
    )
    np.testing.assert_array_equal(model.encoder_layer_norm(hidden), expected)

    # Without a tokenizer the special ids must be given (checked before the
    # backbone loads; `BertClassifier`'s test covers passing them).
    (tmp_path / "tokenizer.json").unlink()
    with pytest.raises(ValueError, match="special_token_ids"):
        EncT5Classifier.from_preset(str(tmp_path), num_classes=2)


def test_invalid_arguments_are_refused():
    config = dict(CONFIG, vocabulary_size=20)
    with pytest.raises(ValueError, match="special token ids of its tokenizer"):
        EncT5Classifier(num_classes=2, **config)
    with pytest.raises(ValueError, match=r"\[0, 20\).*\[20\]"):
        EncT5Classifier(num_classes=2, special_token_ids=[0, 20], **config)
    with pytest.raises(ValueError, match="hidden_dim=16, num_heads=3"):
        EncT5Classifier(num_classes=2, special_token_ids=[0], **dict(config, num_heads=3))
    with pytest.raises(ValueError, match="num_classes.*Received: -1"):
        EncT5Classifier(num_classes=-1, special_token_ids=[0], **config)


def test_model_harness(model):
    """Config and `.keras` round trips with equal outputs, then a fit step."""
    from tests import harness
    loaded = harness.run_model_test(model, make_inputs(), labels=np.array([0, 2, 1]))
    assert loaded.special_token_ids == model.special_token_ids
