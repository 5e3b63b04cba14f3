import pytest

from augpro_keras.data import load_text_classification_file


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_tsv_pair_with_string_labels_sorted(tmp_path):
    path = _write(tmp_path / "pairs.tsv", "id\tq\tp\tlabel\n1\ta \"b\tc\tyes\n2\td\te\tno\n")
    texts_a, texts_b, labels = data = load_text_classification_file(
        path, text_columns=["q", "p"], label_column="label")
    assert texts_a == ["a \"b", "d"] and texts_b == ["c", "e"]
    assert labels == [1, 0]
    assert data.label_names == ("no", "yes")


def test_csv_with_given_label_names_and_quotes(tmp_path):
    path = _write(tmp_path / "reviews.csv",
                  "\ufefftext,stars\n\"good, really\",pos\nbad,neg\n")
    data = load_text_classification_file(
        path, "text", label_column="stars", label_names=["neg", "pos"])
    assert data.texts_a == ["good, really", "bad"]
    assert data.texts_b is None
    assert data.labels == [1, 0]
    assert data.label_names == ("neg", "pos")


def test_numeric_labels_and_unlabeled(tmp_path):
    path = _write(tmp_path / "scores.txt", "s|y|z\nx|1|0.5\nw|0|2\n")
    ints = load_text_classification_file(path, "s", "y", delimiter="|")
    assert ints.labels == [1, 0] and ints.label_names is None
    floats = load_text_classification_file(path, "s", "z", delimiter="|")
    assert floats.labels == [0.5, 2.0]
    unlabeled = load_text_classification_file(path, "s", delimiter="|")
    assert unlabeled.labels is None and unlabeled.texts_a == ["x", "w"]


def test_missing_column_lists_available(tmp_path):
    path = _write(tmp_path / "d.tsv", "sentence\tlabel\nhi\t1\n")
    with pytest.raises(ValueError, match=r"'text' not found.*\['sentence', 'label'\]"):
        load_text_classification_file(path, "text", "label")


def test_unseen_label_names_row_and_allowed(tmp_path):
    path = _write(tmp_path / "d.tsv", "sentence\tlabel\nhi\tpos\nho\tmaybe\n")
    with pytest.raises(ValueError, match=r"line 3.*'maybe'.*\['neg', 'pos'\]"):
        load_text_classification_file(path, "sentence", "label", label_names=["neg", "pos"])


def test_argument_errors(tmp_path):
    path = _write(tmp_path / "d.json", "a\n")
    with pytest.raises(ValueError, match="delimiter"):
        load_text_classification_file(path, "a")
    with pytest.raises(ValueError, match="one or two"):
        load_text_classification_file(path, ["a", "b", "c"], delimiter="\t")
    with pytest.raises(FileNotFoundError, match="nothing.tsv"):
        load_text_classification_file(tmp_path / "nothing.tsv", "a")
    short = _write(tmp_path / "short.tsv", "a\tb\nonly\n")
    with pytest.raises(ValueError, match=r"line 2.*'b'"):
        load_text_classification_file(short, ["a", "b"])
