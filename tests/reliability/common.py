"""Models, data and subprocess helpers shared by the reliability tests.

Everything here is deterministic: the same calls in another process build
the same models (same initial weights and dropout seeds) and the same data.
"""

import os
import pathlib
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import tensorflow as tf

from augpro_keras import Distiller
from tests import tiny

ROOT = pathlib.Path(__file__).resolve().parents[2]


def distiller(augmentations=("augpro_mix", "augpro_fgsm"), dropout=0.1, seed=5, learning_rate=1e-2,
              steps_per_execution=1, jit_compile=False, run_eagerly=True, **kwargs):
    """A 1-layer, width-8 teacher and student with dropout on, Adam and accuracy.

    Eager by default: for the few steps of a test that is faster than
    tracing the training graph (about 7 s); pass `run_eagerly=False` to run
    the graph as users do.
    """
    teacher = tiny.model(num_layers=1, hidden_dim=8, seed=0, dropout=dropout)
    student = tiny.model(num_layers=1, hidden_dim=8, seed=1, dropout=dropout)
    kwargs.setdefault("teacher_dropout", dropout > 0)
    model = Distiller(teacher, student, augmentations=list(augmentations), seed=seed, **kwargs)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        metrics=["accuracy"],
        jit_compile=jit_compile,
        steps_per_execution=steps_per_execution,
        run_eagerly=run_eagerly and not jit_compile,
    )
    return model


def dataset(num_examples=24, batch_size=4, length=8, shuffle_seed=1, seed=3):
    """Labelled batches, reshuffled every epoch with a fixed seed."""
    x, y = tiny.batch(num_examples, length=length, seed=seed)
    data = tf.data.Dataset.from_tensor_slices((x, y))
    if shuffle_seed is not None:
        data = data.shuffle(num_examples, seed=shuffle_seed, reshuffle_each_iteration=True)
    return data.batch(batch_size, drop_remainder=True)


def max_difference(weights_a, weights_b):
    return max(float(np.max(np.abs(a - b))) for a, b in zip(weights_a, weights_b))


def python_environment():
    env = dict(os.environ)
    env["KERAS_BACKEND"] = "tensorflow"
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("TF_CONFIG", None)
    return env


def start(module, *args, env=None, **kwargs):
    """Starts `python -m <module> <args>` from the repository root."""
    return subprocess.Popen(
        [sys.executable, "-m", module, *map(str, args)],
        cwd=ROOT,
        env=env or python_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **kwargs,
    )


def start_and_kill(module, *args, marker, timeout=300):
    """Starts `python -m <module> <args>`, waits until it writes `marker` (a
    worker's sign that it reached the step to be killed at) and kills it with
    SIGKILL."""
    process = start(module, *args)
    deadline = time.time() + timeout
    while not os.path.exists(marker):
        if process.poll() is not None:
            raise AssertionError(f"the training process ended early:\n{process.stdout.read()}")
        if time.time() > deadline:
            process.kill()
            raise AssertionError(f"no marker after {timeout} s")
        time.sleep(0.2)
    os.kill(process.pid, signal.SIGKILL)
    assert process.wait(timeout=60) == -signal.SIGKILL


class Interrupt(Exception):
    """Raised by `InterruptAfter` to stop a run as a crash would."""


class InterruptAfter(keras.callbacks.Callback):
    """Raises `Interrupt` after the given number of batches of this fit."""

    def __init__(self, batches):
        super().__init__()
        self.batches = batches
        self.seen = 0

    def on_train_batch_end(self, batch, logs=None):
        self.seen += 1
        if self.seen >= self.batches:
            raise Interrupt(f"interrupted after {self.seen} batches")
