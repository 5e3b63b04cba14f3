"""Benchmark: EmbeddingProjection against the matmul limit, the naive argmax and faiss.

Prints one JSON object. For every vocabulary size it times, in one run:

- `matmul`: the bare `[N, H] x [H, V]` product of normalised vectors, the
  floor any exact projection pays (it does not even pick the best token);
- `naive`: the full `[N, V]` similarity matrix, then argmax;
- `projection`: `augpro_keras.layers.EmbeddingProjection` (cosine, chunked);
- `faiss`: `faiss.IndexFlatIP` with k = 1 on normalised vectors, if installed.

Each method runs in a fresh subprocess so that its peak memory (the growth
of the process's maximum resident set during the timed calls) is its own.
Times are medians over `--repeats` calls after a warm-up call.

Usage:
    python benchmarks/projection.py                      # full size
    python benchmarks/projection.py --queries 64 --hidden 32 --vocabularies 1000 --repeats 2
"""

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

METHODS = ("matmul", "naive", "projection", "faiss")


def peak_rss_bytes():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def run_method(method, queries, hidden, vocabulary, repeats, chunk_size, seed):
    """Runs one method in this process; returns its measurements."""
    import numpy as np

    rng = np.random.default_rng(seed)
    table = rng.normal(size=(vocabulary, hidden)).astype("float32")
    embeddings = rng.normal(size=(queries, hidden)).astype("float32")

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

    else:
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

        # Trace without running, so that the baseline below holds everything
        # but the work of the call itself.
        concrete = fn.get_concrete_function(embeddings_t, table_t)

        def call():
            # No `.numpy()`: copying the matmul's [N, V] result out would be
            # charged to it alone. Eager CPU execution is synchronous.
            return concrete(embeddings_t, table_t)

    baseline = peak_rss_bytes()
    call()  # warm-up: first allocations
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    flops = 2.0 * queries * vocabulary * hidden
    return {
        "median_seconds": median,
        "seconds": times,
        "gflops_per_second": flops / median / 1e9,
        "peak_extra_memory_bytes": max(0, peak_rss_bytes() - baseline),
    }


def measure(method, args, vocabulary):
    command = [
        sys.executable, __file__, "--child", method, "--queries", str(args.queries),
        "--hidden", str(args.hidden), "--vocabularies", str(vocabulary),
        "--repeats", str(args.repeats), "--chunk-size", str(args.chunk_size), "--seed", str(args.seed),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queries", type=int, default=2048, help="query positions (B * L)")
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--vocabularies", type=int, nargs="+", default=[32128, 256000])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--chunk-size", type=int, default=4096)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--child", choices=METHODS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        result = run_method(
            args.child, args.queries, args.hidden, args.vocabularies[0], args.repeats, args.chunk_size, args.seed
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
        results = {method: measure(method, args, vocabulary) for method in METHODS}
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
