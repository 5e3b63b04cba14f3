"""Runs any keras-hub `TextClassifier` the way AugPro needs.

AugPro splits a classifier `f = f_l o f_e` into the word-embedding lookup
`f_e` and the rest `f_l` (see `DistillableClassifier`), and TMix also stops
after an inner transformer layer and continues from there. keras-hub tasks
take token ids only, so `TextClassifierAdapter` runs the task's own
functional graph (`graph.run_graph`) with inner tensors fed:

- from word embeddings: the output of the backbone's `token_embedding` call
  is fed. Families whose embedding layer adds positions in the same layer
  (`TokenAndPositionEmbedding`: DistilBERT, RoBERTa, XLM-RoBERTa) have no
  such tensor; there the fused output is fed with
  `word_embeddings + layer.position_embedding(word_embeddings)`, the same
  two operations that layer runs.
- from layer `k`: the input of the first transformer-layer call (`k = 0`) or
  the output of the `k`-th call is fed. Every call counts, so an ALBERT
  with shared layers has `num_layers * num_inner_repetitions` of them.

Tensors that a step reads beside the fed ones are computed from the given
padding mask and segment ids. Where the graph reads token ids after the
embedding (RoFormerV2 builds its attention mask as `token_ids != 0`) it
reads a stand-in, the padding mask as integers, which gives the same mask
for every batch whose padding holds id 0 and whose real tokens do not.
Tensors computed upstream of layer `k` that depend on the batch's shape only
(DeBERTa-v3's relative embeddings) are recomputed from the stand-in ids. The
tests check, family by family, that every path gives the task's own logits.
"""

import keras
from keras import ops

from augpro_keras.models import graph
from augpro_keras.models.presets import special_token_ids_from_tokenizer
from augpro_keras.models.protocol import EmbeddingTableSizes


def _flatten_layers(layers):
    for layer in layers:
        if isinstance(layer, (list, tuple)):
            yield from _flatten_layers(layer)
        else:
            yield layer


class TextClassifierAdapter(EmbeddingTableSizes):
    """A keras-hub `TextClassifier` seen through the `DistillableClassifier` protocol.

    The adapter holds no weights of its own: every call runs the task's
    layers, so training through it trains the task. The `Distiller` wraps
    keras-hub tasks in it by itself; use it directly to run a task from
    word embeddings in your own code.

    Args:
        task: a `keras_hub.models.TextClassifier` (ALBERT, BERT, DeBERTa-v3,
            DistilBERT, F-Net, RoBERTa, RoFormerV2, XLM-RoBERTa, or any
            task built the same way: a functional task on a functional
            backbone with `token_embedding` and `transformer_layers`).
        special_token_ids: the tokenizer's special token ids; `None` reads
            them from `task.preprocessor.tokenizer`.
        pad_token_id: the padding id; `None` reads it from the tokenizer.

    Example:
    ```python
    task = keras_hub.models.BertTextClassifier(backbone, num_classes=2,
                                               preprocessor=preprocessor)
    model = TextClassifierAdapter(task)
    x = preprocessor(["a sentence"])
    same = model.call_from_embeddings(model.embed_tokens(x["token_ids"]),
                                      x["padding_mask"], x["segment_ids"])
    ```
    """

    def __init__(self, task, special_token_ids=None, pad_token_id=None):
        import keras_hub  # Deferred: importing keras-hub takes seconds.

        if not isinstance(task, keras_hub.models.TextClassifier):
            raise ValueError(
                "`task` must be a `keras_hub.models.TextClassifier`. "
                f"Received: {type(task).__name__}"
            )
        self.task = task
        backbone = task.backbone
        self.backbone = backbone
        family = type(task).__name__
        if not isinstance(backbone, keras.Model) or not hasattr(backbone, "_nodes_by_depth"):
            raise ValueError(f"{family}: the backbone must be a functional Keras model.")
        self.input_names = tuple(sorted(backbone.input))
        token_embedding = getattr(backbone, "token_embedding", None)
        layers = list(_flatten_layers(getattr(backbone, "transformer_layers", [])))
        if token_embedding is None or not layers:
            raise ValueError(
                f"{family}: the backbone needs `token_embedding` and `transformer_layers` "
                "to be run from word embeddings."
            )
        self._embedding_node, self._fused_positions = self._find_embedding_node(
            backbone, token_embedding, family
        )
        layer_nodes = graph.nodes_of_operations(backbone, layers)
        self._boundaries = [layer_nodes[0].arguments.args[0]] + [n.outputs[0] for n in layer_nodes]
        backbone_nodes = graph.nodes_of_operations(task, [backbone])
        if len(backbone_nodes) != 1:
            raise ValueError(f"{family}: the task must call its backbone exactly once.")
        self._task_backbone_outputs = backbone_nodes[0].outputs

        if special_token_ids is None or pad_token_id is None:
            tokenizer = getattr(getattr(task, "preprocessor", None), "tokenizer", None)
            if tokenizer is None:
                raise ValueError(
                    f"{family} has no preprocessor with a tokenizer, so its special token ids "
                    "are unknown: attach a preprocessor or pass `special_token_ids` and "
                    "`pad_token_id`."
                )
            if special_token_ids is None:
                special_token_ids = special_token_ids_from_tokenizer(tokenizer, self.vocabulary_size)
            if pad_token_id is None:
                pad_token_id = tokenizer.pad_token_id
        self.pad_token_id = int(pad_token_id)
        self.special_token_ids = tuple(sorted({int(i) for i in special_token_ids} | {self.pad_token_id}))

    @staticmethod
    def _find_embedding_node(backbone, token_embedding, family):
        """The node that turns token ids into embeddings, and whether it adds positions."""
        token_ids = backbone.input["token_ids"]
        for node in graph.graph_nodes(backbone):
            if not node.arguments.args or node.arguments.args[0] is not token_ids:
                continue
            if node.operation is token_embedding:
                return node, None
            if getattr(node.operation, "token_embedding", None) is token_embedding and hasattr(
                node.operation, "position_embedding"
            ):
                return node, node.operation.position_embedding
        raise ValueError(
            f"{family}: found no layer that embeds `token_ids` with the backbone's "
            "`token_embedding`."
        )

    # === Protocol ===
    def embed_tokens(self, token_ids):
        return self.backbone.token_embedding(token_ids)

    @property
    def embedding_matrix(self):
        return self.backbone.token_embedding.embeddings

    @property
    def num_layers(self):
        return len(self._boundaries) - 1

    @property
    def num_classes(self):
        return int(self.task.num_classes)

    def hidden_states_at(self, embeddings, padding_mask, segment_ids=None, layer=0, training=False):
        self._check_layer(layer)
        feeds = self._input_feeds(padding_mask, segment_ids) + [self._embedding_feed(embeddings)]
        (hidden,) = graph.run_graph(self.backbone, feeds, [self._boundaries[layer]], training)
        return hidden

    def logits_from_hidden(self, hidden, padding_mask, layer=0, training=False):
        self._check_layer(layer)
        feeds = self._input_feeds(padding_mask, None) + [(self._boundaries[layer], hidden)]
        return self._logits(feeds, training)

    def call_from_embeddings(self, embeddings, padding_mask, segment_ids=None, training=False):
        feeds = self._input_feeds(padding_mask, segment_ids) + [self._embedding_feed(embeddings)]
        return self._logits(feeds, training)

    def __call__(self, inputs, training=False):
        """The task's own forward pass on the inputs it takes."""
        return self.task(self.task_inputs(inputs), training=training)

    def task_inputs(self, inputs):
        """`inputs` reduced to the keys the task takes (segment ids 0 where missing)."""
        token_ids = inputs["token_ids"]
        values = {"token_ids": token_ids}
        if "padding_mask" in self.input_names:
            mask = inputs.get("padding_mask")
            values["padding_mask"] = ops.ones_like(token_ids, "bool") if mask is None else mask
        if "segment_ids" in self.input_names:
            segments = inputs.get("segment_ids")
            values["segment_ids"] = ops.zeros_like(token_ids) if segments is None else segments
        return values

    # === Internals ===
    def _check_layer(self, layer):
        if isinstance(layer, bool) or not isinstance(layer, int) or not 0 <= layer <= self.num_layers:
            raise ValueError(
                f"`layer` must be an integer in [0, {self.num_layers}] for "
                f"{type(self.task).__name__}. Received: {layer!r}"
            )

    def _embedding_feed(self, embeddings):
        if self._fused_positions is not None:
            embeddings = embeddings + self._fused_positions(embeddings)
        return (self._embedding_node.outputs[0], embeddings)

    def _input_feeds(self, padding_mask, segment_ids):
        padding_mask = ops.cast(padding_mask, "bool")
        inputs = self.backbone.input
        feeds = [(inputs["token_ids"], ops.cast(padding_mask, "int32"))]
        if "padding_mask" in inputs:
            feeds.append((inputs["padding_mask"], padding_mask))
        if "segment_ids" in inputs:
            if segment_ids is None:
                segment_ids = ops.zeros(ops.shape(padding_mask), "int32")
            feeds.append((inputs["segment_ids"], segment_ids))
        return feeds

    def _logits(self, feeds, training):
        outputs = graph.run_graph(self.backbone, feeds, self.backbone.outputs, training)
        (logits,) = graph.run_graph(
            self.task, list(zip(self._task_backbone_outputs, outputs)), self.task.outputs, training
        )
        return logits
