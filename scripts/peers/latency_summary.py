"""Summary table of interleaved latency runs, for scripts/bench-int8.sh and scripts/board-bench.sh.

    python3 scripts/peers/latency_summary.py LOG

LOG holds lines of `sonoquant latency` and scripts/peers/bench_float.py output, each prefixed with an engine
label (sonoquant-int8, sonoquant-int8-avx2, onnxruntime-int8, sonoquant-float, onnxruntime-fp32). Prints, per
engine and thread count, the median over rounds of each round's median wall time and of the process CPU time
per run, and the ratio ours / ONNX Runtime of the same precision (below 1: ours is faster). Standard library only.
"""
import re, statistics, sys

NAMES = {"sonoquant-int8": "sonoquant int8 (gray uint8 input)", "sonoquant-int8-avx2": "sonoquant int8, forced avx2 path",
         "onnxruntime-int8": "ONNX Runtime int8 QDQ", "sonoquant-float": "sonoquant float32 (gray input)",
         "onnxruntime-fp32": "ONNX Runtime fp32"}
PEER = {"sonoquant-int8": "onnxruntime-int8", "sonoquant-int8-avx2": "onnxruntime-int8", "sonoquant-float": "onnxruntime-fp32"}


def main(path):
    rows, cpu, paths = {}, {}, {}
    for line in open(path):
        m = re.match(r"(\S+) .*?(?:kernels=(\S+) )?threads=(\d+): median ([\d.]+) ms.*?(?:cpu ([\d.]+) ms/run)?$", line.strip())
        if not m or m.group(1) not in NAMES:
            continue
        engine, threads = m.group(1), int(m.group(3))
        if m.group(2):
            paths[engine] = m.group(2)
        rows.setdefault(engine, {}).setdefault(threads, []).append(float(m.group(4)))
        if m.group(5):
            cpu.setdefault(engine, {}).setdefault(threads, []).append(float(m.group(5)))
    counts = sorted({t for by_threads in rows.values() for t in by_threads})
    median = lambda d, t: statistics.median(d[t]) if t in d else None
    fmt = lambda v: "" if v is None else f"{v:.1f}"

    def ratio(engine, t):
        if engine not in PEER or PEER[engine] not in rows:
            return ""
        a, b = median(rows[engine], t), median(rows[PEER[engine]], t)
        return "" if a is None or b is None else f"{a / b:.2f}"

    head = ["engine", "kernels"] + [f"wall, {t} thr" for t in counts] + [f"CPU/frame, {t} thr" for t in counts] + [f"ratio, {t} thr" for t in counts]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for engine, name in NAMES.items():
        if engine not in rows:
            continue
        cells = [name, paths.get(engine, "")] + [fmt(median(rows[engine], t)) for t in counts]
        cells += [fmt(median(cpu.get(engine, {}), t)) for t in counts] + [ratio(engine, t) for t in counts]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(sys.argv[1])
