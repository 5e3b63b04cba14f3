"""Batches as the first replica sees them: Keras's first-batch build under a
multi-replica strategy (which boolean masks break), and the Distiller's resume."""

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
