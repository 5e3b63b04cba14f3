"""Test setup: TensorFlow backend, two logical CPU devices, quiet logs.

Logical devices must be configured before TensorFlow runs its first op, so
this happens at import time, before any test module imports the package.
"""

import os
import pathlib

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# XLA compiles each test's steps at LLVM -O0: the tests check results, not
# speed, and compiling is most of an XLA test's time on CPU. The suite's
# XLA-heavy modules (augmentations, distiller) ran 16 to 23% faster
# (docs/testing.md). The command-line tools, benchmarks and notebooks these
# tests start inherit it.
os.environ.setdefault("XLA_FLAGS", "--xla_backend_optimization_level=0")

import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

_cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(
    _cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2
)

SHARED_GLUE_DIR = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "data" / "glue"


@pytest.fixture
def glue_dir():
    """The real GLUE TSVs beside the project, or a skip when they are absent."""
    if not SHARED_GLUE_DIR.is_dir():
        pytest.skip(f"real GLUE data not found at {SHARED_GLUE_DIR}")
    return SHARED_GLUE_DIR


# Fixtures that train once for the tests that share them. The tests using one
# go to one pytest-xdist worker (`--dist loadgroup`, pytest.ini), so that it
# trains once per test run instead of once per worker.
SHARED_TRAINED_FIXTURES = ("tiny_run", "minilm_run")


def pytest_collection_modifyitems(config, items):
    for item in items:
        for name in SHARED_TRAINED_FIXTURES:
            if name in getattr(item, "fixturenames", ()):
                item.add_marker(pytest.mark.xdist_group(name))
                break
