"""Bad files and options: exit status 2, one readable paragraph, and nothing written.

Every case runs `augpro-keras` in this process (`main([...])`) or the
Python API on one bad input, next to the files of a finished run, and
checks the message (the file, line and column where they apply, and what is
allowed), the exit status (or the exception) and that every file is
byte-identical afterwards, with nothing added. All these checks come before
any training, so each case takes well under a second.

docs/reliability.md ("Bad inputs of the command line tool") lists the matrix.
"""

import json
import os
import zipfile

import pytest

from augpro_keras.cli import config as config_lib
from augpro_keras.cli.main import main
from augpro_keras.data import load_glue
from augpro_keras.data import load_text_classification_file
from tests.cli.conftest import TINY

TINY_ARGS = [arg for override in TINY for arg in ("--set", override)]
POSITIVE = ["a lovely lamp", "the kettle works well", "great sturdy chair", "nice quiet fan"]
NEGATIVE = ["the lamp broke", "a noisy kettle", "awful wobbly chair", "the fan rattles"]


def _rows(count, names=("negative", "positive")):
    texts = [(text, names[1]) for text in POSITIVE] + [(text, names[0]) for text in NEGATIVE]
    return [texts[i % len(texts)] for i in range(count)]


def _tsv(rows, header=("sentence", "label"), delimiter="\t"):
    lines = [delimiter.join(header)] + [delimiter.join(map(str, row)) for row in rows]
    return ("\n".join(lines) + "\n").encode("utf-8")


GOOD_TRAIN = _tsv(_rows(40))
GOOD_VALIDATION = _tsv(_rows(10))


@pytest.fixture
def guarded(tmp_path):
    """A finished run's files and good data files, which every case must leave as they are."""
    finished = tmp_path / "finished"
    finished.mkdir()
    (finished / "results.json").write_text(json.dumps({"rows": [
        {"name": name, "metrics": {"accuracy": 0.9}, "role": "student", "details": {}}
        for name in ("KD", "KD+AugPro-Mix", "KD+AugPro-FGSM")]}))
    with zipfile.ZipFile(finished / "student.keras", "w") as archive:  # Looks like a model.
        archive.writestr("config.json", "{}")
    (finished / "teacher.keras").write_bytes(b"PK-a finished teacher")
    (finished / "config.json").write_text("{}")
    (tmp_path / "train.tsv").write_bytes(GOOD_TRAIN)
    (tmp_path / "dev.tsv").write_bytes(GOOD_VALIDATION)
    before = _snapshot(tmp_path)
    yield tmp_path
    assert _snapshot(tmp_path) == before, "a file was written over, added or removed"


def _snapshot(root):
    found = {}
    for folder, names, files in os.walk(root):
        for name in names:
            found[os.path.relpath(os.path.join(folder, name), root) + "/"] = None
        for name in files:
            path = os.path.join(folder, name)
            with open(path, "rb") as f:
                found[os.path.relpath(path, root)] = f.read()
    return found


def _cli(capsys, *args):
    """Runs the tool; returns `(exit status, stderr)`."""
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    return exit_info.value.code, captured.err


def _files_args(root, train="train.tsv", validation="dev.tsv", *more):
    return ["run", "--output-dir", str(root / "finished"), "--overwrite", *TINY_ARGS,
            "--set", "data.source=files", "--set", f"data.train_file={root / train}",
            "--set", f"data.validation_file={root / validation}", *more]


def _write(root, name, content):
    """A data file for one case, written before the snapshot of `guarded` is compared."""
    path = root / name
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(content)
    return path


# --- data files: (file name, content, which split, extra --set, expected message) -----------
def _file_cases():
    bad_byte = GOOD_TRAIN.replace(b"a lovely lamp", b"a lov\xffly lamp", 1)
    return [
        ("non_utf8", "bad.tsv", bad_byte, "train", [],
         "bad.tsv, line 2, column 6: byte 0xff is not UTF-8 text"),
        ("missing_text_column", "bad.tsv", _tsv(_rows(40), header=("text", "label")), "train", [],
         "bad.tsv, line 1: column 'sentence' not found in the header. Available columns: "
         "['text', 'label']"),
        ("missing_label_column", "bad.tsv", _tsv(_rows(40), header=("sentence", "lable")),
         "train", [], "column 'label' not found in the header. Did you mean 'lable'?"),
        ("commas_in_tsv", "bad.tsv", _tsv(_rows(40), delimiter=","), "train", [],
         "bad.tsv, line 1: the header 'sentence,label' has no tab but commas"),
        ("tabs_in_csv", "bad.csv", _tsv(_rows(40)), "train", [],
         "bad.csv, line 1: the header 'sentence\\tlabel' has no comma but tabs"),
        ("empty_file", "bad.tsv", b"", "train", [],
         "bad.tsv is empty: expected a header row naming the columns ['sentence', 'label']"),
        ("header_only", "bad.tsv", b"sentence\tlabel\n", "train", [],
         "bad.tsv has a header row but no examples"),
        ("one_row", "bad.tsv", _tsv(_rows(1)), "train", [],
         "The training set ({path}) has 1 examples, fewer than one batch (data.batch_size=8)"),
        ("short_row", "bad.tsv", GOOD_TRAIN + b"no label here\n", "train", [],
         "bad.tsv, line 42: expected column 'label' at position 2 but the row has only 1 field"),
        ("unknown_label", "bad.tsv", GOOD_TRAIN + b"so so\tmeh\n", "train",
         ["data.label_names=[negative, positive]"],
         "bad.tsv, line 42: label 'meh' is not one of the allowed labels ['negative', 'positive']"),
        ("mixed_labels", "bad.tsv", _tsv(_rows(40, names=("0", "1"))) + b"so so\tpositive\n",
         "train", [], "the labels mix numbers and names: line 2 has '1', line 42 has 'positive'"),
        ("negative_label", "bad.tsv", _tsv(_rows(40, names=("0", "1"))) + b"so so\t-1\n",
         "train", [], "bad.tsv, line 42: label '-1' is negative"),
        ("empty_label", "bad.tsv", GOOD_TRAIN + b"so so\t \n", "train", [],
         "bad.tsv, line 42: the label is empty"),
        ("unknown_extension", "bad.txt", GOOD_TRAIN, "train", [],
         "Cannot infer the delimiter of"),
        ("one_class", "bad.tsv", _tsv(_rows(40, names=("positive", "positive"))), "both", [],
         "a classifier needs at least two classes"),
        ("unseen_validation_name", "bad.tsv", GOOD_VALIDATION + b"so so\tneutral\n",
         "validation", [],
         "validation labels ['neutral'] (first: {path}, line 12) never occur in the training data"),
        ("unseen_validation_id", "bad.tsv", _tsv(_rows(10, names=("0", "2"))), "validation_ids",
         [], "validation labels [2] (first: {path}, line 2) never occur in the training data"),
        ("ids_against_names", "bad.tsv", _tsv(_rows(10, names=("0", "1"))), "validation", [],
         "data.validation_file: the labels of {path} are class ids but those of data.train_file"),
        ("validation_non_utf8", "bad.tsv", GOOD_VALIDATION.replace(b"lamp", b"l\xe4mp", 1),
         "validation", [], "bad.tsv, line 2, column 11: byte 0xe4 is not UTF-8 text"),
    ]


FILE_CASES = _file_cases()


@pytest.mark.parametrize("case", FILE_CASES, ids=[c[0] for c in FILE_CASES])
def test_bad_data_file_on_the_command_line(guarded, capsys, case):
    _, name, content, split, sets, message = case
    path = _write(guarded, name, content)
    try:
        train, validation = {
            "train": (name, "dev.tsv"), "validation": ("train.tsv", name), "both": (name, name),
            "validation_ids": ("ids.tsv", name),
        }[split]
        if split == "validation_ids":
            _write(guarded, "ids.tsv", _tsv(_rows(40, names=("0", "1"))))
        more = [arg for item in sets for arg in ("--set", item)]
        code, err = _cli(capsys, *_files_args(guarded, train, validation, *more))
    finally:
        os.remove(path)
        if split == "validation_ids":
            os.remove(guarded / "ids.tsv")
    assert code == 2
    assert err.startswith("augpro-keras run: error: ")
    assert message.format(path=path) in err
    assert str(path) in err  # the file is named


API_FILE_CASES = [c for c in FILE_CASES if c[3] == "train" and c[0] != "one_row"]


@pytest.mark.parametrize("case", API_FILE_CASES, ids=[c[0] for c in API_FILE_CASES])
def test_bad_data_file_in_python(guarded, case):
    _, name, content, _, sets, message = case
    path = _write(guarded, name, content)
    label_names = ["negative", "positive"] if sets else None
    try:
        with pytest.raises(ValueError) as info:
            load_text_classification_file(path, "sentence", "label", label_names=label_names)
    finally:
        os.remove(path)
    assert message in str(info.value)


# --- output folder, models, tokenizers -------------------------------------------------------
def test_output_dir_is_a_file(guarded, capsys):
    code, err = _cli(capsys, "run", "--output-dir", str(guarded / "train.tsv"), *TINY_ARGS)
    assert code == 2
    assert f"output_dir: {guarded / 'train.tsv'} cannot be a folder: " in err
    assert "is a file. Choose another --output-dir." in err


def test_output_dir_below_a_file(guarded, capsys):
    code, err = _cli(capsys, "run", "--output-dir", str(guarded / "train.tsv" / "run"), *TINY_ARGS)
    assert code == 2
    assert f"{guarded / 'train.tsv'} is a file" in err


@pytest.mark.parametrize("command, found", [
    ("run", "teacher.keras, student.keras, results.json"),
    ("distill", "student.keras, results.json"),
    ("finetune", "teacher.keras"),
])
def test_finished_run_is_refused_without_overwrite(guarded, capsys, command, found):
    code, err = _cli(capsys, command, "--output-dir", str(guarded / "finished"), *TINY_ARGS)
    assert code == 2
    assert (f"output_dir: {guarded / 'finished'} holds a finished run ({found}), which "
            f"`augpro-keras {command}` would replace. Pass --overwrite") in err


def test_evaluate_a_file_that_is_not_a_model(guarded, capsys):
    code, err = _cli(capsys, "evaluate", "--model", str(guarded / "train.tsv"),
                     "--tokenizer", str(guarded / "dev.tsv"), *TINY_ARGS)
    assert code == 2
    assert f"{guarded / 'train.tsv'} is not a Keras model file: a .keras file is a zip" in err


def test_evaluate_a_fake_keras_file(guarded, capsys):
    code, err = _cli(capsys, "evaluate", "--model", str(guarded / "finished" / "student.keras"),
                     *TINY_ARGS)
    assert code == 2
    # The tokenizer beside the model is checked first: it is missing.
    assert f"Tokenizer file not found: {guarded / 'finished' / 'tokenizer.json'}" in err


def test_evaluate_a_missing_model(guarded, capsys):
    code, err = _cli(capsys, "evaluate", "--model", str(guarded / "nothing.keras"), *TINY_ARGS)
    assert code == 2
    assert f"Model file not found: {guarded / 'nothing.keras'}" in err


def test_evaluate_a_folder_as_model(guarded, capsys):
    code, err = _cli(capsys, "evaluate", "--model", str(guarded / "finished"), *TINY_ARGS)
    assert code == 2
    assert (f"{guarded / 'finished'} is a folder but no keras-hub preset of a task (it has no "
            "task.json); the model must be a keras-hub preset folder") in err


def test_evaluate_with_a_tokenizer_that_is_not_json(guarded, capsys):
    code, err = _cli(capsys, "evaluate", "--model", str(guarded / "finished" / "student.keras"),
                     "--tokenizer", str(guarded / "train.tsv"), *TINY_ARGS)
    assert code == 2
    assert f"{guarded / 'train.tsv'} is not a tokenizer file written by augpro-keras" in err


def test_evaluate_with_a_tokenizer_of_an_unknown_class(guarded, capsys):
    tokenizer = _write(guarded, "tokenizer.json", b'{"class": "Bpe", "config": {}}')
    try:
        code, err = _cli(capsys, "evaluate", "--model", str(guarded / "finished" / "student.keras"),
                         "--tokenizer", str(tokenizer), *TINY_ARGS)
    finally:
        os.remove(tokenizer)
    assert code == 2
    assert "unknown tokenizer class 'Bpe'; expected one of" in err


def test_distill_from_a_folder_without_a_teacher(guarded, capsys):
    code, err = _cli(capsys, "distill", "--teacher", str(guarded), "--output-dir",
                     str(guarded / "finished"), "--overwrite", *TINY_ARGS)
    assert code == 2
    assert f"Tokenizer file not found: {guarded / 'tokenizer.json'}" in err


def test_augment_with_a_broken_tokenizer_beside_the_teacher(guarded, capsys):
    tokenizer = _write(guarded / "finished", "tokenizer.json",
                       b'{"class": "SentencePieceTextTokenizer", "config": {}}')
    try:
        code, err = _cli(capsys, "augment", "--teacher", str(guarded / "finished"), *TINY_ARGS)
    finally:
        os.remove(tokenizer)
    assert code == 2
    # The tokenizer beside the teacher is read first.
    assert (f"{tokenizer}: the SentencePieceTextTokenizer config cannot be read (TypeError: "
            in err)


def test_teacher_checkpoint_that_is_not_a_model(guarded, capsys):
    tokenizer = _write(guarded / "finished", "tokenizer.json", b"{}")
    try:
        code, err = _cli(capsys, "run", "--output-dir", str(guarded / "finished"), "--overwrite",
                         "--set", f"teacher.checkpoint={guarded / 'finished' / 'teacher.keras'}",
                         *TINY_ARGS)
    finally:
        os.remove(tokenizer)
    assert code == 2
    assert f"{guarded / 'finished' / 'teacher.keras'} is not a Keras model file" in err


# --- config files and options ---------------------------------------------------------------
CONFIG_FILE_CASES = [
    ("invalid_yaml", b"distill: [unclosed\n", "not valid YAML"),
    ("not_a_mapping", b"- a\n- b\n", "the file must hold a mapping of keys, got list"),
    ("non_utf8", b"name: caf\xe9\n", "not a UTF-8 text file: byte 9 is b'\\xe9'"),
    ("unknown_key", b"distill:\n  epoch: 3\n", "distill.epoch: unknown key; did you mean 'distill.epochs'?"),
    ("string_for_a_number", b"distill:\n  learning_rate: fast\n",
     "distill.learning_rate: expected a number, got str 'fast'"),
]


@pytest.mark.parametrize("case", CONFIG_FILE_CASES, ids=[c[0] for c in CONFIG_FILE_CASES])
def test_bad_config_file(guarded, capsys, case):
    _, content, message = case
    path = _write(guarded, "config.yaml", content)
    try:
        code, err = _cli(capsys, "run", "--config", str(path), "--output-dir",
                         str(guarded / "finished"), "--overwrite", *TINY_ARGS)
    finally:
        os.remove(path)
    assert code == 2
    assert message in err


def test_missing_config_file(guarded, capsys):
    code, err = _cli(capsys, "run", "--config", str(guarded / "missing.yaml"))
    assert code == 2
    assert f"config file not found: {guarded / 'missing.yaml'}" in err


OPTION_CASES = [
    ("typo_in_key", ["--set", "distill.epoch=3"], "distill.epoch: unknown key; did you mean 'distill.epochs'?"),
    ("word_for_an_integer", ["--set", "finetune.epochs=three"], "finetune.epochs: expected an integer, got str 'three'"),
    ("unknown_choice", ["--set", "data.source=glu"], "data.source: expected one of demo, glue, files, got str 'glu'; did you mean 'glue'?"),
    ("infinite_learning_rate", ["--set", "distill.learning_rate=.inf"], "distill.learning_rate: expected a finite number, got inf"),
    ("negative_learning_rate", ["--set", "distill.learning_rate=-1e-3"], "distill.learning_rate: expected a number > 0, got -0.001"),
    ("no_equals_sign", ["--set", "distill.epochs"], "override 'distill.epochs' must look like KEY=VALUE"),
    ("backup_every_zero", ["--set", "runtime.backup_every_steps=0"], "runtime.backup_every_steps: expected an integer >= 1, got 0"),
    ("batch_larger_than_data", ["--set", "data.batch_size=5000"], "fewer than one batch (data.batch_size=5000)"),
    ("missing_glue_dir", ["--task", "rte", "--glue-dir", "{root}/no_glue"], "data.glue_dir: folder not found: {root}/no_glue"),
    ("glue_dir_without_files", ["--task", "rte", "--glue-dir", "{root}"], "data.glue_dir: missing GLUE files: {root}/RTE/train.tsv"),
    ("unknown_task", ["--task", "sst3"], "data.task: Unknown GLUE task 'sst3'"),
    ("missing_train_file", ["--set", "data.source=files", "--set", "data.train_file={root}/no.tsv",
                            "--set", "data.validation_file={root}/dev.tsv"], "data.train_file: file not found: {root}/no.tsv"),
    ("missing_vocabulary_file", ["--set", "tokenizer.vocabulary_file={root}/no.txt"], "tokenizer.vocabulary_file: file not found: {root}/no.txt"),
    ("three_text_columns", ["--set", "data.source=files", "--set", "data.train_file={root}/train.tsv",
                            "--set", "data.validation_file={root}/dev.tsv", "--set", "data.text_columns=[a, b, c]"],
     "data.text_columns: expected one or two columns"),
    ("duplicate_label_names", ["--set", "data.source=files", "--set", "data.train_file={root}/train.tsv",
                               "--set", "data.validation_file={root}/dev.tsv", "--set", "data.label_names=[negative, negative]"],
     "`label_names` has duplicates"),
    ("unknown_augmentation", ["--set", "distill.runs=[[augpro_mixx]]"], "unknown augmentation 'augpro_mixx'; did you mean 'augpro_mix'?"),
]


@pytest.mark.parametrize("case", OPTION_CASES, ids=[c[0] for c in OPTION_CASES])
def test_bad_option(guarded, capsys, case):
    _, options, message = case
    options = [o.format(root=guarded) for o in options]
    code, err = _cli(capsys, "run", "--output-dir", str(guarded / "finished"), "--overwrite",
                     *TINY_ARGS, *options)
    assert code == 2
    assert message.format(root=guarded) in err


def test_bad_glue_tsv(guarded, capsys):
    _write(guarded, "SST-2/train.tsv", b"sentence\tlabel\na fine lamp\tmaybe\n")
    _write(guarded, "SST-2/dev.tsv", b"sentence\tlabel\na fine lamp\t1\n")
    try:
        code, err = _cli(capsys, "run", "--output-dir", str(guarded / "finished"), "--overwrite",
                         "--task", "sst2", "--glue-dir", str(guarded), *TINY_ARGS)
    finally:
        for name in ("train.tsv", "dev.tsv"):
            os.remove(guarded / "SST-2" / name)
        os.rmdir(guarded / "SST-2")
    assert code == 2
    assert f"{guarded / 'SST-2' / 'train.tsv'}, line 2: label 'maybe' is not valid for SST-2" in err


def test_unseen_validation_labels_allowed_with_a_warning(guarded):
    from augpro_keras.cli import inputs

    path = _write(guarded, "bad.tsv", GOOD_VALIDATION + b"so so\tneutral\n")
    try:
        config = config_lib.load_config(None, overrides=TINY + [
            "data.source=files", f"data.train_file={guarded / 'train.tsv'}",
            f"data.validation_file={path}", "data.allow_unseen_validation_labels=true"])
        data = inputs.load_task_data(config)
    finally:
        os.remove(path)
    assert data.label_names == ("negative", "positive", "neutral") and data.num_classes == 3
    assert data.warnings == (
        f"validation labels ['neutral'] (first: {path}, line 12) never occur in the training "
        "data, so no model can learn them; they count as errors "
        "(data.allow_unseen_validation_labels: true).",)


# --- the same checks in Python ----------------------------------------------------------------
@pytest.mark.parametrize("case", OPTION_CASES[:7], ids=[c[0] for c in OPTION_CASES[:7]])
def test_bad_option_in_python(guarded, case):
    _, options, message = case
    overrides = [value for flag, value in zip(options[::2], options[1::2]) if flag == "--set"]
    with pytest.raises(config_lib.ConfigError) as info:
        config_lib.load_config(None, overrides=overrides)
    assert message in str(info.value)


def test_missing_glue_dir_in_python(guarded):
    with pytest.raises(FileNotFoundError, match="`glue_dir` is not a folder"):
        load_glue("rte", "train", guarded / "no_glue")
