"""Paired comparisons of two benchmark rows over the seeds they share.

A row's score on a seed depends on that seed's data order, dropout and
augmentation draws, which both rows of a pair share; so the comparison is
the per-seed difference `a - b`, summarised by its mean, a percentile
bootstrap interval over seeds and a sign count. With few seeds the interval
is wide and the sign count is the more honest summary; both are reported.

Example:
```python
paired_difference([0.74, 0.71, 0.75], [0.70, 0.72, 0.70])
# {"n": 3, "differences": [...], "mean": 0.0267, "ci95": [...], "wins": 2, "ties": 0, "losses": 1, ...}
```
"""

import numpy as np

RESAMPLES = 10000
BOOTSTRAP_SEED = 0


def paired_difference(a, b, resamples=RESAMPLES, seed=BOOTSTRAP_SEED, tie=1e-12):
    """Mean, 95% percentile bootstrap interval and sign count of the per-seed differences `a - b`.

    Args:
        a, b: the two rows' scores, one per seed, in the same seed order.
        resamples: bootstrap resamples of the seeds (drawn with replacement).
        seed: the numpy seed of the resampling (fixed: the report is reproducible).
        tie: differences with absolute value at most this count as ties.

    Returns:
        `{"n", "differences", "mean", "ci95": [low, high], "wins", "ties",
        "losses", "resamples", "bootstrap_seed"}`; `ci95` is `None` for
        fewer than 2 seeds (one seed gives no interval).
    """
    a, b = np.asarray(a, dtype="float64"), np.asarray(b, dtype="float64")
    if a.shape != b.shape or a.ndim != 1 or a.size == 0:
        raise ValueError(
            f"paired_difference needs two equally long, non-empty lists of per-seed scores. "
            f"Received lengths {a.shape} and {b.shape}."
        )
    if isinstance(resamples, bool) or not isinstance(resamples, int) or resamples < 1:
        raise ValueError(f"`resamples` must be a positive integer. Received: {resamples!r}")
    differences = a - b
    interval = None
    if differences.size > 1:
        rng = np.random.default_rng(seed)
        picks = rng.integers(0, differences.size, size=(resamples, differences.size))
        means = differences[picks].mean(axis=1)
        interval = [float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))]
    return {
        "n": int(differences.size),
        "differences": [float(d) for d in differences],
        "mean": float(differences.mean()),
        "ci95": interval,
        "wins": int((differences > tie).sum()),
        "ties": int((np.abs(differences) <= tie).sum()),
        "losses": int((differences < -tie).sum()),
        "resamples": resamples,
        "bootstrap_seed": seed,
    }
