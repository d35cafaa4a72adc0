"""The paper's baseline U-Net (its Table 2, row 1) as a PyTorch module, and the fixtures that tie it to Swift.

The module tree is the one `ModelGraph.unetBaseline` (Sources/QuantEngine/Graph.swift) documents, so
its state-dict names are the checkpoint names our engine and trainer use:

    enc.N.{0,1,3,4}.*   N = 0..3: DoubleConv 3->64, 64->128, 128->256, 256->512, each followed by MaxPool2d(2)
    bott.{0,1,3,4}.*    DoubleConv 512->1024
    dec.i.up.*          ConvTranspose2d(2c, c, 2, stride=2) with bias, c = 512, 256, 128, 64 (dec.0 deepest)
    dec.i.conv.*        DoubleConv(2c, c) on cat([skip, up])
    final.*             Conv2d(64, 1, 1) with bias
    DoubleConv = Sequential(Conv2d(3x3, pad 1, no bias), BatchNorm2d, ReLU, Conv2d(3x3, pad 1, no bias), BatchNorm2d, ReLU)

31,037,633 parameters.

Usage (the peer environment, scripts/peers/setup.sh):

    # fixtures/forward_baseline.safetensors: formula weights (below), a small input, PyTorch's logits
    /work/peer/venv/bin/python scripts/peers/unet_baseline.py fixture

    # a float32 checkpoint with PyTorch's default random init (for latency; 124 MB, keep it out of the repo);
    # --formula: the formula weights below instead (logits that vary, for scripts/peers/check_forward.py)
    /work/peer/venv/bin/python scripts/peers/unet_baseline.py random --out .build/peers/unet_baseline_random.safetensors

    # ONNX float32 export of a checkpoint (the ONNX Runtime peer for latency)
    /work/peer/venv/bin/python scripts/peers/unet_baseline.py onnx --checkpoint CKPT --out .build/peers/unet_baseline_fp32.onnx

Formula weights (so the fixture need not hold 31M numbers; Tests/QuantEngineTests/BaselineForwardTests.swift
computes the same values): tensor t (its index in state-dict order, without num_batches_tracked; equal to
`ModelGraph.unetBaseline().expectedTensorShapes` order), element k (row-major). Integer arithmetic, so
Swift reproduces it bit for bit:

    x = (k + 0x9E3779B9 * (t + 1)) mod 2^32, then Wellons' lowbias32 hash:
        x ^= x >> 16; x = x * 0x7FEB352D mod 2^32; x ^= x >> 15; x = x * 0x846CA68B mod 2^32; x ^= x >> 16
    s = 2 * x / 2^32 - 1                              (uniform in [-1, 1), exact in float64)
    conv weight             sqrt(6 / fan_in) * s      fan_in = in * kh * kw (Conv2d), in (ConvTranspose2d, kernel == stride)
    conv bias (up, final)   0.1 * s
    BatchNorm weight        1 + 0.2 * s
    BatchNorm bias          0.1 * s
    BatchNorm running_mean  0.1 * s
    BatchNorm running_var   0.75 + 0.25 * s           (in [0.5, 1]: positive)
each computed in float64 and rounded to float32.
"""
import argparse, math, os, sys
import numpy as np
import torch
import torch.nn as nn



def formula_uniform(t, count):
    """s for elements 0..<count of tensor t (module docstring)."""
    mask = np.uint64(0xFFFFFFFF)
    x = (np.arange(count, dtype=np.uint64) + np.uint64(0x9E3779B9 * (t + 1))) & mask
    x ^= x >> np.uint64(16)
    x = (x * np.uint64(0x7FEB352D)) & mask
    x ^= x >> np.uint64(15)
    x = (x * np.uint64(0x846CA68B)) & mask
    x ^= x >> np.uint64(16)
    return 2 * x.astype(np.float64) / 2.0**32 - 1


def double_conv(cin, cout):
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class Up(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.up = nn.ConvTranspose2d(2 * c, c, 2, stride=2)
        self.conv = double_conv(2 * c, c)

    def forward(self, x, skip):
        return self.conv(torch.cat([skip, self.up(x)], dim=1))


class UNetBaseline(nn.Module):
    def __init__(self, in_channels=3, features=(64, 128, 256, 512)):
        super().__init__()
        channels = [in_channels] + list(features)
        self.enc = nn.ModuleList(double_conv(channels[i], channels[i + 1]) for i in range(len(features)))
        self.pool = nn.MaxPool2d(2)
        self.bott = double_conv(features[-1], 2 * features[-1])
        self.dec = nn.ModuleList(Up(c) for c in reversed(features))
        self.final = nn.Conv2d(features[0], 1, 1)

    def forward(self, x):
        skips = []
        for block in self.enc:
            x = block(x)
            skips.append(x)
            x = self.pool(x)
        x = self.bott(x)
        for up, skip in zip(self.dec, reversed(skips)):
            x = up(x, skip)
        return self.final(x)


def parameter_count(model):
    return sum(p.numel() for p in model.parameters())


def formula_state(model):
    """The formula weights (module docstring), by state-dict name, float32."""
    state = {}
    names = [n for n in model.state_dict() if not n.endswith("num_batches_tracked")]
    modules = dict(model.named_modules())
    for t, name in enumerate(names):
        shape = tuple(model.state_dict()[name].shape)
        s = formula_uniform(t, int(np.prod(shape)))
        module = modules[name.rsplit(".", 1)[0]]
        suffix = name.rsplit(".", 1)[1]
        if isinstance(module, nn.BatchNorm2d):
            v = {"weight": 1 + 0.2 * s, "bias": 0.1 * s, "running_mean": 0.1 * s, "running_var": 0.75 + 0.25 * s}[suffix]
        elif suffix == "bias":
            v = 0.1 * s
        else:
            fan_in = shape[0] if isinstance(module, nn.ConvTranspose2d) else shape[1] * shape[2] * shape[3]
            v = math.sqrt(6 / fan_in) * s
        state[name] = torch.from_numpy(v.astype(np.float32).reshape(shape))
    return names, state


def check_structure(model):
    count = parameter_count(model)
    assert count == 31_037_633, count
    return count


def make_fixture(args):
    from safetensors.torch import save_file
    from PIL import Image
    model = UNetBaseline().eval()
    count = check_structure(model)
    names, state = formula_state(model)
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert all(k.endswith("num_batches_tracked") for k in missing) and not unexpected, (missing, unexpected)
    out = {}
    for (frame, w, h) in [("020_HC", 48, 32), ("208_HC", 32, 64)]:
        image = Image.open(f"fixtures/hc18/training_set/{frame}.png").convert("L").resize((w, h), Image.BILINEAR)
        x = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0)[None, None].repeat(1, 3, 1, 1)
        with torch.no_grad():
            y = model(x)
        out[f"input_{w}x{h}"] = x.contiguous()
        out[f"logits_{w}x{h}"] = y.contiguous()
        print(f"{w}x{h}: logits in [{y.min():.3f}, {y.max():.3f}], mean {y.mean():.3f}, std {y.std():.3f}")
    shapes = ";".join(f"{n}:{'x'.join(str(d) for d in state[n].shape)}" for n in names)
    save_file(out, args.out, metadata={"model": "scripts/peers/unet_baseline.py formula weights", "mode": "eval",
                                       "parameters": str(count), "state_dict": shapes})
    print(f"wrote {args.out} ({os.path.getsize(args.out)} bytes); {count} parameters, {len(names)} tensors")


def make_random(args):
    from safetensors.torch import save_file
    torch.manual_seed(args.seed)
    model = UNetBaseline().eval()
    check_structure(model)
    if args.formula:
        state = formula_state(model)[1]
    else:
        state = {k: v.contiguous() for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    save_file(state, args.out, metadata={"sonoquant.format": "float-checkpoint", "sonoquant.architecture": "unet-baseline",
                                         "sonoquant.strategy": "formula-weights" if args.formula else f"random-init-seed{args.seed}"})
    print(f"wrote {args.out} ({os.path.getsize(args.out) / 1e6:.1f} MB)")


def load_model(checkpoint):
    from safetensors.torch import load_file
    model = UNetBaseline()
    state = {k: v.float() for k, v in load_file(checkpoint).items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert all(k.endswith("num_batches_tracked") for k in missing), missing
    assert not unexpected, unexpected
    return model.eval()


def export_onnx(args):
    import warnings
    model = load_model(args.checkpoint)
    x = torch.rand(1, 3, args.height, args.width)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    torch.onnx.export(model, x, args.out, input_names=["input"], output_names=["logits"], opset_version=17, dynamo=False)
    import onnxruntime as ort
    session = ort.InferenceSession(args.out, providers=["CPUExecutionProvider"])
    ours = session.run(None, {"input": x.numpy()})[0]
    with torch.no_grad():
        reference = model(x).numpy()
    print(f"wrote {args.out} ({os.path.getsize(args.out) / 1e6:.1f} MB); max |ORT - PyTorch| = {np.abs(ours - reference).max():.2e}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("fixture")
    p.add_argument("--out", default="fixtures/forward_baseline.safetensors")
    p = sub.add_parser("random")
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--formula", action="store_true", help="the formula weights instead of PyTorch's random init")
    p = sub.add_parser("onnx")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--width", type=int, default=192)
    p.add_argument("--height", type=int, default=128)
    args = parser.parse_args()
    {"fixture": make_fixture, "random": make_random, "onnx": export_onnx}[args.command](args)


if __name__ == "__main__":
    main()
