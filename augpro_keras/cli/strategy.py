"""Choosing a `tf.distribute` strategy: TPU, then GPUs, then CPU.

`resolve_strategy("auto")` connects to a Cloud TPU the way Colab does
(`TPUClusterResolver()`, `experimental_connect_to_cluster`,
`initialize_tpu_system`), else uses `MirroredStrategy` over every GPU when
there are several, else the default strategy (one GPU, or the CPU). It says
which it chose and why the others were passed over. Create models inside
`info.strategy.scope()`.

Example:
```python
from augpro_keras.cli.strategy import resolve_strategy
info = resolve_strategy("auto")
print(info.description)  # "CPU (default strategy), 1 replica: no TPU found (...); no GPU"
with info.strategy.scope():
    model = ...
```
"""

import dataclasses
import json
import os

import tensorflow as tf

STRATEGIES = ("auto", "tpu", "mirrored", "multiworker", "cpu")


class StrategyError(RuntimeError):
    """The requested strategy cannot run on this machine."""


@dataclasses.dataclass
class StrategyInfo:
    """The chosen strategy and how it was chosen.

    Attributes:
        strategy: the `tf.distribute.Strategy`.
        kind: "tpu", "mirrored", "multiworker", "gpu" or "cpu".
        num_replicas: `strategy.num_replicas_in_sync`.
        description: one line for the user.
    """

    strategy: object
    kind: str
    num_replicas: int
    description: str


def _tpu_vm_signs():
    """Whether this looks like a TPU VM (where the TPU is attached locally)."""
    return (
        os.path.exists("/dev/accel0")
        or os.path.exists("/dev/vfio/0") and "TPU_ACCELERATOR_TYPE" in os.environ
        or bool(os.environ.get("TPU_ACCELERATOR_TYPE"))
    )


def connect_tpu(tpu=None):
    """Connects to a TPU and returns `(TPUStrategy, description)`.

    Args:
        tpu: TPU name or `grpc://` address; `None` resolves it as on Colab and
            Cloud TPU (the `TPU_NAME` variable, or a TPU attached to this VM).

    Raises:
        StrategyError: when no TPU can be reached; the message says why.
    """
    resolver_cls = tf.distribute.cluster_resolver.TPUClusterResolver
    attempts = [tpu] if tpu else [None] + (["local"] if _tpu_vm_signs() else [])
    errors = []
    for address in attempts:
        try:
            resolver = resolver_cls(tpu=address) if address else resolver_cls()
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
            strategy = tf.distribute.TPUStrategy(resolver)
        except Exception as error:  # TF raises ValueError, NotFoundError, ...
            errors.append(f"{address or 'default resolver'}: {type(error).__name__}: "
                          f"{str(error).splitlines()[0][:160]}")
            continue
        where = resolver.master() or address or "local"
        return strategy, f"TPU ({where})"
    raise StrategyError(
        "No TPU found (" + "; ".join(errors) + "). On Colab choose Runtime > Change runtime "
        "type > TPU; on Cloud TPU pass --set runtime.tpu=<name>; elsewhere use "
        "--strategy auto, mirrored or cpu."
    )


def _replicas(strategy):
    return int(strategy.num_replicas_in_sync)


def _info(strategy, kind, label, notes=()):
    n = _replicas(strategy)
    text = f"{label}, {n} replica{'s' if n != 1 else ''}"
    if notes:
        text += ": " + "; ".join(notes)
    return StrategyInfo(strategy, kind, n, text)


def resolve_strategy(name="auto", tpu=None):
    """Returns a `StrategyInfo` for a strategy name.

    Args:
        name: "auto" (TPU, then >1 GPU mirrored, then one GPU, then CPU),
            "tpu" (an error when there is none), "mirrored" (all GPUs, or
            the CPU when there is none), "multiworker" (needs `TF_CONFIG`)
            or "cpu".
        tpu: optional TPU name or address (see `connect_tpu`).

    Raises:
        ValueError: for an unknown name.
        StrategyError: when the named strategy cannot run here.
    """
    if name not in STRATEGIES:
        raise ValueError(f"Unknown strategy {name!r}. Allowed: {', '.join(STRATEGIES)}")
    if name == "tpu":
        strategy, label = connect_tpu(tpu)
        return _info(strategy, "tpu", label)
    if name == "cpu":
        return _info(tf.distribute.OneDeviceStrategy("/cpu:0"), "cpu", "CPU (OneDeviceStrategy)")
    if name == "multiworker":
        if "TF_CONFIG" not in os.environ:
            raise StrategyError(
                "--strategy multiworker needs the TF_CONFIG environment variable that "
                "describes the cluster and this worker's task, e.g. "
                '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
                '"task": {"type": "worker", "index": 0}}.'
            )
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        workers = len(json.loads(os.environ["TF_CONFIG"]).get("cluster", {}).get("worker", []))
        return _info(strategy, "multiworker", f"MultiWorkerMirroredStrategy ({workers} workers)")
    gpus = tf.config.list_logical_devices("GPU")
    if name == "mirrored":
        strategy = tf.distribute.MirroredStrategy()
        devices = ", ".join(strategy.extended.worker_devices)
        return _info(strategy, "mirrored", f"MirroredStrategy ({devices})")
    # auto
    notes = []
    try:
        strategy, label = connect_tpu(tpu)
        return _info(strategy, "tpu", label)
    except StrategyError as error:
        notes.append(str(error).split(". On Colab")[0].replace("No TPU found", "no TPU found"))
    if len(gpus) > 1:
        return _info(tf.distribute.MirroredStrategy(), "mirrored",
                     f"MirroredStrategy over {len(gpus)} GPUs", notes)
    if len(gpus) == 1:
        return _info(tf.distribute.get_strategy(), "gpu", "one GPU (default strategy)", notes)
    notes.append("no GPU found")
    return _info(tf.distribute.get_strategy(), "cpu", "CPU (default strategy)", notes)
