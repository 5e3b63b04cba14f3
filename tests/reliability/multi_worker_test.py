"""Two worker processes under `MultiWorkerMirroredStrategy` match one process.

Slow (two processes start TensorFlow and trace the step): run with
`pytest -m slow tests/reliability/multi_worker_test.py`.
"""

import json
import socket

import numpy as np
import pytest
import tensorflow as tf

from augpro_keras import checkpointing
from tests.reliability import common
from tests.reliability import multi_worker_worker as worker


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.mark.slow
def test_two_workers_match_one_process_with_the_same_global_batch(tmp_path):
    cluster = {"worker": [f"127.0.0.1:{port}" for port in _free_ports(2)]}
    processes = []
    for index in range(2):
        env = common.python_environment()
        env["TF_CONFIG"] = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        env["CUDA_VISIBLE_DEVICES"] = ""
        processes.append(common.start("tests.reliability.multi_worker_worker", tmp_path, env=env))

    # The reference: one process, one replica, the same global batches.
    with tf.distribute.OneDeviceStrategy("/cpu:0").scope():
        reference = worker.build()
    history = reference.fit(worker.dataset(), epochs=1, steps_per_epoch=worker.NUM_BATCHES, verbose=0)

    outputs = []
    for process in processes:
        try:
            output, _ = process.communicate(timeout=420)
        except Exception:
            for p in processes:
                p.kill()
            raise
        outputs.append(output)
        assert process.returncode == 0, output
    expected = reference.student.get_weights()
    start = common.tiny.smallest_pair()[1].get_weights()
    assert common.max_difference(start, expected) > 1e-3  # the student moved
    for index in range(2):
        assert f"worker {index} done {worker.NUM_BATCHES}" in outputs[index]
        with np.load(tmp_path / f"worker{index}.npz") as result:
            weights = [result[f"arr_{i}"] for i in range(len(expected))]
            np.testing.assert_allclose(result["loss"], history.history["loss"], rtol=1e-5)
        assert common.max_difference(weights, expected) <= 1e-5
    # The chief alone wrote the backups; the newest is after the last step.
    latest = checkpointing.latest_backup(tmp_path / "backup")
    assert latest["iterations"] == worker.NUM_BATCHES
