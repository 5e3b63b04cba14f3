"""Runs of one command train the same way whatever ran before them."""

import numpy as np

from augpro_keras.cli import training
from augpro_keras.cli.modeling import StudentFactory
from augpro_keras.cli.modeling import build_teacher
from augpro_keras.cli.session import command_session
from tests.cli.conftest import tiny_config


def test_a_run_does_not_depend_on_the_runs_before_it(tmp_path):
    # The teacher is shared by every run and trains with dropout: without
    # reseeding, its random streams would carry over from run to run.
    config = tiny_config(str(tmp_path), "teacher.dropout=0.3", "student.dropout=0.3")
    mixup = {"name": "KD+MixUp", "augmentations": ["mixup"]}
    kd = {"name": "KD", "augmentations": []}
    with command_session(config, out=lambda _: None) as session:
        with session.strategy.scope():
            teacher = build_teacher(config, session.tokenizer, session.data)
        factory = StudentFactory(config, teacher, session.tokenizer, session.data, session.strategy)
        first, _, _ = training.distill(session, teacher, factory.new(), mixup)
        training.distill(session, teacher, factory.new(), kd)
        again, _, _ = training.distill(session, teacher, factory.new(), mixup)
        assert any(not np.array_equal(a, b)
                   for a, b in zip(first.get_weights(), factory.new().get_weights()))
        for a, b in zip(first.get_weights(), again.get_weights()):
            np.testing.assert_array_equal(a, b)


def test_results_rows_carry_the_per_epoch_logs(tmp_path):
    config = tiny_config(str(tmp_path), "distill.epochs=2")
    run = {"name": "KD+AugPro-Mix", "augmentations": ["augpro_mix"]}
    with command_session(config, out=lambda _: None) as session:
        with session.strategy.scope():
            teacher = build_teacher(config, session.tokenizer, session.data)
        factory = StudentFactory(config, teacher, session.tokenizer, session.data, session.strategy)
        _, best, details = training.distill(session, teacher, factory.new(), run)
    history = details["history"]
    assert history["epochs"] == [1, 2]
    for key in ("loss", "distillation_loss", "augpro_mix_loss", "augpro_mix_token_change_rate",
                "augpro_mix_teacher_confidence", "augpro_mix_teacher_label_flip_rate"):
        assert len(history[key]) == 2 and all(np.isfinite(history[key])), key
    assert 0.0 <= min(history["augpro_mix_teacher_confidence"]) <= 1.0
