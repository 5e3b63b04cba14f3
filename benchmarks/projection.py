"""Benchmark: EmbeddingProjection against the matmul limit, the naive argmax and faiss.

Prints one JSON object. For every vocabulary size it times, in one run:

- `matmul`: the bare `[N, H] x [H, V]` product of normalised vectors, the
  floor any exact projection pays (it does not even pick the best token);
- `naive`: the full `[N, V]` similarity matrix, then argmax;
- `projection`: `augpro_keras.layers.EmbeddingProjection` (cosine, chunked);
- `faiss`: `faiss.IndexFlatIP` with k = 1 on normalised vectors, if installed.

Times are medians over `--repeats` calls after a warm-up call, taken in one
process with the methods taking turns call by call (the order rotates each
round), so that a change of machine load reaches every method alike. Peak
memory is measured apart: each method runs twice in a fresh subprocess, and
its peak extra memory is the growth of that process's maximum resident set
during the calls.

Usage:
    python benchmarks/projection.py                      # full size
    python benchmarks/projection.py --queries 64 --hidden 32 --vocabularies 1000 --repeats 2
    python benchmarks/projection.py --markdown docs/benchmarks/projection.json
"""

import argparse
import gc
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

METHODS = ("matmul", "naive", "projection", "faiss")


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


def build_call(method, queries, hidden, vocabulary, chunk_size, seed):
    """Returns a function that runs one method once, or a dict saying why not."""
    import numpy as np

    rng = np.random.default_rng(seed)
    table = rng.standard_normal((vocabulary, hidden), dtype="float32")
    embeddings = rng.standard_normal((queries, hidden), dtype="float32")

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

    else:
        layer = EmbeddingProjection("cosine", chunk_size=chunk_size)

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


def measure_memory(method, queries, hidden, vocabulary, chunk_size, seed):
    """Peak extra memory of two calls of one method (run in a fresh process)."""
    call = build_call(method, queries, hidden, vocabulary, chunk_size, seed)
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
        "--chunk-size", str(args.chunk_size), "--seed", str(args.seed),
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
    calls = {m: build_call(m, args.queries, args.hidden, vocabulary, args.chunk_size, args.seed)
             for m in METHODS}
    ready = {m: call for m, call in calls.items() if not isinstance(call, dict)}
    for call in ready.values():
        call()  # warm-up: first allocations
    times = time_in_turns(ready, args.repeats)
    flops = 2.0 * args.queries * vocabulary * args.hidden
    results = {m: calls[m] for m in METHODS if m not in ready}
    for method in ready:
        median = statistics.median(times[method])
        results[method] = {"median_seconds": median, "seconds": times[method],
                           "gflops_per_second": flops / median / 1e9}
    return results


def render_markdown(report):
    """Markdown tables of a saved report: times and memory, then the ratios."""
    lines = ["| vocabulary | method | median s | GFLOP/s | peak extra MiB |",
             "| --- | --- | --- | --- | --- |"]
    for vocabulary, result in report["results"].items():
        for method in METHODS:
            row = result[method]
            if "median_seconds" not in row:
                lines.append(f"| {vocabulary} | {method} | {row} | | |")
                continue
            lines.append(f"| {vocabulary} | {method} | {row['median_seconds']:.3f} | "
                         f"{row['gflops_per_second']:.0f} | "
                         f"{row.get('peak_extra_memory_bytes', 0) / 2**20:.0f} |")
    lines += ["", "| vocabulary | projection / matmul FLOP rate | naive / matmul | faiss / matmul "
              "| projection memory / full similarity matrix |", "| --- | --- | --- | --- | --- |"]
    for vocabulary, result in report["results"].items():
        ratios = result["ratios"]
        cells = [ratios.get(f"{m}_flop_rate_vs_matmul") for m in ("projection", "naive", "faiss")]
        cells.append(ratios.get("projection_memory_vs_full_matrix"))
        lines.append(f"| {vocabulary} | " + " | ".join(
            "n/a" if c is None else f"{c:.3f}" for c in cells) + " |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queries", type=int, default=2048, help="query positions (B * L)")
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--vocabularies", type=int, nargs="+", default=[32128, 256000])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--chunk-size", type=int, default=4096)
    parser.add_argument("--seed", type=int, default=0)
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
            args.child, args.queries, args.hidden, args.vocabularies[0], args.chunk_size, args.seed
        )
        print(json.dumps(result))
        return

    report = {
        "benchmark": "projection",
        "command": " ".join([os.path.basename(sys.executable), *sys.argv]),
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "cpus": os.cpu_count()},
        "queries": args.queries,
        "hidden": args.hidden,
        "chunk_size": args.chunk_size,
        "repeats": args.repeats,
        "results": {},
    }
    for vocabulary in args.vocabularies:
        memory = {method: memory_in_subprocess(method, args, vocabulary) for method in METHODS}
        results = time_interleaved(args, vocabulary)
        for method in METHODS:
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
        report["results"][str(vocabulary)] = {**results, "ratios": ratios}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
