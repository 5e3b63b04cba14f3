"""Keras's first-batch build under a multi-replica strategy, for boolean masks."""

import keras


def first_replica_batch(strategy, iterator):
    """The first batch of a Keras TensorFlow epoch iterator, as replica 0 sees it.

    Under a `tf.distribute` strategy Keras learns the input shapes for its
    symbolic build by averaging the first batch across replicas, which fails
    for boolean padding masks (keras-hub's preprocessors make them). The
    first replica's batch has the same shapes and dtypes, and that is all the
    build reads. Keras's own build takes this batch off the iterator in the
    same way.

    Example:
    ```python
    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        if iterator is not None and self._distribute_strategy is not None:
            data_batch = first_replica_batch(self.distribute_strategy, iterator)
            iterator = None
        return super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)
    ```
    """
    for _, _, batches in iterator:
        return keras.tree.map_structure(
            lambda v: strategy.experimental_local_results(v)[0], next(batches)
        )
    return None
