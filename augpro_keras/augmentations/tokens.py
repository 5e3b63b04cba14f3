"""Token-level helpers shared by the augmentations that produce token ids."""

import numpy as np
from keras import ops


def is_special(token_ids, special_token_ids):
    """Bool `[B, L]`: whether each id is one of `special_token_ids`."""
    specials = ops.convert_to_tensor(np.asarray(sorted(special_token_ids), dtype="int32"))
    return ops.any(ops.cast(token_ids, "int32")[..., None] == specials, axis=-1)


def keep_special_tokens(
    new_ids,
    new_mask,
    token_ids,
    padding_mask,
    special_token_ids,
    pad_token_id,
    partner_ids=None,
    partner_mask=None,
):
    """Makes augmented ids a valid model input.

    The rule, position by position:
    1. outside `new_mask` (padding of the augmented sentence): `pad_token_id`;
    2. where the primary sentence has a special token: that token;
    3. where the primary sentence is padding and the MixUp partner has a
       special token (the tail of a longer partner): the partner's token;
    4. everywhere else: the augmented id (never special, since projections
       exclude special tokens as targets).
    """
    padding_mask = ops.cast(padding_mask, "bool")
    new_ids = ops.cast(new_ids, "int32")
    token_ids = ops.cast(token_ids, "int32")
    out = ops.where(
        ops.logical_and(padding_mask, is_special(token_ids, special_token_ids)), token_ids, new_ids
    )
    if partner_ids is not None:
        partner_ids = ops.cast(partner_ids, "int32")
        partner_special = ops.logical_and(
            ops.cast(partner_mask, "bool"), is_special(partner_ids, special_token_ids)
        )
        out = ops.where(ops.logical_and(~padding_mask, partner_special), partner_ids, out)
    return ops.where(ops.cast(new_mask, "bool"), out, pad_token_id)


def _last_position(mask):
    """Int `[B]`: the index of each row's last true position (-1 for none)."""
    mask = ops.cast(mask, "bool")
    positions = ops.arange(ops.shape(mask)[1], dtype="int32")[None, :]
    return ops.max(ops.where(mask, positions, -1), axis=1)


def move_closing_token(out_ids, projected_ids, token_ids, padding_mask, new_mask, special_token_ids,
                       pad_token_id):
    """Moves the primary sentence's closing special token to the end of the mixed sentence.

    `keep_special_tokens` keeps the primary sentence's special tokens where
    they were; when the partner is longer, the mixed sentence then has the
    primary's closing token (BERT's [SEP], T5's eos) in its middle. Here,
    for each row whose primary sentence ends with a special token at
    position `n - 1` and whose mixed mask ends at another position `m - 1`:
    position `m - 1` gets that closing token and position `n - 1` gets its
    projected id (or the pad id when it is outside the mixed mask). Other
    rows are returned unchanged.

    Args:
        out_ids: int32 `[B, L]`, the output of `keep_special_tokens`.
        projected_ids: int `[B, L]`, the projected ids (never special).
        token_ids, padding_mask: the primary sentences.
        new_mask: bool `[B, L]`, the mixed padding mask.
        special_token_ids: the ids that count as special.
        pad_token_id: the padding id.
    """
    out_ids = ops.cast(out_ids, "int32")
    token_ids = ops.cast(token_ids, "int32")
    length = ops.shape(token_ids)[1]
    old_end, new_end = _last_position(padding_mask), _last_position(new_mask)
    closing = ops.take_along_axis(token_ids, ops.maximum(old_end, 0)[:, None], axis=1)[:, 0]
    move = (old_end >= 0) & (new_end >= 0) & (old_end != new_end)
    move = move & is_special(closing[:, None], special_token_ids)[:, 0]
    positions = ops.arange(length, dtype="int32")[None, :]
    at_old = move[:, None] & (positions == old_end[:, None])
    at_new = move[:, None] & (positions == new_end[:, None])
    refill = ops.where(ops.cast(new_mask, "bool"), ops.cast(projected_ids, "int32"), pad_token_id)
    out = ops.where(at_old, refill, out_ids)
    return ops.where(at_new, closing[:, None], out)


def allowed_token_ids(vocabulary_size, special_token_ids):
    """Sorted numpy array of the ids that are not special."""
    allowed = np.setdiff1d(np.arange(vocabulary_size), np.asarray(list(special_token_ids)))
    return allowed.astype("int32")
