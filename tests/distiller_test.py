import keras
import numpy as np
import pytest
import tensorflow as tf

from augpro_keras import Distiller
from augpro_keras import augmentations as aug
from tests import harness
from tests import tiny

# The modes of no augmentation and of several at once, and the sign variant the
# augmentation harness does not run. Every other augmentation gets the same
# checks (exact logs, finite, the total the sum of its parts), eagerly and
# under XLA, from `tests/harness.py::run_augmentation_test`
# (augmentations_test.py::test_augmentation_harness).
XLA_MODES = {
    "kd": [],
    "augpro_fgsm_descent": [aug.AugProFGSM(direction="descent")],
    "augpro_mix+augpro_fgsm": ["augpro_mix", "augpro_fgsm"],
}


def make(augmentations=(), jit_compile=False, smallest=False, **kwargs):
    teacher, student = tiny.smallest_pair() if smallest else tiny.pair()
    kwargs.setdefault("teacher_dropout", False)
    distiller = Distiller(teacher, student, augmentations=augmentations, seed=7, **kwargs)
    distiller.compile(optimizer=keras.optimizers.SGD(0.1), metrics=["accuracy"], jit_compile=jit_compile)
    return distiller


@pytest.mark.parametrize("mode", sorted(XLA_MODES))
def test_every_mode_trains_under_xla_and_logs(mode):
    """The per-replica step of these modes compiles with XLA, trains every student weight and logs."""
    distiller = make(XLA_MODES[mode], jit_compile=True, smallest=True)
    assert distiller.xla_step
    before = [w.copy() for w in distiller.student.get_weights()]
    history = distiller.fit(tiny.dataset(batch_size=4, length=8), epochs=1, verbose=0).history
    assert all(not np.array_equal(b, a) for b, a in zip(before, distiller.student.get_weights()))
    harness.assert_step_logs(history, distiller.augmentation_list, metrics=["accuracy"])


def test_kd_loss_is_eq4_with_temperature():
    x, y = tiny.batch()
    distiller = make(temperature=2.0)
    student_logits = distiller.student(x).numpy().astype("float64")
    teacher_logits = distiller.teacher(x).numpy().astype("float64")

    def log_softmax(z):
        z = z - z.max(-1, keepdims=True)
        return z - np.log(np.exp(z).sum(-1, keepdims=True))

    ce = -log_softmax(student_logits)[np.arange(len(y)), y].mean()
    pt, ls = log_softmax(teacher_logits / 2.0), log_softmax(student_logits / 2.0)
    kl = 4.0 * (np.exp(pt) * (pt - ls)).sum(-1).mean()
    history = distiller.fit(tiny.dataset(), epochs=1, verbose=0).history
    np.testing.assert_allclose(history["student_loss"][0], ce, rtol=1e-4)
    np.testing.assert_allclose(history["distillation_loss"][0], kl, rtol=1e-4)
    np.testing.assert_allclose(history["loss"][0], ce + kl, rtol=1e-4)


def test_unlabeled_data_uses_the_distance_only():
    distiller = make(["augpro_mix"])
    history = distiller.fit(tiny.dataset(labeled=False), epochs=1, verbose=0).history
    assert set(history) == {"loss", "distillation_loss", "augpro_mix_loss", "augpro_mix_token_change_rate",
                            "augpro_mix_teacher_confidence", "augpro_mix_teacher_label_flip_rate"}
    np.testing.assert_allclose(
        history["loss"][0], history["distillation_loss"][0] + history["augpro_mix_loss"][0], rtol=1e-5
    )


def test_mse_distance_and_regression():
    teacher, student = tiny.model(num_classes=1, seed=1), tiny.model(num_classes=1, seed=2, num_layers=1)
    distiller = Distiller(
        teacher, student, augmentations=["mixup", "augpro_fgsm"], distillation_loss="mse",
        task="regression", seed=0, teacher_dropout=False,
    )
    distiller.compile(optimizer="sgd", jit_compile=False)
    x, _ = tiny.batch()
    scores = np.linspace(0.0, 5.0, 8).astype("float32")
    expected_student = np.mean((student(x).numpy()[:, 0] - scores) ** 2)
    expected_distance = np.mean((student(x).numpy() - teacher(x).numpy()) ** 2)
    data = tf.data.Dataset.from_tensor_slices((x, scores)).batch(8, drop_remainder=True)
    history = distiller.fit(data, verbose=0).history
    assert all(np.isfinite(v[0]) for v in history.values())
    assert history["student_loss"][0] == pytest.approx(expected_student, rel=1e-4)
    assert history["distillation_loss"][0] == pytest.approx(expected_distance, rel=1e-4)


def test_teacher_never_changes_and_student_does():
    distiller = make(["mixup", "augpro_mix", "fgsm", "augpro_fgsm", "knn", "tmix", "random_tokens"])
    distiller.teacher_dropout = True
    teacher_before = [w.copy() for w in distiller.teacher.get_weights()]
    student_before = [w.copy() for w in distiller.student.get_weights()]
    distiller.fit(tiny.dataset(), epochs=1, verbose=0)
    for before, after in zip(teacher_before, distiller.teacher.get_weights()):
        np.testing.assert_array_equal(before, after)
    changed = [not np.array_equal(b, a) for b, a in zip(student_before, distiller.student.get_weights())]
    assert all(changed)
    assert not distiller.teacher.trainable
    assert {id(v) for v in distiller.trainable_variables} == {id(v) for v in distiller.student.trainable_variables}


@pytest.mark.parametrize("name", ["augpro_mix", "augpro_fgsm"])
def test_projected_ids_carry_no_gradient(name):
    """The AugPro loss reaches the student only through its forward pass on x'."""
    distiller = make([name])
    x, y = tiny.batch()
    student = distiller.student
    with tf.GradientTape() as tape:
        _, _, _, outputs = distiller.step_losses(x, y, tf.constant(3))
        aug_loss = tf.reduce_sum(outputs[name].loss)
    via_step = tape.gradient(aug_loss, student.trainable_variables)
    new_ids = outputs[name].token_ids
    assert new_ids.dtype == tf.int32
    replay = {"token_ids": new_ids, "padding_mask": outputs[name].padding_mask, "segment_ids": x["segment_ids"]}
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(
            distiller.distillation_loss_weight
            * keras.ops.sum(
                tf.exp(tf.nn.log_softmax(distiller.teacher(replay)))
                * (tf.nn.log_softmax(distiller.teacher(replay)) - tf.nn.log_softmax(student(replay, training=True))),
                axis=-1,
            )
        )
    direct = tape.gradient(loss, student.trainable_variables)
    for a, b in zip(via_step, direct):
        np.testing.assert_allclose(tf.convert_to_tensor(a).numpy(), tf.convert_to_tensor(b).numpy(), rtol=1e-4, atol=1e-6)


def test_evaluate_runs_the_student_alone():
    distiller = make(["augpro_mix"])
    distiller.fit(tiny.dataset(), epochs=1, verbose=0)

    def refuse(*args, **kwargs):
        raise AssertionError("the teacher ran during evaluation")

    distiller.teacher.call = refuse
    distiller.teacher.hidden_states_at = refuse
    x, y = tiny.batch(seed=1)
    results = distiller.evaluate(tf.data.Dataset.from_tensor_slices((x, y)).batch(8), verbose=0, return_dict=True)
    logits = distiller.student(x).numpy()
    assert set(results) == {"loss", "student_loss", "accuracy"}
    assert results["accuracy"] == pytest.approx(np.mean(logits.argmax(-1) == y))
    ce = keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True).numpy().mean()
    assert results["loss"] == pytest.approx(ce, rel=1e-5)
    np.testing.assert_allclose(distiller.predict(x, verbose=0), logits, rtol=1e-5)


def test_same_seed_same_result():
    weights = []
    for _ in range(2):
        distiller = make(["augpro_mix", aug.AugProFGSM(direction="random")], smallest=True)
        distiller.fit(tiny.dataset(num_batches=2, batch_size=4), epochs=1, verbose=0)
        weights.append(distiller.student.get_weights())
    for a, b in zip(*weights):
        np.testing.assert_array_equal(a, b)


def test_serialization_round_trip():
    distiller = make(["augpro_mix", aug.AugProFGSM(epsilon=0.5, direction="descent"), aug.TMix(1, 1)])
    config = distiller.get_config()
    restored = Distiller.from_config(config)
    assert [a.get_config() for a in restored.augmentation_list] == [
        a.get_config() for a in distiller.augmentation_list
    ]
    assert restored.seed == distiller.seed and restored.temperature == distiller.temperature


def test_augmentation_instances_are_used_as_given_and_settings_are_attributes():
    """An instance passed in is the one that runs: the Distiller builds no copy."""
    mix, fgsm = aug.AugProMix(), aug.AugProFGSM(epsilon=0.5)
    distiller = make([mix, fgsm, "tmix"])
    assert distiller.augmentation_list[0] is mix and distiller.augmentation_list[1] is fgsm
    assert distiller.temperature == 1.0 and distiller.settings.temperature == 1.0
    distiller.temperature = 3.0  # Replaces the frozen settings by a checked copy.
    assert distiller.settings.temperature == 3.0
    with pytest.raises(ValueError, match="temperature"):
        distiller.temperature = -1.0
    with pytest.raises(AttributeError):
        distiller.similarity = "dot"  # Defines the projection: read-only.


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"augmentations": ["augpro-mixx"]}, "Did you mean 'augpro_mix'"),
        ({"augmentations": ["mixup", "mixup"]}, "unique"),
        ({"distillation_loss": "ce"}, "Allowed values: kl, mse"),
        ({"temperature": 0}, "temperature"),
        ({"student_loss_weight": -1}, "student_loss_weight"),
        ({"task": "ranking"}, "classification, regression"),
        ({"task": "regression"}, "distillation_loss='mse'"),
        ({"mix_group_size": 0}, "mix_group_size"),
        ({"augmentations": [aug.TMix(teacher_layer=9)]}, r"teacher_layer must be an integer in \[0, 2\]"),
        ({"similarity": "euclid"}, "cosine, dot, l2"),
        ({"projection_chunk_size": 0}, "chunk_size"),
    ],
)
def test_bad_arguments(kwargs, message):
    teacher, student = tiny.pair()
    with pytest.raises(ValueError, match=message):
        Distiller(teacher, student, **kwargs)


def test_vocabulary_mismatch_names_both_sizes():
    teacher = tiny.model(vocabulary_size=48)
    student = tiny.model(vocabulary_size=40)
    with pytest.raises(ValueError, match="teacher's has 48 tokens, the student's has 40"):
        Distiller(teacher, student)


def test_models_without_the_protocol_are_refused():
    teacher, _ = tiny.pair()
    plain = keras.Sequential([keras.layers.Embedding(48, 4), keras.layers.GlobalAveragePooling1D(), keras.layers.Dense(3)])
    with pytest.raises(ValueError, match="does not implement the DistillableClassifier protocol"):
        Distiller(teacher, plain)


def test_compile_refuses_a_loss_and_sample_weights():
    teacher, student = tiny.pair()
    distiller = Distiller(teacher, student)
    with pytest.raises(ValueError, match="computes its own losses"):
        distiller.compile(optimizer="sgd", loss="mse")
    distiller.compile(optimizer="sgd")
    x, y = tiny.batch()
    data = tf.data.Dataset.from_tensor_slices((x, y, np.ones(8, "float32"))).batch(8)
    with pytest.raises(ValueError, match="sample weights"):
        distiller.fit(data, verbose=0)


@pytest.mark.parametrize(
    "factory, message",
    [
        (lambda: aug.FGSM(epsilon=-1.0), "epsilon"),
        (lambda: aug.AugProFGSM(epsilon=1.0, relative_epsilon=1.0), "exactly one"),
        (lambda: aug.AugProFGSM(direction="sideways"), "ascent, descent, random"),
        (lambda: aug.AugProMix(lam=2.0), "lam"),
        (lambda: aug.MixUp(alpha=0.0), "alpha"),
        (lambda: aug.KNNReplacement(k=0), "k"),
        (lambda: aug.KNNReplacement(fraction=0.0), "fraction"),
        (lambda: aug.MixUp(weight=-1), "weight"),
    ],
)
def test_bad_augmentation_arguments(factory, message):
    with pytest.raises(ValueError, match=message):
        factory()
