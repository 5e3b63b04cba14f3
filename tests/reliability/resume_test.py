"""A killed distillation resumes from its backup and ends as an uninterrupted run."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from augpro_keras import checkpointing
from augpro_keras.callbacks import DistillationBackup
from tests.reliability import common
from tests.reliability import resume_worker

TOLERANCE = 1e-5


def test_sigkilled_run_resumes_to_the_same_student(tmp_path):
    """SIGKILL mid-epoch after a backup; a new process resumes and matches an uninterrupted run."""
    backup, marker = tmp_path / "backup", tmp_path / "marker"
    # 4 batches per epoch, a backup every 2 steps: killed after step 7 (epoch
    # 2, batch 3); the newest backup is from step 6, so step 7 is trained again.
    common.start_and_kill("tests.reliability.resume_worker", backup, tmp_path / "unused.npz", marker,
                          7, marker=marker, timeout=240)
    latest = checkpointing.latest_backup(backup)
    assert (latest["epoch"], latest["batch"], latest["iterations"]) == (1, 2, 6)
    assert len(checkpointing.list_backups(backup)) == 1

    resumed = common.start("tests.reliability.resume_worker", backup, tmp_path / "resumed.npz")
    # The uninterrupted reference, while the resumed run trains.
    reference = common.distiller(augmentations=("augpro_mix",))
    history = reference.fit(resume_worker.dataset(), epochs=resume_worker.EPOCHS, verbose=0)
    output, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, output
    assert "done 8" in output
    with np.load(tmp_path / "resumed.npz") as result:
        weights = [result[f"arr_{i}"] for i in range(len(reference.student.get_weights()))]
        resumed_losses = result["loss"]
    assert common.max_difference(weights, reference.student.get_weights()) <= TOLERANCE
    # The resumed run logged epoch 2 only, with the metrics of the batches
    # trained before the kill restored.
    np.testing.assert_allclose(resumed_losses, history.history["loss"][1:], rtol=1e-5)


def _interrupted_then_resumed(tmp_path, interrupt_after, fit_kwargs, make=common.distiller,
                              data=common.dataset, save_every_steps=2):
    backup = DistillationBackup(tmp_path / "backup", save_every_steps=save_every_steps)
    with pytest.raises(common.Interrupt):
        make().fit(data(), verbose=0, callbacks=[backup, common.InterruptAfter(interrupt_after)], **fit_kwargs)
    resumed = make()
    history = resumed.fit(data(), verbose=0, callbacks=[backup], **fit_kwargs)
    return resumed, history


def test_resume_with_steps_per_epoch_and_a_repeated_dataset(tmp_path):
    """Batches flow on across epochs (the CLI's setting); a resume skips all that were used."""
    data = lambda: common.dataset(num_examples=12).repeat()  # noqa: E731
    make = lambda: common.distiller(augmentations=("augpro_fgsm",))  # noqa: E731
    fit_kwargs = {"epochs": 2, "steps_per_epoch": 4}
    resumed, _ = _interrupted_then_resumed(tmp_path, 6, fit_kwargs, make, data, save_every_steps=3)
    reference = make()
    reference.fit(data(), verbose=0, **fit_kwargs)
    assert common.max_difference(resumed.student.get_weights(), reference.student.get_weights()) <= TOLERANCE
    assert int(resumed.optimizer.iterations.numpy()) == 8


@pytest.mark.slow
@pytest.mark.parametrize(
    "case",
    ["graph", "epoch_boundary", "unknown_cardinality", "steps_per_execution", "xla", "mirrored"],
)
def test_resume_variants(tmp_path, case):
    """The training graph as users run it, in every setting that changes how batches are read."""
    data, fit_kwargs, interrupt_after, save_every = common.dataset, {"epochs": 3}, 9, 2
    make = lambda: common.distiller(run_eagerly=False)  # noqa: E731
    if case == "epoch_boundary":
        interrupt_after, save_every = 8, None  # backups at epoch ends only
    elif case == "unknown_cardinality":
        data = lambda: common.dataset().filter(lambda x, y: True)  # noqa: E731
    elif case == "steps_per_execution":
        make = lambda: common.distiller(steps_per_execution=2, run_eagerly=False)  # noqa: E731
        interrupt_after = 5  # execution blocks of two batches
    elif case == "xla":
        make = lambda: common.distiller(jit_compile=True)  # noqa: E731
    elif case == "mirrored":
        strategy = tf.distribute.MirroredStrategy([d.name for d in tf.config.list_logical_devices("CPU")][:2])

        def make():
            with strategy.scope():
                return common.distiller(mix_group_size=2, run_eagerly=False)

    resumed, _ = _interrupted_then_resumed(tmp_path, interrupt_after, fit_kwargs, make, data, save_every)
    reference = make()
    reference.fit(data(), verbose=0, **fit_kwargs)
    assert common.max_difference(resumed.student.get_weights(), reference.student.get_weights()) <= TOLERANCE


def test_same_seed_same_result_and_another_seed_differs():
    """Dropout in both models, teacher dropout, reshuffled data and every random draw."""
    runs = []
    for seed in (5, 5, 6):
        model = common.distiller(augmentations=("augpro_mix", "augpro_fgsm", "random_tokens"), seed=seed)
        model.fit(common.dataset(num_examples=4), epochs=2, verbose=0)
        runs.append(model.student.get_weights())
    assert common.max_difference(runs[0], runs[1]) == 0.0
    assert common.max_difference(runs[0], runs[2]) > 0.0


# --- the backup files -------------------------------------------------------------
def test_backups_are_renamed_into_place_and_pruned(tmp_path):
    model = common.distiller()
    directory = tmp_path / "backup"
    os.makedirs(directory / ".tmp-leftover")  # a writer killed while writing
    assert checkpointing.latest_backup(directory) is None
    first = checkpointing.write_backup(directory, model, {"epoch": 0, "batch": 1})
    second = checkpointing.write_backup(directory, model, {"epoch": 0, "batch": 2}, keep=1)
    assert sorted(os.listdir(directory)) == [os.path.basename(second)]
    assert not os.path.exists(first)
    assert checkpointing.latest_backup(directory)["batch"] == 2
    assert sorted(os.listdir(second)) == ["metadata.json", "state.npz"]


def test_backup_saves_the_student_not_the_frozen_teacher(tmp_path):
    model = common.distiller()
    model.optimizer.build(model.trainable_variables)
    variables, optimizer_variables = checkpointing.state_variables(model)
    saved = {id(v) for v in variables}
    assert all(id(v) in saved for v in model.student.variables)
    teacher_weights = [v for v in model.teacher.variables if "seed_generator" not in v.path]
    assert not any(id(v) in saved for v in teacher_weights)
    assert any("seed_generator" in v.path for v in model.teacher.variables if id(v) in saved)
    assert optimizer_variables[0].path.endswith("iteration")


def test_restore_refuses_another_model_or_teacher(tmp_path):
    model = common.distiller()
    path = checkpointing.write_backup(tmp_path / "b", model, {"epoch": 0, "batch": 1})
    checkpointing.restore_backup(common.distiller(augmentations=()), path)  # same shapes
    wider = common.distiller()
    wider_student = common.tiny.model(num_layers=1, hidden_dim=16, seed=1)
    different = common.Distiller(wider.teacher, wider_student, seed=5)
    different.compile(optimizer=keras.optimizers.Adam(1e-2))
    with pytest.raises(ValueError, match="different model"):
        checkpointing.restore_backup(different, path)
    changed = common.distiller()
    changed.teacher.head.kernel.assign(changed.teacher.head.kernel + 1.0)
    with pytest.raises(ValueError, match="same teacher"):
        checkpointing.restore_backup(changed, path)


def test_backup_refuses_a_non_finite_state(tmp_path):
    model = common.distiller()
    backup = DistillationBackup(tmp_path / "backup", save_every_steps=1)
    backup.set_model(model)
    backup._prepare(model, common.dataset(), 0, None)
    with pytest.warns(UserWarning, match="not finite"):
        backup._save(0, 1, {"loss": float("nan")})
    assert backup.latest() is None
    model.student.head.bias.assign([np.inf, 0.0, 0.0])
    with pytest.warns(UserWarning, match="not finite"):
        backup._save(0, 1, {"loss": 1.0})
    assert backup.latest() is None


def test_backup_outside_distiller_fit_and_bad_arguments(tmp_path):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    with pytest.raises(ValueError, match="Distiller.fit"):
        model.fit(np.ones((4, 2)), np.ones((4, 1)), verbose=0, callbacks=[DistillationBackup(tmp_path)])
    with pytest.raises(ValueError, match="save_every_steps"):
        DistillationBackup(tmp_path, save_every_steps=0)
    with pytest.raises(ValueError, match="keep"):
        DistillationBackup(tmp_path, keep=0)


def test_resume_needs_the_same_steps_per_epoch(tmp_path):
    data = lambda: common.dataset().repeat()  # noqa: E731
    backup = DistillationBackup(tmp_path / "backup", save_every_steps=2)
    make = lambda: common.distiller(augmentations=())  # noqa: E731
    with pytest.raises(common.Interrupt):
        make().fit(data(), epochs=2, steps_per_epoch=4, verbose=0, callbacks=[backup, common.InterruptAfter(3)])
    with pytest.raises(ValueError, match="steps_per_epoch=4; this fit\\(\\) uses steps_per_epoch=5"):
        make().fit(data(), epochs=2, steps_per_epoch=5, verbose=0, callbacks=[backup])


def _classifier():
    """A classifier fine-tuned on labels alone (no Distiller), with dropout on."""
    from tests import tiny

    model = tiny.model(num_layers=1, hidden_dim=8, seed=1, dropout=0.1)
    model.compile(optimizer=keras.optimizers.Adam(1e-2),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"], run_eagerly=True)
    return model


@pytest.mark.parametrize("fit_kwargs, data, interrupt_after", [
    # 6 batches per epoch, reshuffled every epoch; interrupted in epoch 2 after step 9.
    ({"epochs": 2}, common.dataset, 9),
    # 4 steps per epoch from a repeated dataset (the CLI's setting); after step 7.
    ({"epochs": 2, "steps_per_epoch": 4}, lambda: common.dataset(num_examples=12).repeat(), 7),
])
def test_plain_classifier_resumes_through_backup_fit(tmp_path, fit_kwargs, data, interrupt_after):
    """`DistillationBackup.fit` gives any Keras model the Distiller's exact resume."""
    backup = DistillationBackup(tmp_path / "backup", save_every_steps=2)
    with pytest.raises(common.Interrupt):
        backup.fit(_classifier(), data(), verbose=0,
                   callbacks=[common.InterruptAfter(interrupt_after)], **fit_kwargs)
    latest = backup.latest()
    assert latest["iterations"] == interrupt_after - 1
    assert (latest["epoch"], latest["batch"]) == (1, 2)  # mid-epoch 2
    resumed = _classifier()
    history = backup.fit(resumed, data(), verbose=0, **fit_kwargs)
    reference = _classifier()
    expected = reference.fit(data(), verbose=0, **fit_kwargs)
    assert common.max_difference(resumed.get_weights(), reference.get_weights()) <= TOLERANCE
    # The resumed epoch logs the metrics of the batches trained before the interruption too.
    np.testing.assert_allclose(history.history["loss"][-1], expected.history["loss"][-1],
                               rtol=1e-5)
