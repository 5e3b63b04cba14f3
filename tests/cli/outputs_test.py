"""Results table, sample sentences and safe writing of outputs."""

import json
import os

import numpy as np
import pytest

from augpro_keras.cli import export
from augpro_keras.cli import samples
from augpro_keras.cli.results import ResultsTable
from augpro_keras.data import special_tokens
from augpro_keras.data import train_sentencepiece


def test_results_table_format_and_best_student():
    table = ResultsTable("demo", ("accuracy", "f1"), num_examples=240)
    table.add("Teacher", {"accuracy": 0.95, "f1": 0.951}, role="teacher")
    table.add("KD", {"accuracy": 0.90, "f1": 0.89})
    table.add("KD+AugPro-Mix", {"accuracy": 0.925, "f1": float("nan")})
    assert table.best_student().name == "KD+AugPro-Mix"
    text = table.format()
    assert text.splitlines()[0] == "demo, validation (240 examples)"
    assert "| Model           | accuracy | f1    |" in text
    assert "| Teacher         | 95.00    | 95.10 |" in text
    assert "| KD+AugPro-Mix * | 92.50    | nan   |" in text
    assert text.endswith("* best student by accuracy")
    assert table.to_dict()["best_student"] == "KD+AugPro-Mix"


@pytest.fixture(scope="module")
def tokenizer():
    texts = ["the kettle works well", "the lamp broke fast", "a fine lamp", "a bad kettle"] * 5
    return train_sentencepiece(texts, vocabulary_size=40, model_type="word")


def test_readable_drops_padding_and_shows_inner_separators(tokenizer):
    ids = np.asarray(tokenizer("the kettle works well")).tolist()
    specials = special_tokens(tokenizer)
    cls, sep, pad = specials.start, specials.end, specials.pad
    assert samples.readable(tokenizer, [cls, *ids, sep, pad, pad]) == "the kettle works well"
    pair = [cls, *ids, sep, *np.asarray(tokenizer("a bad kettle")).tolist(), sep, pad]
    assert samples.readable(tokenizer, np.asarray(pair)) == "the kettle works well [SEP] a bad kettle"


def test_label_text():
    assert samples.label_text([0.0, 2.0], ("negative", "positive")) == "positive (0.88)"
    assert samples.label_text([3.0, 0.0]) == "0 (0.95)"
    assert samples.label_text([3.14159], is_regression=True) == "3.14"


def test_samples_tsv_and_markdown():
    rows = [samples.SampleRow("augpro_mix", "a | b", "c", "positive (0.9)", "negative (0.6)", 0.5)]
    tsv = samples.samples_tsv(rows).splitlines()
    assert tsv[0].split("\t")[:3] == ["augmentation", "original", "augmented"]
    assert tsv[1].split("\t") == ["augpro_mix", "a | b", "c", "positive (0.9)", "negative (0.6)",
                                  "0.500"]
    table = samples.samples_markdown(rows)["augpro_mix"]
    assert "| a \\| b | positive (0.9) | c | negative (0.6) | 50% |" in table
    assert "original :" in samples.format_samples(rows)


def test_staged_outputs_commit_replaces_files_and_folders(tmp_path):
    (tmp_path / "results.json").write_text("old")
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "old.txt").write_text("old")
    with export.StagedOutputs(tmp_path) as out:
        export.write_json({"new": 1}, out.path("results.json"))
        os.makedirs(out.path("model"))
        with open(os.path.join(out.path("model"), "new.txt"), "w") as f:
            f.write("new")
        assert (tmp_path / "results.json").read_text() == "old"  # Not yet.
    assert json.loads((tmp_path / "results.json").read_text()) == {"new": 1}
    assert sorted(os.listdir(tmp_path / "model")) == ["new.txt"]
    assert sorted(os.listdir(tmp_path)) == ["model", "results.json"]


def test_staged_outputs_discard_on_error(tmp_path):
    (tmp_path / "results.json").write_text("old")
    with pytest.raises(RuntimeError):
        with export.StagedOutputs(tmp_path) as out:
            export.write_json({"partial": True}, out.path("results.json"))
            raise RuntimeError("crash")
    assert (tmp_path / "results.json").read_text() == "old"
    assert os.listdir(tmp_path) == ["results.json"]


def test_write_text_is_atomic_on_error(tmp_path, monkeypatch):
    target = tmp_path / "out.tsv"
    target.write_text("old")

    def failing_replace(source, destination):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError):
        export.write_text("new", str(target))
    monkeypatch.undo()
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["out.tsv"]
