"""Sources as `tf.data`: the same examples, labels, subsets and batches as the list loaders."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from augpro_keras.data import demo
from augpro_keras.data import glue
from augpro_keras.data import make_dataset
from augpro_keras.data import splits
from augpro_keras.data import tokenizers
from augpro_keras.data import tsv
from augpro_keras.data.preprocessing import batch_text_dataset
from augpro_keras.data.text_dataset import TextDataset

def assert_same(dataset, examples):
    assert isinstance(dataset, TextDataset)
    got = dataset.to_examples()
    assert dataset.num_examples == examples.num_examples == got.num_examples
    assert got.texts_a == examples.texts_a and got.texts_b == examples.texts_b
    if examples.labels is None:
        assert got.labels is None
    else:
        np.testing.assert_allclose(got.labels, examples.labels, rtol=1e-6)
    assert got.label_names == examples.label_names


@pytest.mark.parametrize("task, split", [("rte", "train"), ("stsb", "validation"),
                                         ("sst2", "validation")])
def test_glue_tsv_dataset_reads_what_the_list_loader_reads(task, split, glue_dir):
    dataset = glue.glue_dataset(task, split, glue_dir)
    # The file is read by tf.data, line by line, not from Python lists.
    assert b"TextLineDataset" in _graph(dataset.dataset)
    assert_same(dataset, glue.load_glue(task, split, glue_dir))


def _graph(dataset):
    """The serialized `tf.data` graph of a dataset (its ops by name)."""
    return dataset._as_serialized_graph().numpy()


def test_glue_tsv_bad_label_names_file_and_line(tmp_path):
    folder = tmp_path / "RTE"
    folder.mkdir()
    (folder / "train.tsv").write_text(
        "index\tsentence1\tsentence2\tlabel\n0\ta\tb\tentailment\n1\tc\td\tmaybe\n")
    with pytest.raises(ValueError, match=r"train.tsv, line 3: label 'maybe' is not valid for RTE"):
        glue.glue_dataset("rte", "train", str(tmp_path))


def test_tfds_dataset_is_mapped_without_a_pass(monkeypatch):
    import tensorflow_datasets as tfds

    def fake_load(name, split):
        return tf.data.Dataset.from_tensor_slices({
            "sentence1": [b"A score.", b"Another."], "sentence2": [b"B.", b"C."],
            "label": tf.constant([4.5, 0.25], tf.float32), "idx": tf.constant([0, 1], tf.int32),
        })

    monkeypatch.setattr(tfds, "load", fake_load)
    monkeypatch.setattr(glue, "_reachable", lambda host: True)
    dataset = glue.glue_dataset("stsb", "train")
    assert dataset.num_examples == 2 and dataset.is_pair and dataset.is_regression
    texts, label = next(iter(dataset.dataset))
    assert texts["texts_a"].numpy() == b"A score." and texts["texts_b"].numpy() == b"B."
    assert label.dtype == tf.float32 and float(label) == 4.5


def test_files_dataset_reads_what_the_list_loader_reads(tmp_path):
    csv_path = tmp_path / "x.csv"
    csv_path.write_text('\ufefftitle,body,stars\n"a, b",x,good\n\n"multi\nline","q""uote",bad\n'
                        "c,d,good\n")
    assert_same(tsv.text_classification_dataset(str(csv_path), ["title", "body"], "stars"),
                tsv.load_text_classification_file(str(csv_path), ["title", "body"], "stars"))
    tsv_path = tmp_path / "x.tsv"
    tsv_path.write_text('\ufefftext\tscore\r\n a\t 1.5\r\n\t\r\nb\t2\r\n  \n"c\t-3\n')
    for label_column in ("score", None):
        dataset = tsv.text_classification_dataset(str(tsv_path), "text", label_column)
        assert_same(dataset, tsv.load_text_classification_file(str(tsv_path), "text", label_column))
    assert dataset.has_labels is False and dataset.labels is None
    demo_path = demo.demo_file("validation")
    assert_same(tsv.text_classification_dataset(demo_path, "sentence", "label", ["0", "1"]),
                tsv.load_text_classification_file(demo_path, "sentence", "label", ["0", "1"]))
    assert demo.demo_dataset("validation").label_names == demo.LABEL_NAMES


@pytest.mark.parametrize("content, message", [
    ("text\tlabel\na\tgood\nb\t\n", r"x.tsv, line 3: the label is empty"),
    ("text\tlabel\na\t1\nb\t-2\n", r"x.tsv, line 3: label '-2' is negative"),
    ("text\tlabel\na\t1\nb\tgood\n", r"mix numbers and names: line 2 has '1', line 3 has 'good'"),
    ("text\tlabel\na\t1\nb\n", r"x.tsv, line 3: expected column 'label' at position 2"),
    ("text\tlabel\n", r"has a header row but no examples"),
])
def test_files_dataset_check_names_file_and_line(tmp_path, content, message):
    path = tmp_path / "x.tsv"
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        tsv.text_classification_dataset(str(path), "text", "label")


def test_bad_byte_names_line_and_column(tmp_path):
    path = tmp_path / "x.tsv"
    path.write_bytes(b"text\tlabel\na\t1\nb\xe9\t0\n")
    with pytest.raises(ValueError, match=r"x.tsv, line 3, column 2: byte 0xe9 is not UTF-8"):
        tsv.text_classification_dataset(str(path), "text", "label")


def test_subsets_are_the_examples_that_lists_give_for_a_seed():
    examples = demo.load_demo("train")
    dataset = demo.demo_dataset("train")
    assert_same(dataset.take_fraction(0.1, seed=3), splits.take_fraction(examples, 0.1, seed=3))
    labeled, unlabeled = dataset.labeled_unlabeled_split(0.25, seed=1)
    labeled_lists, unlabeled_lists = splits.labeled_unlabeled_split(examples, 0.25, seed=1)
    assert_same(labeled, labeled_lists)
    assert_same(unlabeled, unlabeled_lists)
    assert dataset.distinct_labels() == [0, 1]
    assert unlabeled.without_labels().labels is None
    assert not isinstance(unlabeled.without_labels().elements().element_spec, tuple)


def test_batches_are_those_of_make_dataset_for_a_seed():
    vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "a"]
    tokenizer = tokenizers.bert_preprocessor(vocabulary, 16)
    examples = splits.take_fraction(demo.load_demo("train"), 0.5, 5)
    dataset = demo.demo_dataset("train").take_fraction(0.5, 5)

    def two_epochs(batches):
        return [[(t.numpy().tolist(), y.numpy().tolist()) for t, y in batches.take(3)]
                for _ in range(2)]

    keras.utils.set_random_seed(5)
    old = two_epochs(make_dataset(*examples, tokenizer, 16, 32, shuffle=True, seed=5,
                                  drop_remainder=True))
    keras.utils.set_random_seed(5)
    new = two_epochs(batch_text_dataset(dataset, tokenizer, 16, 32, shuffle=True, seed=5,
                                        drop_remainder=True))
    assert new == old and new[0] != new[1]


def test_texts_are_the_corpus_in_the_order_of_the_lists(tmp_path):
    """`texts()` streams first texts then second texts, as the vocabulary's corpus."""
    path = tmp_path / "pairs.tsv"
    path.write_text("a\tb\tlabel\none\ttwo\t0\nthree\tfour\t1\n")
    dataset = tsv.text_classification_dataset(str(path), ["a", "b"], "label")
    examples = tsv.load_text_classification_file(str(path), ["a", "b"], "label")
    corpus = [t.decode("utf-8") for t in dataset.texts().as_numpy_iterator()]
    assert corpus == examples.texts_a + examples.texts_b == ["one", "three", "two", "four"]
    assert dataset.select([1]).texts_b == ["four"] and dataset.select(range(1)).labels == [0]


def test_a_csv_file_without_quotes_is_read_by_text_line_dataset(tmp_path):
    path = tmp_path / "plain.csv"
    path.write_text("\ufefftext,label,extra\nfine film,good,1\n,,\nbad film,bad\n")
    dataset = tsv.text_classification_dataset(str(path), "text", "label")
    assert b"TextLineDataset" in _graph(dataset.dataset)
    assert_same(dataset, tsv.load_text_classification_file(str(path), "text", "label"))
    quoted = tmp_path / "quoted.csv"
    quoted.write_text('text,label\n"fine, really",good\n')
    dataset = tsv.text_classification_dataset(str(quoted), "text", "label")
    assert b"TextLineDataset" not in _graph(dataset.dataset)
    assert_same(dataset, tsv.load_text_classification_file(str(quoted), "text", "label"))
