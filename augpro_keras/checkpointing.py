"""Atomic backups of a distillation's training state.

A backup is a folder `<directory>/backup-<number>/` holding `state.npz` (the
values of the variables) and `metadata.json` (where training stood). It is
written into a temporary folder first and renamed into place, so a process
killed while writing never leaves a half-written backup: the newest
`backup-*` folder is always complete.

What a backup holds (see `state_variables`):

- every variable of the student (weights, and the states of its dropout
  seed generators);
- the states of the teacher's seed generators (its dropout draws change
  every step), but not the frozen teacher weights; a fingerprint of those is
  stored instead, and a restore refuses a different teacher;
- the optimizer's variables, including `iterations`, from which the
  Distiller derives its random draws;
- the running values of the metrics of the current epoch.

`augpro_keras.callbacks.DistillationBackup` writes and restores these; the
functions here are the file format.
"""

import json
import os
import shutil
import tempfile

import numpy as np

FORMAT_VERSION = 1
STATE_FILE = "state.npz"
METADATA_FILE = "metadata.json"
_PREFIX = "backup-"
_TEMP_PREFIX = ".tmp-"


def seed_state_variables(layer):
    """The states of the `keras.random.SeedGenerator`s inside `layer`."""
    states = []
    for sublayer in layer._flatten_layers(include_self=True, recursive=True):
        for generator in getattr(sublayer, "_seed_generators", ()):
            states.append(generator.state)
    return states


def state_variables(model):
    """`(model_variables, optimizer_variables)`: what a backup saves and restores.

    For a model with a frozen `teacher` (a `Distiller`), the teacher's weights
    are left out (they never change) but its seed-generator states are kept.
    """
    metric_ids = {id(v) for v in model.metrics_variables}
    variables = [v for v in model.variables if id(v) not in metric_ids]
    teacher = getattr(model, "teacher", None)
    if teacher is not None and not teacher.trainable:
        teacher_ids = {id(v) for v in teacher.variables}
        keep = {id(v) for v in seed_state_variables(teacher)}
        variables = [v for v in variables if id(v) not in teacher_ids or id(v) in keep]
    optimizer = getattr(model, "optimizer", None)
    optimizer_variables = list(optimizer.variables) if optimizer is not None else []
    return variables, optimizer_variables


def frozen_fingerprint(model):
    """Per-variable float64 sums of the frozen teacher's weights (empty without one)."""
    teacher = getattr(model, "teacher", None)
    if teacher is None or teacher.trainable:
        return []
    seeds = {id(v) for v in seed_state_variables(teacher)}
    return [
        float(np.sum(np.asarray(v.numpy(), dtype="float64")))
        for v in teacher.variables
        if id(v) not in seeds
    ]


def _build_optimizer(model):
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None and not optimizer.built:
        with model.distribute_strategy.scope():
            optimizer.build(model.trainable_variables)


def _metric_values(model):
    values = {}
    for metric in model.metrics:
        for index, variable in enumerate(metric.variables):
            values[f"{metric.name}/{index}"] = np.asarray(variable.numpy())
    return values


def _number(name):
    try:
        return int(name[len(_PREFIX):])
    except ValueError:
        return None


def list_backups(directory):
    """The complete backup folders in `directory`, oldest first."""
    if not os.path.isdir(directory):
        return []
    found = []
    for name in os.listdir(directory):
        number = _number(name) if name.startswith(_PREFIX) else None
        path = os.path.join(directory, name)
        if number is not None and os.path.isfile(os.path.join(path, METADATA_FILE)):
            found.append((number, path))
    return [path for _, path in sorted(found)]


def read_metadata(path):
    with open(os.path.join(path, METADATA_FILE), encoding="utf-8") as f:
        metadata = json.load(f)
    metadata["path"] = path
    return metadata


def latest_backup(directory):
    """The metadata dict of the newest backup in `directory`, or `None`."""
    backups = list_backups(os.fspath(directory))
    return read_metadata(backups[-1]) if backups else None


def _fsync_directory(path):
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def collect_state(model, fingerprint=None):
    """Reads the training state into numpy: `(arrays, description)`.

    Under a multi-worker strategy every worker must call this (reading the
    metrics' sync-on-read variables is a collective); only the chief writes.
    """
    _build_optimizer(model)
    variables, optimizer_variables = state_variables(model)
    arrays = {}
    for prefix, group in (("model", variables), ("optimizer", optimizer_variables)):
        for index, variable in enumerate(group):
            arrays[f"{prefix}/{index:05d}"] = np.asarray(variable.numpy())
    for name, value in _metric_values(model).items():
        arrays[f"metrics/{name}"] = value
    description = {
        "format": FORMAT_VERSION,
        "model_variables": [[v.path, list(v.shape)] for v in variables],
        "optimizer_variables": [[v.path, list(v.shape)] for v in optimizer_variables],
        "teacher_fingerprint": frozen_fingerprint(model) if fingerprint is None else fingerprint,
    }
    return arrays, description


def write_state(directory, state, metadata, keep=1):
    """Writes a state from `collect_state` as a new backup; returns its path.

    The state goes to a temporary folder inside `directory`, which is then
    renamed to the next `backup-<number>`; older backups beyond the newest
    `keep` are removed afterwards.
    """
    arrays, description = state
    directory = os.fspath(directory)
    os.makedirs(directory, exist_ok=True)
    for name in os.listdir(directory):  # leftovers of a killed writer
        if name.startswith(_TEMP_PREFIX):
            shutil.rmtree(os.path.join(directory, name), ignore_errors=True)
    metadata = {**metadata, **description}
    temporary = tempfile.mkdtemp(prefix=_TEMP_PREFIX, dir=directory)
    try:
        with open(os.path.join(temporary, STATE_FILE), "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        with open(os.path.join(temporary, METADATA_FILE), "w", encoding="utf-8") as f:
            json.dump(metadata, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        existing = list_backups(directory)
        number = (_number(os.path.basename(existing[-1])) + 1) if existing else 0
        final = os.path.join(directory, f"{_PREFIX}{number:08d}")
        os.rename(temporary, final)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    _fsync_directory(directory)
    for old in list_backups(directory)[:-max(1, keep)]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def write_backup(directory, model, metadata, keep=1, fingerprint=None):
    """Writes the model's training state as a new backup; returns its path."""
    return write_state(directory, collect_state(model, fingerprint), metadata, keep)


def _check_same(kind, saved, variables, path):
    current = [[v.path, list(v.shape)] for v in variables]
    if len(saved) != len(current) or any(list(s[1]) != c[1] for s, c in zip(saved, current)):
        mismatch = next(
            (
                f"saved {s[0]} {tuple(s[1])} vs. {c[0]} {tuple(c[1])}"
                for s, c in zip(saved, current)
                if list(s[1]) != c[1]
            ),
            f"{len(saved)} saved vs. {len(current)} now",
        )
        raise ValueError(
            f"The backup {path} was written for a different model: its {kind} variables "
            f"do not match ({mismatch}). Resume with the same teacher, student, "
            "augmentations and optimizer, or use a new backup directory."
        )


def restore_backup(model, path):
    """Loads a backup into `model` (built) and its optimizer (built here if needed).

    The running metric values are not restored here (see `metric_values` and
    `restore_metric_values`). Raises `ValueError` when the backup does not
    fit the model.
    """
    metadata = read_metadata(path)
    if metadata.get("format") != FORMAT_VERSION:
        raise ValueError(
            f"The backup {path} has format {metadata.get('format')!r}; this version of "
            f"augpro_keras reads format {FORMAT_VERSION}."
        )
    _build_optimizer(model)
    variables, optimizer_variables = state_variables(model)
    _check_same("model", metadata["model_variables"], variables, path)
    _check_same("optimizer", metadata["optimizer_variables"], optimizer_variables, path)
    saved_fingerprint = metadata.get("teacher_fingerprint") or []
    if saved_fingerprint:
        current = frozen_fingerprint(model)
        if len(current) != len(saved_fingerprint) or not np.allclose(
            current, saved_fingerprint, rtol=1e-6, atol=1e-6
        ):
            raise ValueError(
                f"The backup {path} was written while distilling from a teacher with "
                "other weights; resume with the same teacher."
            )
    with np.load(os.path.join(path, STATE_FILE)) as arrays:
        for prefix, group in (("model", variables), ("optimizer", optimizer_variables)):
            for index, variable in enumerate(group):
                variable.assign(arrays[f"{prefix}/{index:05d}"])
    return metadata


def metric_values(path):
    """The saved metric values of a backup, `{"<metric>/<index>": array}`."""
    with np.load(os.path.join(path, STATE_FILE)) as arrays:
        return {
            key[len("metrics/"):]: arrays[key] for key in arrays.files if key.startswith("metrics/")
        }


def restore_metric_values(model, values):
    """Sets the running values of the model's (built) metrics from a backup."""
    for metric in model.metrics:
        for index, variable in enumerate(metric.variables):
            key = f"{metric.name}/{index}"
            if key in values:
                variable.assign(values[key])
