"""PyTorch CPU training speed of the same U-Net, for scripts/bench-train.sh.

    /work/peer/venv/bin/python scripts/peers/bench_train.py --threads 2 --steps 5 --size 192x128 --batch 10 [--strategy full-ft|D-all|unet-baseline]

Model: smp.Unet("mobilenet_v2", classes=1), train mode; full-ft trains every parameter, D-all freezes the
encoder (requires_grad False, so autograd does not backpropagate into it). unet-baseline: the paper's plain
U-Net (scripts/peers/unet_baseline.py, 31,037,633 parameters, PyTorch's default init), every parameter trained. Adam lr 1e-4, BCE-with-logits,
synthetic frames (uniform [0,1], RGB) and a random binary target, as `sonoquant train-speed`.
One warm-up step, then the median step time and the process CPU time per step (all threads). Prints one line: `pytorch <strategy> ... median step S s = R images/s`.
"""
import argparse, os, sys, time, statistics
import torch
import segmentation_models_pytorch as smp
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from unet_baseline import UNetBaseline

p = argparse.ArgumentParser()
p.add_argument("--threads", type=int, default=2)
p.add_argument("--steps", type=int, default=5)
p.add_argument("--size", default="192x128")
p.add_argument("--batch", type=int, default=10)
p.add_argument("--strategy", default="full-ft", choices=["full-ft", "D-all", "unet-baseline"])
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(0)
w, h = map(int, a.size.split("x"))
if a.strategy == "unet-baseline":
    model = UNetBaseline().train()
else:
    model = smp.Unet("mobilenet_v2", encoder_weights=None, classes=1, activation=None).train()
if a.strategy == "D-all":
    for q in model.encoder.parameters():
        q.requires_grad = False
opt = torch.optim.Adam([q for q in model.parameters() if q.requires_grad], lr=1e-4)
x = torch.rand(a.batch, 3, h, w)
t = (torch.rand(a.batch, 1, h, w) < 0.3).float()
times = []
for step in range(a.steps + 1):
    if step == 1:
        cpu_start = time.process_time()
    start = time.perf_counter()
    opt.zero_grad(set_to_none=True)
    loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x), t)
    loss.backward()
    opt.step()
    if step > 0:
        times.append(time.perf_counter() - start)
cpu = (time.process_time() - cpu_start) / a.steps
m = statistics.median(times)
print(f"pytorch {a.strategy} {w}x{h} batch {a.batch} threads {a.threads}: median step {m:.3f} s = {a.batch / m:.2f} images/s "
      f"({a.steps} steps after 1 warm-up; min {min(times):.3f} s; CPU {cpu:.3f} s/step all threads; torch {torch.__version__})")
