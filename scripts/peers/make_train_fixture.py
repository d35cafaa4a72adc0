"""Make fixtures/train_step_fixture.safetensors: one PyTorch training step (train mode, full-ft) of the
bundled D-all checkpoint on two real fixture frames, for the trainer's gradient check without ../shared.

Run with the peer environment:
    /work/peer/venv/bin/python scripts/peers/make_train_fixture.py

The step is computed in float64 (model.double()) and stored as float32: the reference is the exact
gradient, so the check measures only our float32 error. (A float32 PyTorch step is itself noisy on deep
layers; the script prints how far PyTorch float32 is from float64 for each stored tensor.)
Input [2, 3, 64, 96]: frames 020_HC and 208_HC squashed to 96x64 (PIL bilinear), gray replicated to RGB,
in [0, 1]. Target: the model's own eval-mode mask shifted by 3 pixels right and 2 down, so the gradient is
realistic (neither zero nor saturated). Stored: input, target, logits, loss, grad.<name> for a
representative subset (head, decoder blocks 4 and 3, encoder features.0/1, a stride-2 and a stride-1
depthwise conv with their BatchNorms, a 1/32-scale depthwise conv) and after.<bn>.running_{mean,var}
for every BatchNorm of that subset (momentum 0.1, unbiased variance).
"""
import numpy as np
import torch
import segmentation_models_pytorch as smp
from PIL import Image
from safetensors.torch import load_file, save_file

state = {k: v.float() for k, v in load_file("fixtures/pytorch_D-all_192x128.safetensors").items()}
frames = []
for name in ["020_HC", "208_HC"]:
    im = Image.open(f"fixtures/hc18/training_set/{name}.png").convert("L").resize((96, 64), Image.BILINEAR)
    frames.append(torch.from_numpy(np.asarray(im, dtype=np.float32) / 255.0)[None].repeat(3, 1, 1))
x = torch.stack(frames)

def model_in(dtype):
    m = smp.Unet("mobilenet_v2", encoder_weights=None, classes=1, activation=None)
    m.load_state_dict(state, strict=False)
    return m.to(dtype)

with torch.no_grad():
    m = model_in(torch.float64).eval()
    target = (m(x.double()) > 0).double().roll(shifts=(2, 3), dims=(2, 3))

subset_convs = ["segmentation_head.0", "decoder.blocks.4.conv1.0", "decoder.blocks.4.conv2.0", "decoder.blocks.3.conv2.0",
                "encoder.features.0.0", "encoder.features.1.conv.0.0", "encoder.features.1.conv.1",
                "encoder.features.2.conv.1.0", "encoder.features.3.conv.1.0", "encoder.features.16.conv.1.0"]
subset_bns = ["decoder.blocks.4.conv1.1", "decoder.blocks.4.conv2.1", "decoder.blocks.3.conv2.1", "decoder.blocks.3.conv1.1",
              "encoder.features.0.1", "encoder.features.1.conv.0.1", "encoder.features.1.conv.2",
              "encoder.features.2.conv.1.1", "encoder.features.3.conv.1.1", "encoder.features.16.conv.1.1"]

def step(dtype):
    m = model_in(dtype).train()
    logits = m(x.to(dtype))
    loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, target.to(dtype))
    loss.backward()
    grads = {n: p.grad.detach() for n, p in m.named_parameters()}
    stats = {n: b.detach() for n, b in m.named_buffers()}
    return logits.detach(), loss.detach(), grads, stats

logits, loss, grads, stats = step(torch.float64)
_, _, grads32, _ = step(torch.float32)
out = {"input": x.contiguous(), "target": target.float().contiguous(), "logits": logits.float().contiguous(),
       "loss": loss.float().reshape(1)}
names = [n for n in grads if any(n.startswith(p + ".") for p in subset_convs + subset_bns)]
for n in names:
    out["grad." + n] = grads[n].float().contiguous()
    err = ((grads32[n].double() - grads[n]).norm() / grads[n].norm()).item()
    print(f"{n:45s} {tuple(grads[n].shape)!s:18s} PyTorch float32 vs float64: {err:.2e}")
for bn in subset_bns:
    for s in ["running_mean", "running_var"]:
        out[f"after.{bn}.{s}"] = stats[f"{bn}.{s}"].float().contiguous()
save_file(out, "fixtures/train_step_fixture.safetensors",
          metadata={"model": "fixtures/pytorch_D-all_192x128.safetensors", "mode": "train", "precision": "float64 stored as float32"})
print("loss", loss.item(), "tensors", len(out))
