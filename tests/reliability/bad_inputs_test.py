"""Bad inputs give an error that names the problem and what is allowed, and write nothing.

Every row of the matrix first writes a checkpoint, a result file and a
backup, then runs what a training script would run (build, fit with
callbacks that save checkpoints, backups and results, save the student) on
one bad input, and checks the error and that every file is byte-identical.
"""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from augpro_keras import Distiller
from augpro_keras import augmentations as aug
from augpro_keras import checkpointing
from augpro_keras.callbacks import DistillationBackup
from augpro_keras.callbacks import NonFiniteLossGuard
from augpro_keras.data import load_glue
from augpro_keras.data import load_text_classification_file
from augpro_keras.layers import EmbeddingProjection
from augpro_keras.layers import FGSMPerturb
from augpro_keras.layers import MixUpEmbedding
from tests import tiny
from tests.reliability import common


class WriteResults(keras.callbacks.Callback):
    """Writes the epoch's logs to a JSON result file (as a training script would)."""

    def __init__(self, path):
        super().__init__()
        self.path = path

    def on_epoch_end(self, epoch, logs=None):
        with open(self.path, "w") as f:
            json.dump({k: float(v) for k, v in (logs or {}).items()}, f)


@pytest.fixture(scope="module")
def trained_before():
    return common.distiller()


@pytest.fixture
def files(tmp_path, trained_before):
    """A checkpoint, a result file and a backup that must survive every bad input."""
    model = trained_before
    paths = {
        "checkpoint": str(tmp_path / "student.weights.h5"),
        "results": str(tmp_path / "results.json"),
        "backup": str(tmp_path / "backup"),
    }
    model.student.save_weights(paths["checkpoint"])
    with open(paths["results"], "w") as f:
        json.dump({"accuracy": 0.5}, f)
    checkpointing.write_backup(paths["backup"], model, {
        "epoch": 0, "batch": 0, "iterations": 0, "run_batches": 0, "first_epoch": 0,
        "steps_per_epoch": None, "steps_per_execution": 1,
    })
    before = _snapshot(tmp_path)
    yield paths
    assert _snapshot(tmp_path) == before, "a file was written over or added"


def _snapshot(root):
    found = {}
    for folder, _, names in os.walk(root):
        for name in names:
            path = os.path.join(folder, name)
            with open(path, "rb") as f:
                found[os.path.relpath(path, root)] = f.read()
    return found


def train(files, data, teacher=None, student=None, augmentations=("augpro_mix",)):
    """Build, fit with saving callbacks, then save the student and results."""
    model = common.distiller(augmentations=augmentations) if teacher is None else Distiller(
        teacher, student, augmentations=list(augmentations), seed=5)
    if teacher is not None:
        model.compile(optimizer="adam", run_eagerly=True)
    callbacks = [
        NonFiniteLossGuard(),
        DistillationBackup(files["backup"], save_every_steps=1),
        keras.callbacks.ModelCheckpoint(files["checkpoint"], save_weights_only=True, save_freq=1),
        WriteResults(files["results"]),
    ]
    model.fit(data, epochs=1, verbose=0, callbacks=callbacks)
    model.student.save_weights(files["checkpoint"])
    WriteResults(files["results"]).on_epoch_end(0, {"done": 1.0})


def batches(x, y=None, batch_size=4):
    data = (x, y) if y is not None else x
    return tf.data.Dataset.from_tensor_slices(data).batch(batch_size, drop_remainder=True)


# --- the matrix --------------------------------------------------------------------
def test_token_ids_outside_the_vocabulary(files):
    x, y = tiny.batch(8, length=8)
    x["token_ids"][1, 2] = 60  # in the first batch: nothing has trained yet
    with pytest.raises(ValueError, match=r"Token ids must be in \[0, 47\].*48 tokens.*largest id 60"):
        train(files, batches(x, y))


def test_negative_token_ids(files):
    x, y = tiny.batch(8, length=8)
    x["token_ids"][0, 1] = -3
    with pytest.raises(ValueError, match=r"Token ids must be in \[0, 47\].*from -3"):
        train(files, batches(x, y))


def test_labels_outside_the_classes(files):
    x, y = tiny.batch(8, length=8)
    y[3] = 3
    with pytest.raises(ValueError, match=r"Labels must be class ids in \[0, 2\] \(the models have 3 classes\).*to 3"):
        train(files, batches(x, y))


def test_teacher_and_student_vocabularies_differ(files):
    teacher = tiny.model(vocabulary_size=48)
    student = tiny.model(vocabulary_size=40, num_layers=1)
    with pytest.raises(ValueError, match="teacher's has 48 tokens, the student's has 40"):
        train(files, batches(*tiny.batch(8)), teacher, student)


def test_teacher_and_student_classes_differ(files):
    with pytest.raises(ValueError, match="the teacher has 3, the student has 2"):
        train(files, batches(*tiny.batch(8)), tiny.model(num_classes=3), tiny.model(num_classes=2))


def test_embedding_width_does_not_match_the_table(files):
    projection = EmbeddingProjection()
    with pytest.raises(ValueError, match="width 8 but the embedding matrix has rows of width 16"):
        projection(np.zeros((2, 3, 8), "float32"), np.ones((10, 16), "float32"))


@pytest.mark.parametrize("factory", [
    lambda: MixUpEmbedding(lam=1.5),
    lambda: aug.MixUp(lam=-0.1),
    lambda: aug.AugProMix(lam=2.0),
    lambda: aug.TMix(lam=1.01),
])
def test_lam_outside_the_unit_interval(files, factory):
    with pytest.raises(ValueError, match=r"`lam` must be a number in \[0, 1\]"):
        factory()


@pytest.mark.parametrize("factory", [
    lambda: MixUpEmbedding(alpha=0.0),
    lambda: aug.MixUp(alpha=-1.0),
    lambda: aug.AugProMix(alpha=0),
])
def test_alpha_not_positive(files, factory):
    with pytest.raises(ValueError, match="`alpha` must be None .* or a number > 0"):
        factory()


@pytest.mark.parametrize("factory, name", [
    (lambda: FGSMPerturb(epsilon=-0.1), "epsilon"),
    (lambda: aug.FGSM(epsilon=-1.0), "epsilon"),
    (lambda: aug.AugProFGSM(epsilon=-35.0), "epsilon"),
    (lambda: aug.AugProFGSM(relative_epsilon=-1.0), "relative_epsilon"),
])
def test_negative_epsilon(files, factory, name):
    with pytest.raises(ValueError, match=f"`{name}` must be a number >= 0"):
        factory()


def test_unknown_augmentation_name(files):
    with pytest.raises(ValueError, match="Unknown augmentation 'augpro_mixx'. Did you mean 'augpro_mix'.*Allowed names: augpro_fgsm, augpro_mix, fgsm, knn, mixup, random_tokens, tmix"):
        train(files, batches(*tiny.batch(8)), augmentations=("augpro_mixx",))


@pytest.mark.parametrize("make", [
    lambda: EmbeddingProjection(similarity="euclidean"),
    lambda: Distiller(*tiny.smallest_pair(), similarity="cos"),
])
def test_unknown_similarity(files, make):
    with pytest.raises(ValueError, match="Unknown similarity .* Allowed values: cosine, dot, l2"):
        make()


@pytest.mark.parametrize("chunk_size", [0, -4])
def test_chunk_size_not_positive(files, chunk_size):
    with pytest.raises(ValueError, match="`chunk_size` must be None or a positive integer"):
        EmbeddingProjection(chunk_size=chunk_size)
    with pytest.raises(ValueError, match="`chunk_size` must be None or a positive integer"):
        Distiller(*tiny.smallest_pair(), projection_chunk_size=chunk_size)


@pytest.mark.parametrize("make_data", [
    lambda: batches(*tiny.batch(8)).take(0),  # known to be empty
    lambda: batches(*tiny.batch(3)),  # fewer examples than the batch size
    lambda: batches(*tiny.batch(8)).filter(lambda x, y: False),  # empty, cardinality unknown
])
def test_empty_dataset(files, make_data):
    with pytest.raises(ValueError, match="The training data is empty: it gave no batch.*batch size"):
        train(files, make_data())


def test_config_with_a_typo(files):
    config = pytest.importorskip("augpro_keras.cli.config")
    with pytest.raises(config.ConfigError, match="distill.epoch: unknown key; did you mean 'distill.epochs'"):
        config.validate({"distill": {"epoch": 2}}, check_files=False)


def test_missing_glue_file(files, tmp_path):
    (tmp_path / "glue" / "SST-2").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match=r"GLUE file not found: .*SST-2.train\.tsv\. Expected the official GLUE layout"):
        load_glue("sst2", "train", glue_dir=tmp_path / "glue")


def test_missing_tsv_file(files, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"File not found: .*reviews\.tsv\. Expected a .tsv or .csv file with a header row naming the columns \[.text., .label.\]"):
        load_text_classification_file(tmp_path / "reviews.tsv", text_columns="text", label_column="label")


# --- awkward but valid batches -------------------------------------------------------
ALL_AUGMENTATIONS = ("mixup", "augpro_mix", "fgsm", "augpro_fgsm", "knn", "tmix", "random_tokens")


def _awkward_batches():
    """A batch of 4 with two all-padding rows, and a batch of one row."""
    x, y = tiny.batch(5, length=8, seed=4)
    for row in (1, 3):
        x["token_ids"][row] = tiny.PAD
        x["padding_mask"][row] = False
        x["segment_ids"][row] = 0
    first = tf.data.Dataset.from_tensors(({k: v[:4] for k, v in x.items()}, y[:4]))
    second = tf.data.Dataset.from_tensors(({k: v[4:] for k, v in x.items()}, y[4:]))
    return first, second


@pytest.mark.parametrize("run_eagerly", [True, pytest.param(False, marks=pytest.mark.slow)])
def test_all_padding_rows_and_a_batch_of_one_train_without_nan(run_eagerly):
    for data in _awkward_batches():
        model = common.distiller(augmentations=ALL_AUGMENTATIONS, run_eagerly=run_eagerly)
        seen = []
        logger = keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: seen.append(dict(logs)))
        model.fit(data, epochs=1, verbose=0, callbacks=[NonFiniteLossGuard(), logger])
        assert len(seen) == 1
        for name in ALL_AUGMENTATIONS:
            assert np.isfinite(seen[0][f"{name}_loss"]), (name, seen[0])
        assert all(np.all(np.isfinite(w)) for w in model.student.get_weights())
