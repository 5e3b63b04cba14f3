import os
import time

import pytest

from augpro_keras.data import GLUE_TASKS
from augpro_keras.data import glue
from augpro_keras.data import get_glue_task
from augpro_keras.data import load_glue


@pytest.mark.parametrize(
    "task, split, count, pair",
    [
        ("SST-2", "train", 67349, False),
        ("sst2", "validation", 872, False),
        ("RTE", "train", 2490, True),
        ("rte", "dev", 277, True),
        ("MRPC", "train", 3668, True),
        ("mrpc", "validation", 408, True),
        ("STS-B", "train", 5749, True),
        ("stsb", "validation", 1500, True),
        ("QNLI", "validation", 5463, True),
    ],
)
def test_real_glue_row_counts(glue_dir, task, split, count, pair):
    texts_a, texts_b, labels = load_glue(task, split, glue_dir=glue_dir)
    assert len(texts_a) == len(labels) == count
    assert (texts_b is not None) == pair
    if pair:
        assert len(texts_b) == count


def test_real_glue_values(glue_dir):
    sst2 = load_glue("sst2", "validation", glue_dir)
    assert sst2.texts_a[0].startswith("it 's a charming and often affecting journey")
    assert sst2.labels[:2] == [1, 0]
    # RTE labels are strings in the file: entailment=0, not_entailment=1.
    rte = load_glue("rte", "validation", glue_dir)
    assert rte.labels[:2] == [1, 0]
    assert rte.label_names == ("entailment", "not_entailment")
    # MRPC: UTF-8 BOM before the header, stray quotes in the texts.
    mrpc = load_glue("mrpc", "validation", glue_dir)
    assert mrpc.texts_b[0].startswith('"The foodservice pie business does not fit')
    assert mrpc.labels[:2] == [1, 0]
    stsb = load_glue("STS-B", "validation", glue_dir)
    assert stsb.texts_a[0] == "A man with a hard hat is dancing."
    assert stsb.labels[:2] == [5.0, 4.75]
    assert all(isinstance(y, float) and 0.0 <= y <= 5.0 for y in stsb.labels)
    qnli = load_glue("qnli", "validation", glue_dir)
    assert set(qnli.labels) == {0, 1}


def test_task_names_and_descriptions():
    for spelling in ("SST-2", "sst2", "sst-2", "Sst_2", "glue/sst2"):
        assert get_glue_task(spelling).name == "sst2"
    assert get_glue_task("STS-B") is GLUE_TASKS["stsb"]
    stsb = get_glue_task("stsb")
    assert stsb.is_regression and stsb.num_classes == 1
    assert stsb.metrics == ("pearson", "spearman")
    mnli = get_glue_task("MNLI")
    assert mnli.tfds_name == "glue/mnli" and mnli.num_classes == 3
    assert mnli.splits == ("train", "validation_matched", "validation_mismatched")
    assert get_glue_task("cola").metrics == ("matthews_corrcoef",)
    assert get_glue_task("qqp").metrics == ("accuracy", "f1")
    with pytest.raises(ValueError, match="Allowed tasks"):
        get_glue_task("squad")
    with pytest.raises(ValueError, match="validation_matched"):
        load_glue("mnli", "validation", glue_dir="/tmp")
    with pytest.raises(ValueError, match="Allowed splits"):
        load_glue("rte", "test", glue_dir="/tmp")


def _write(path, lines):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_fake_glue_cola_mnli_qqp(tmp_path):
    _write(tmp_path / "CoLA" / "train.tsv", [
        "gj04\t1\t\tOur friends won't buy this analysis, let alone the next one.",
        "gj04\t0\t*\tThey drank the pub \"dry.",
    ])
    _write(tmp_path / "CoLA" / "dev.tsv", ["cj99\t1\t\tThe sailors rode the breeze."])
    mnli_header = "index\tpromptID\tpairID\tgenre\tsentence1\tsentence2\tlabel1\tgold_label"
    _write(tmp_path / "MNLI" / "train.tsv", [
        mnli_header,
        "0\t1\t1e\tgov\tA man plays.\tSomeone plays.\tentailment\tentailment",
        "1\t2\t2n\tgov\tA man plays.\tHe plays well.\tneutral\tneutral",
        "2\t3\t3c\tgov\tA man plays.\tNobody plays.\tcontradiction\tcontradiction",
    ])
    _write(tmp_path / "MNLI" / "dev_matched.tsv", [
        mnli_header, "0\t1\t1c\tfiction\tIt rains.\tIt is dry.\tcontradiction\tcontradiction"])
    _write(tmp_path / "MNLI" / "dev_mismatched.tsv", [
        mnli_header, "0\t1\t1n\tletters\tIt rains.\tIt is cold.\tneutral\tneutral"])
    _write(tmp_path / "QQP" / "dev.tsv", [
        "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate",
        "0\t1\t2\tHow do I cook \"rice?\tHow is rice cooked?\t1",
        "1\t3\t4\tWhat is AI?\tWho is Ada?\t0",
    ])

    cola = load_glue("CoLA", "train", tmp_path)
    assert cola.texts_a[1] == "They drank the pub \"dry."
    assert cola.texts_b is None and cola.labels == [1, 0]
    assert load_glue("cola", "validation", tmp_path).labels == [1]

    mnli = load_glue("mnli", "train", tmp_path)
    assert mnli.labels == [0, 1, 2]
    assert mnli.texts_b == ["Someone plays.", "He plays well.", "Nobody plays."]
    assert load_glue("mnli", "validation_matched", tmp_path).labels == [2]
    assert load_glue("mnli", "dev_mismatched", tmp_path).labels == [1]

    texts_a, _, labels = load_glue("qqp", "validation", tmp_path)
    assert texts_a == ["How do I cook \"rice?", "What is AI?"]
    assert labels == [1, 0]


def test_missing_file_is_clear_error(tmp_path):
    (tmp_path / "RTE").mkdir()
    expected = str(tmp_path / "RTE" / "dev.tsv")
    with pytest.raises(FileNotFoundError) as info:
        load_glue("rte", "validation", tmp_path)
    message = str(info.value)
    assert expected in message
    assert "official GLUE layout" in message and "sentence1" in message
    with pytest.raises(FileNotFoundError, match="not a folder"):
        load_glue("rte", "train", tmp_path / "absent")


def test_bad_label_and_missing_column(tmp_path):
    _write(tmp_path / "RTE" / "train.tsv", [
        "index\tsentence1\tsentence2\tlabel", "0\ta\tb\tmaybe"])
    with pytest.raises(ValueError, match=r"line 2.*'maybe'.*entailment"):
        load_glue("rte", "train", tmp_path)
    _write(tmp_path / "QNLI" / "train.tsv", ["index\tquestion\tlabel", "0\ta\tentailment"])
    with pytest.raises(ValueError, match=r"'sentence' not found.*Available columns"):
        load_glue("qnli", "train", tmp_path)
    _write(tmp_path / "SST-2" / "train.tsv", ["sentence\tlabel", "short row"])
    with pytest.raises(ValueError, match="line 2"):
        load_glue("sst2", "train", tmp_path)


def test_tfds_failure_suggests_glue_dir(monkeypatch):
    import tensorflow_datasets as tfds

    def offline(*args, **kwargs):
        raise ConnectionError("no network")

    monkeypatch.setattr(tfds, "load", offline)
    monkeypatch.setattr(glue, "_reachable", lambda host: True)  # Online, but the load fails.
    with pytest.raises(RuntimeError, match=r"glue/rte.*glue_dir") as info:
        load_glue("rte", "train")
    assert "RTE/train.tsv" in str(info.value)


def test_tfds_examples_become_lists(monkeypatch):
    import tensorflow as tf
    import tensorflow_datasets as tfds

    calls = []

    def fake_load(name, split):
        calls.append((name, split))
        return tf.data.Dataset.from_tensor_slices({
            "premise": [b"A man plays.", b"It rains."],
            "hypothesis": [b"Someone plays.", b"It is dry."],
            "label": tf.constant([0, 2], tf.int64),
            "idx": tf.constant([0, 1], tf.int32),
        })

    monkeypatch.setattr(tfds, "load", fake_load)
    monkeypatch.setattr(glue, "_reachable", lambda host: True)  # As if online.
    texts_a, texts_b, labels = load_glue("MNLI", "validation_mismatched")
    assert calls == [("glue/mnli", "validation_mismatched")]
    assert texts_a == ["A man plays.", "It rains."]
    assert texts_b == ["Someone plays.", "It is dry."]
    assert labels == [0, 2]


def test_offline_tfds_fails_at_once_and_leaves_no_dataset_folder(tmp_path):
    """No network (as here): the error names --glue-dir within seconds, nothing is written."""
    start = time.time()
    with pytest.raises(RuntimeError, match=r"cannot be reached.*--glue-dir DIR") as info:
        glue._load_tfds(glue.get_glue_task("sst2"), "train", data_dir=str(tmp_path / "tfds"))
    assert time.time() - start < 60
    assert "SST-2/train.tsv" in str(info.value)
    assert not (tmp_path / "tfds").exists()


def test_failed_tfds_download_removes_its_dataset_folder(tmp_path, monkeypatch):
    import tensorflow_datasets as tfds

    def partial_download(name, split, data_dir):
        os.makedirs(os.path.join(data_dir, "glue", "sst2", "2.0.0.incomplete"))
        raise ConnectionError("connection reset")

    monkeypatch.setattr(tfds, "load", partial_download)
    monkeypatch.setattr(glue, "_reachable", lambda host: True)
    with pytest.raises(RuntimeError, match="connection reset.*--glue-dir"):
        glue._load_tfds(glue.get_glue_task("sst2"), "train", data_dir=str(tmp_path))
    assert os.listdir(tmp_path / "glue") == []
