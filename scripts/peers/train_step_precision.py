"""How precise is ../shared/reference/train_step.safetensors? Recomputes that step with PyTorch in float32
and in float64 (the exact answer up to rounding) and prints, per tensor, how far float32 PyTorch (the stored
reference and a fresh run) is from float64. On the random-weight model the backward is ill-conditioned
(BatchNorm over tiny deep feature maps, saturated logits): float32 gradients of the deep layers are ~1-2%
off the exact ones whoever computes them, so a 1e-3 gate against a float32 reference cannot hold there.

    /work/peer/venv/bin/python scripts/peers/train_step_precision.py [--save-float64 OUT.safetensors]
"""
import sys
import torch
import segmentation_models_pytorch as smp
from safetensors.torch import load_file, save_file

ref = load_file("../shared/reference/train_step.safetensors")
sd = load_file("../shared/reference/unet_random_seed1.safetensors")

def run(dtype):
    m = smp.Unet("mobilenet_v2", encoder_weights=None, classes=1, activation=None)
    m.load_state_dict(sd, strict=False)
    m = m.to(dtype).train()
    out = m(ref["input"].to(dtype))
    loss = torch.nn.functional.binary_cross_entropy_with_logits(out, ref["target"].to(dtype))
    loss.backward()
    return loss.item(), {n: p.grad.detach() for n, p in m.named_parameters()}, {n: b.detach() for n, b in m.named_buffers()}

l32, g32, s32 = run(torch.float32)
l64, g64, s64 = run(torch.float64)
print(f"loss: stored {ref['loss'].item():.9f}  float32 rerun {l32:.9f}  float64 {l64:.9f}")
rel = lambda a, b: ((a.double() - b).norm() / b.norm().clamp_min(1e-30)).item()
worst_ref = worst_run = 0.0
for n in g64:
    if g64[n].norm() < 1e-6:  # mathematically zero (a BatchNorm bias feeding straight into another BatchNorm)
        continue
    e_ref, e_run = rel(ref["grad." + n], g64[n]), rel(g32[n], g64[n])
    worst_ref, worst_run = max(worst_ref, e_ref), max(worst_run, e_run)
    print(f"{n:45s} stored-f32 vs f64 {e_ref:.2e}   rerun-f32 vs f64 {e_run:.2e}")
print(f"worst gradient error: stored float32 reference {worst_ref:.3e}, float32 rerun {worst_run:.3e}")
worst_stat = max(((ref["after." + n].double() - s64[n]).abs() / s64[n].abs().clamp_min(1)).max().item()
                 for n in s64 if "running" in n)
print(f"worst running-statistic error of the stored reference vs float64: {worst_stat:.3e}")
if "--save-float64" in sys.argv:
    out = {"grad." + k: v.float() for k, v in g64.items()}
    out.update({"after." + k: v.float() for k, v in s64.items() if "running" in k})
    save_file(out, sys.argv[sys.argv.index("--save-float64") + 1])
