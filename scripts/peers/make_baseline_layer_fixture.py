"""Make fixtures/baseline_layers.safetensors: PyTorch's forward and backward of the two layers the baseline
U-Net adds to the trainer, for Tests/TrainTests (LayerGradientTests.testMaxPoolAndTransposedConvMatchPyTorch).

Run with the peer environment:
    /work/peer/venv/bin/python scripts/peers/make_baseline_layer_fixture.py

Computed in float64 and stored as float32, so the check measures only our float32 error.
- MaxPool2d(2) on input [2, 3, 7, 6] (odd height: the last row is dropped, as floor mode does) whose values
  are multiples of 0.5 in [-1, 1], so many windows hold ties; PyTorch's CPU kernel routes a tied window's
  gradient to its first maximum in row-major order. Stored: pool.input, pool.output, pool.grad_output,
  pool.grad_input (the backward of sum(output * grad_output)).
- ConvTranspose2d(6, 4, 2, stride=2) with bias on input [2, 6, 3, 5]; weight and bias as PyTorch initialises a
  fresh module (torch.manual_seed(0)). Stored: tconv.input, tconv.weight [6, 4, 2, 2], tconv.bias,
  tconv.output, tconv.grad_output, tconv.grad_input, tconv.grad_weight, tconv.grad_bias.
All tensors NCHW / PyTorch layout.
"""
import torch
from safetensors.torch import save_file

torch.manual_seed(0)
out = {}

x = (torch.randint(-2, 3, (2, 3, 7, 6)).double() * 0.5).requires_grad_()
y = torch.nn.functional.max_pool2d(x, 2)
g = torch.randn_like(y)
(y * g).sum().backward()
out.update({"pool.input": x.detach(), "pool.output": y.detach(), "pool.grad_output": g, "pool.grad_input": x.grad})
ties = sum(int((w == w.max()).sum() > 1) for w in x.detach()[..., :6, :].unfold(2, 2, 2).unfold(3, 2, 2).reshape(-1, 4))
print(f"max-pool: {y.numel()} windows, {ties} with a tied maximum")

conv = torch.nn.ConvTranspose2d(6, 4, 2, stride=2).double()
x = torch.randn(2, 6, 3, 5, dtype=torch.float64, requires_grad=True)
y = conv(x)
g = torch.randn_like(y)
(y * g).sum().backward()
out.update({"tconv.input": x.detach(), "tconv.weight": conv.weight.detach(), "tconv.bias": conv.bias.detach(),
            "tconv.output": y.detach(), "tconv.grad_output": g, "tconv.grad_input": x.grad,
            "tconv.grad_weight": conv.weight.grad, "tconv.grad_bias": conv.bias.grad})

save_file({k: v.float().contiguous() for k, v in out.items()}, "fixtures/baseline_layers.safetensors",
          metadata={"torch": torch.__version__, "script": "scripts/peers/make_baseline_layer_fixture.py"})
print("wrote fixtures/baseline_layers.safetensors", {k: list(v.shape) for k, v in out.items()})
