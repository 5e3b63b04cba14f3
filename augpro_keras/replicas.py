"""Batches and logs as the replicas see them: Keras's first-batch build under a
multi-replica strategy (which boolean masks break), the Distiller's resume, and
logs that a multi-worker strategy can reduce."""

import keras
import tensorflow as tf


def first_replica_value(strategy, value):
    """`value` as replica 0 holds it; a value that is not distributed stays as it is."""
    if isinstance(value, tf.distribute.DistributedValues):
        return strategy.experimental_local_results(value)[0]
    return value


def first_replica_build_arguments(model, iterator, data_batch):
    """`(iterator, data_batch)` for Keras's `_maybe_symbolic_build`, taking the
    first batch of a TensorFlow epoch iterator as replica 0 sees it.

    Under a `tf.distribute` strategy Keras learns the input shapes for its
    symbolic build by averaging the first batch across replicas, which fails
    for boolean padding masks (keras-hub's preprocessors make them). The
    first replica's batch has the same shapes and dtypes, and that is all the
    build reads. Keras's own build takes this batch off the iterator in the
    same way. Without an iterator or an explicit strategy nothing changes.

    Example:
    ```python
    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        iterator, data_batch = first_replica_build_arguments(self, iterator, data_batch)
        return super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)
    ```
    """
    if iterator is None or model._distribute_strategy is None:
        return iterator, data_batch
    for _, _, batches in iterator:
        return None, keras.tree.map_structure(
            lambda v: first_replica_value(model.distribute_strategy, v), next(batches)
        )
    return None, data_batch


def for_reduction(strategy, logs):
    """`logs` as `[1]` tensors under a multi-worker strategy, else unchanged.

    Keras 3 reduces the logged values of a multi-worker step with
    `strategy.reduce("MEAN", value, axis=0)`, which fails on scalars
    (tensorflow/tensorflow#72388); `[1]` tensors reduce to the scalar mean.

    Example (at the end of a `train_step`):
    ```python
    return for_reduction(self.distribute_strategy, logs)
    ```
    """
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and (
        strategy.extended._in_multi_worker_mode()
    ):
        return {name: tf.reshape(value, [1]) for name, value in logs.items()}
    return logs
