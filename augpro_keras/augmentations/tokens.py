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


def allowed_token_ids(vocabulary_size, special_token_ids):
    """Sorted numpy array of the ids that are not special."""
    allowed = np.setdiff1d(np.arange(vocabulary_size), np.asarray(list(special_token_ids)))
    return allowed.astype("int32")
