"""Data of a run: sources, subsets, the unlabeled setting, padding, metrics."""

import keras_hub
import numpy as np
import pytest

from augpro_keras.cli import config as config_lib
from augpro_keras.cli import inputs
from augpro_keras.data import TextExamples


def _write(path, rows):
    path.write_text("text\tstars\n" + "".join(f"{t}\t{y}\n" for t, y in rows))
    return str(path)


def test_files_source_with_string_labels(tmp_path):
    train = _write(tmp_path / "train.tsv", [(f"text {i}", "good" if i % 2 else "bad")
                                             for i in range(40)])
    dev = _write(tmp_path / "dev.tsv", [("fine", "good"), ("poor", "bad")])
    config = config_lib.validate({"data": {
        "source": "files", "train_file": train, "validation_file": dev,
        "text_columns": "text", "label_column": "stars", "batch_size": 8}})
    data = inputs.load_task_data(config)
    assert data.name == "train.tsv"
    assert data.label_names == ("bad", "good") and data.num_classes == 2
    assert data.metrics == ("accuracy", "f1") and not data.is_regression
    assert data.distill is data.train


def test_labeled_fraction_gives_unlabeled_distillation_data():
    config = config_lib.validate({"data": {"labeled_fraction": 0.25, "max_train_examples": 400}})
    data = inputs.load_task_data(config)
    assert data.train.num_examples == 100 and data.distill.num_examples == 300
    assert data.distill.labels is None and data.train.labels is not None
    assert not set(data.train.texts_a) & set(data.distill.texts_a)


def test_splits_stay_in_tf_data_and_subsets_are_those_of_lists():
    """The run's splits are read by tf.data from the file; the subsets of a seed
    are the examples that `splits` picks from lists."""
    from augpro_keras.data import demo
    from augpro_keras.data import splits
    from augpro_keras.data.text_dataset import TextDataset

    config = config_lib.validate({"data": {"labeled_fraction": 0.25, "max_train_examples": 400},
                                  "seed": 3})
    data = inputs.load_task_data(config)
    assert isinstance(data.train, TextDataset) and isinstance(data.distill, TextDataset)
    assert b"TextLineDataset" in data.train.dataset._as_serialized_graph().numpy()
    lists = splits.take_fraction(demo.load_demo("train"), 400 / 800, 3)
    labeled, unlabeled = splits.labeled_unlabeled_split(lists, 0.25, 3)
    assert data.train.texts_a == labeled.texts_a
    assert list(data.train.labels) == labeled.labels
    assert data.distill.texts_a == unlabeled.texts_a and data.distill.labels is None
    batches = inputs.train_dataset(data.distill, inputs.build_tokenizer(config, lists.texts_a),
                                   config, labeled=False)
    assert not isinstance(batches.element_spec, tuple) or len(batches.element_spec) == 1


def test_glue_source_reads_local_files(glue_dir):
    config = config_lib.validate({"data": {"source": "glue", "task": "stsb",
                                           "glue_dir": str(glue_dir),
                                           "max_validation_examples": 50},
                                  "distill": {"distillation_loss": "mse"}})
    data = inputs.load_task_data(config)
    assert data.name == "STS-B" and data.is_regression and data.num_classes == 1
    assert data.metrics == ("pearson", "spearman") and data.train.is_pair
    assert data.train.num_examples == 4000 and data.validation.num_examples == 50
    scores = np.asarray(data.validation.labels)
    values = inputs.compute_metrics(data, scores[:, None] * 2 + 1, scores)
    assert values == pytest.approx({"pearson": 1.0, "spearman": 1.0})


def test_too_small_training_set_is_refused():
    config = config_lib.validate({"data": {"max_train_examples": 10, "batch_size": 32}})
    with pytest.raises(ValueError, match="fewer than one batch"):
        inputs.load_task_data(config)


def test_eval_dataset_pads_to_whole_batches():
    config = config_lib.validate({"data": {"eval_batch_size": 16, "sequence_length": 12}})
    data = inputs.load_task_data(config)
    tokenizer = inputs.build_tokenizer(config, data.train.texts_a)
    subset = data.validation.select(range(20))
    dataset, n = inputs.eval_dataset(subset, tokenizer, config)
    # Raw strings in whole batches; the models' preprocessor packs them to length 12.
    batches = [texts for (texts,) in dataset]
    assert n == 20 and [b.shape for b in batches] == [(16,), (16,)]
    assert batches[1].dtype == "string"
    assert tokenizer(x=batches[0])["token_ids"].shape == (16, 12)
    with pytest.raises(ValueError, match="divisible by the 3 replicas"):
        inputs.check_batch_size(32, 3, "data.batch_size")


def test_computed_wordpiece_vocabulary_is_the_same_again_and_saves_with_the_model(tmp_path):
    config = config_lib.validate({})
    data = inputs.load_task_data(config)
    tokenizer = inputs.build_tokenizer(config, data.train.texts_a)
    again = inputs.build_tokenizer(config, data.train.texts_a)  # as a resumed run does
    assert isinstance(tokenizer, keras_hub.models.BertTextClassifierPreprocessor)
    vocabulary = tokenizer.tokenizer.get_vocabulary()
    assert again.tokenizer.get_vocabulary() == vocabulary
    assert vocabulary[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert "skelda" in vocabulary  # Whole words for the demo.
    text = data.validation.texts_a[0]
    from augpro_keras.cli.modeling import build_teacher

    build_teacher(config, tokenizer, data).save_to_preset(str(tmp_path))
    reloaded = inputs.preset_tokenizer(str(tmp_path), config["data"]["sequence_length"])
    np.testing.assert_array_equal(reloaded.tokenizer(text), tokenizer.tokenizer(text))


@pytest.mark.parametrize("kind", ["wordpiece", "sentencepiece"])
def test_legacy_tokenizer_json_loads_as_a_keras_hub_tokenizer(tmp_path, kind):
    """`tokenizer.json` files of `.keras` checkpoints: a WordPiece vocabulary and
    lowercase flag, or a SentencePiece proto, become keras-hub tokenizers."""
    import base64
    import json

    from augpro_keras.data import special_tokens
    from augpro_keras.data import train_sentencepiece

    path = tmp_path / "tokenizer.json"
    texts = ["the kettle works well", "a bad kettle", "the lamp broke"] * 4
    if kind == "wordpiece":
        vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "kettle", "works"]
        spec = {"class": "WordPieceTextTokenizer",
                "config": {"vocabulary": vocabulary, "lowercase": True}}
        expected = keras_hub.tokenizers.WordPieceTokenizer
    else:
        proto = train_sentencepiece(texts, vocabulary_size=30, model_type="word").proto
        spec = {"class": "SentencePieceTextTokenizer",
                "config": {"proto": base64.b64encode(proto).decode("ascii")}}
        expected = keras_hub.tokenizers.SentencePieceTokenizer
    path.write_text(json.dumps(spec), encoding="utf-8")
    tokenizer = inputs.load_tokenizer(str(path))
    assert isinstance(tokenizer, expected)
    assert special_tokens(tokenizer).pad == 0
    again_path = tmp_path / "again.json"
    inputs.save_tokenizer(tokenizer, str(again_path))
    assert json.loads(again_path.read_text(encoding="utf-8")) == spec
    again = inputs.load_tokenizer(str(again_path))
    np.testing.assert_array_equal(again("The kettle works"), tokenizer("The kettle works"))
    packed = inputs.pack(TextExamples(["the kettle works"], None, [0]), tokenizer, 8)
    assert packed["token_ids"].shape == (1, 8) and packed["token_ids"][0, -1] == 0
