"""Check `sonoquant forward` against PyTorch on any checkpoint (unet-mobilenet_v2 or unet-baseline) and size: the issue's criterion
max |logit - PyTorch| <= 1e-3 * (1 + max |PyTorch|), on a random input in [0, 1] (seeded).

    /work/peer/venv/bin/python scripts/peers/check_forward.py --sonoquant .build/release/sonoquant \
        --checkpoint ../shared/reference/pytorch_full-ft_192x128.safetensors --size 192x128 --size 512x512
"""
import argparse, os, subprocess, tempfile
import torch
from safetensors.torch import save_file, load_file
from safetensors import safe_open
import export_onnx, unet_baseline


def load_model(checkpoint):
    """smp's Unet("mobilenet_v2") or the baseline U-Net (scripts/peers/unet_baseline.py), by tensor names."""
    with safe_open(checkpoint, "pt") as f:
        baseline = "enc.0.0.weight" in f.keys()
    return (unet_baseline if baseline else export_onnx).load_model(checkpoint)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sonoquant", default=".build/release/sonoquant")
    parser.add_argument("--checkpoint", action="append", required=True)
    parser.add_argument("--size", action="append", default=None, help="WxH, repeatable (default 192x128)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        for checkpoint in args.checkpoint:
            model = load_model(checkpoint)
            for size in args.size or ["192x128"]:
                w, h = map(int, size.split("x"))
                x = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(args.seed))
                with torch.no_grad():
                    reference = model(x)
                save_file({"input": x}, os.path.join(tmp, "in.safetensors"))
                subprocess.run([args.sonoquant, "forward", "--model", checkpoint, "--input", os.path.join(tmp, "in.safetensors"),
                                "--output", os.path.join(tmp, "out.safetensors")], check=True, capture_output=True)
                ours = load_file(os.path.join(tmp, "out.safetensors"))["logits"]
                error = (ours - reference).abs().max().item()
                tolerance = 1e-3 * (1 + reference.abs().max().item())
                ok = error <= tolerance
                failures += not ok
                print(f"{os.path.basename(checkpoint)} {size}: max |ours - PyTorch| = {error:.2e}, "
                      f"tolerance {tolerance:.2e}, max |PyTorch| = {reference.abs().max().item():.1f}: {'ok' if ok else 'FAIL'}")
    raise SystemExit(1 if failures else 0)


if __name__ == "__main__":
    main()
