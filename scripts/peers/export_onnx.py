"""Export the D-all checkpoint to ONNX float32, as the ONNX Runtime peer of our float engine.

    /work/peer/venv/bin/python scripts/peers/export_onnx.py \
        [--checkpoint fixtures/pytorch_D-all_192x128.safetensors] [--out .build/peers/dall_fp32.onnx]

The model is segmentation_models_pytorch's Unet("mobilenet_v2", classes=1) with the checkpoint's weights
(F16 in the file, float32 in the model), eval mode. Input: batch 1, 3 channels (RGB, the PyTorch
convention; a gray frame is replicated), 128 x 192 (H x W), fixed shape; output `logits` [1, 1, 128, 192].
Also checks ONNX Runtime's logits against PyTorch's on a random input.
"""
import argparse, os, warnings
import numpy as np
import torch
import segmentation_models_pytorch as smp
from safetensors.torch import load_file


def load_model(checkpoint):
    model = smp.Unet("mobilenet_v2", encoder_weights=None, classes=1, activation=None)
    state = {k: v.float() for k, v in load_file(checkpoint).items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    # num_batches_tracked is the only thing a checkpoint may leave out.
    assert all(k.endswith("num_batches_tracked") for k in missing), missing
    assert not unexpected, unexpected
    return model.eval()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default="fixtures/pytorch_D-all_192x128.safetensors")
    parser.add_argument("--out", default=".build/peers/dall_fp32.onnx")
    parser.add_argument("--width", type=int, default=192)
    parser.add_argument("--height", type=int, default=128)
    args = parser.parse_args()
    model = load_model(args.checkpoint)
    x = torch.rand(1, 3, args.height, args.width)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    warnings.filterwarnings("ignore", category=DeprecationWarning)  # the TorchScript exporter is still supported
    torch.onnx.export(model, x, args.out, input_names=["input"], output_names=["logits"], opset_version=17,
                      dynamo=False)
    import onnxruntime as ort
    session = ort.InferenceSession(args.out, providers=["CPUExecutionProvider"])
    ours = session.run(None, {"input": x.numpy()})[0]
    with torch.no_grad():
        reference = model(x).numpy()
    print(f"wrote {args.out} ({os.path.getsize(args.out) / 1e6:.1f} MB); "
          f"max |ORT - PyTorch| = {np.abs(ours - reference).max():.2e}")


if __name__ == "__main__":
    main()
