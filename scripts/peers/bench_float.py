"""Float32 latency of the peers on one frame: ONNX Runtime (CPU) or PyTorch (CPU), batch 1.

    /work/peer/venv/bin/python scripts/peers/bench_float.py --engine ort --onnx .build/peers/dall_fp32.onnx --threads 1
    /work/peer/venv/bin/python scripts/peers/bench_float.py --engine torch --checkpoint fixtures/pytorch_D-all_192x128.safetensors --threads 2

Same protocol as `sonoquant latency`: a fixed 1x3xHxW input in [0, 1], `--warmup` untimed runs, then
`--runs` timed runs of one forward pass each; prints the median, 10th and 90th percentile and the fastest
run in ms, and the process CPU time per run (all threads).
ONNX Runtime: intra-op threads = --threads, inter-op 1, sequential execution, all graph optimizations.
PyTorch: torch.set_num_threads(--threads), inference mode, eval.
"""
import argparse, time
import numpy as np


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engine", choices=["ort", "torch"], required=True)
    parser.add_argument("--onnx", default=".build/peers/dall_fp32.onnx")
    parser.add_argument("--checkpoint", default="fixtures/pytorch_D-all_192x128.safetensors")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--width", type=int, default=192)
    parser.add_argument("--height", type=int, default=128)
    args = parser.parse_args()
    x = np.random.default_rng(0).random((1, 3, args.height, args.width), dtype=np.float32)

    if args.engine == "ort":
        import onnxruntime as ort
        options = ort.SessionOptions()
        options.intra_op_num_threads = args.threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        session = ort.InferenceSession(args.onnx, options, providers=["CPUExecutionProvider"])
        run = lambda: session.run(None, {"input": x})
        label = f"onnxruntime {ort.__version__}"
    else:
        import torch
        from export_onnx import load_model
        torch.set_num_threads(args.threads)
        model = load_model(args.checkpoint)
        tx = torch.from_numpy(x)
        def run():
            with torch.inference_mode():
                return model(tx)
        label = f"pytorch {torch.__version__}"

    for _ in range(args.warmup):
        run()
    samples = []
    cpu_start = time.process_time()
    for _ in range(args.runs):
        start = time.perf_counter()
        run()
        samples.append((time.perf_counter() - start) * 1e3)
    cpu_ms = (time.process_time() - cpu_start) * 1e3 / args.runs
    s = np.array(samples)
    print(f"{label} {args.width}x{args.height} C=3 threads={args.threads}: median {np.median(s):.2f} ms "
          f"(p10 {np.percentile(s, 10):.2f}, p90 {np.percentile(s, 90):.2f}, min {s.min():.2f}) over {len(s)} runs; "
          f"cpu {cpu_ms:.2f} ms/run")


if __name__ == "__main__":
    main()
