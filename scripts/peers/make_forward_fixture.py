"""Make fixtures/forward_dall.safetensors: PyTorch logits of the reference D-all model on real frames.

Run with the peer environment (scripts/peers/setup.sh):
    /work/peer/venv/bin/python scripts/peers/make_forward_fixture.py
Inputs are fixture frames squashed to WxH with PIL bilinear, gray replicated to RGB, scaled to [0, 1].
"""
import torch, segmentation_models_pytorch as smp
from safetensors.torch import load_file, save_file
from PIL import Image
import numpy as np

model = smp.Unet("mobilenet_v2", encoder_weights=None, classes=1, activation=None)
state = {k: v.float() for k, v in load_file("fixtures/pytorch_D-all_192x128.safetensors").items()}
model.load_state_dict(state, strict=False)
model.eval()
out = {}
for (name, w, h) in [("020_HC", 192, 128), ("208_HC", 160, 96), ("010_2HC", 64, 64)]:
    im = Image.open(f"fixtures/hc18/training_set/{name}.png").convert("L").resize((w, h), Image.BILINEAR)
    x = torch.from_numpy(np.asarray(im, dtype=np.float32) / 255.0)[None, None].repeat(1, 3, 1, 1)
    with torch.no_grad():
        y = model(x)
    out[f"input_{w}x{h}"] = x.contiguous()
    out[f"logits_{w}x{h}"] = y.contiguous()
save_file(out, "fixtures/forward_dall.safetensors", metadata={"model": "fixtures/pytorch_D-all_192x128.safetensors", "mode": "eval"})
print({k: tuple(v.shape) for k, v in out.items()})
