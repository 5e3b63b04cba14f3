"""Running part of a Keras functional graph, from any tensor inside it.

keras-hub backbones and tasks are functional models, but none takes word
embeddings as input (no `inputs_embeds`). AugPro needs three more entry and
exit points: run from word embeddings, stop after the `k`-th transformer
layer, and continue from there (TMix). `run_graph` evaluates a functional
model's own nodes with chosen tensors *fed* (given a value instead of being
computed) and returns chosen *target* tensors, computing only the nodes the
targets need.

Keras's `Functional` runs a whole graph from its inputs only
(`Function._run_through_graph`) and has no way to feed an inner tensor; a
sub-model `keras.Model(inner_tensor, output)` would do it for one cut, but
not for layers called several times (ALBERT shares its transformer layers)
nor for tensors that cross the cut beside the hidden states (DeBERTa's
relative embeddings, RoFormerV2's attention mask). Hence this small
evaluator over the same `Node` objects that Keras uses.
"""

from keras import tree
from keras.src.models.functional import operation_fn


def node_of(tensor):
    """The `Node` that produced a symbolic tensor of a functional graph."""
    operation, node_index, _ = tensor._keras_history
    return operation._inbound_nodes[node_index]


def graph_nodes(functional):
    """The nodes of `functional` (inputs excluded) in an order they can run."""
    depths = sorted(functional._nodes_by_depth, reverse=True)
    return [
        node
        for depth in depths
        for node in functional._nodes_by_depth[depth]
        if node.operation is not None and not node.is_input
    ]


def nodes_of_operations(functional, operations):
    """The nodes of `functional` whose operation is in `operations`, in run order."""
    wanted = {id(op) for op in operations}
    return [node for node in graph_nodes(functional) if id(node.operation) in wanted]


def run_graph(functional, feeds, targets, training=False):
    """Evaluates `targets` of `functional` with the tensors of `feeds` given.

    Args:
        functional: a Keras functional model (its nodes are evaluated; the
            model itself is not called).
        feeds: list of `(symbolic_tensor, value)` pairs. A fed tensor is not
            computed; its value is used wherever the graph reads it. Model
            inputs that a target needs must be fed.
        targets: list of symbolic tensors of the graph.
        training: the `training` argument passed to every layer that takes
            it (dropout).

    Returns:
        The list of the targets' values.
    """
    values = {id(tensor): value for tensor, value in feeds}
    needed = set()
    pending = list(targets)
    while pending:
        tensor = pending.pop()
        if id(tensor) in values:
            continue
        node = node_of(tensor)
        if id(node) in needed:
            continue
        if node.is_input:
            raise ValueError(
                f"Cannot compute {tensor.name!r} of {functional.name!r}: it needs the model "
                "input of the same name, which was not given."
            )
        needed.add(id(node))
        pending.extend(node.input_tensors)
    for node in graph_nodes(functional):
        if id(node) not in needed:
            continue
        args, kwargs = node.arguments.fill_in(values)
        outputs = operation_fn(node.operation, training=training)(*args, **kwargs)
        for symbolic, value in zip(node.outputs, tree.flatten(outputs)):
            values.setdefault(id(symbolic), value)
    return [values[id(tensor)] for tensor in targets]
