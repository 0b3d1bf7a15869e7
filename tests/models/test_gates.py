"""The gate arithmetic: activation forms, the hand-written backward, the compiled kernels."""

import pytest
import torch

from linecube.models.gates import (
    GateInputs,
    exp2_sigmoid,
    exp2_tanh,
    fused_pointwise,
    lstm_pointwise,
    lstm_pointwise_backward,
    lstm_pointwise_with_derivatives,
    sigmoid_tanh,
)


def test_sigmoid_tanh_matches_tanh_with_finite_gradients_at_extremes():
    x = torch.linspace(-30, 30, 60001, dtype=torch.float32)
    assert float((sigmoid_tanh(x) - torch.tanh(x)).abs().max()) < 1e-6
    big = torch.tensor([-1e4, -100.0, 0.0, 100.0, 1e4], requires_grad=True)
    y = sigmoid_tanh(big)
    (grad,) = torch.autograd.grad(y.sum(), big)
    torch.testing.assert_close(y, torch.tensor([-1.0, -1.0, 0.0, 1.0, 1.0]))
    torch.testing.assert_close(grad, torch.tensor([0.0, 0.0, 1.0, 0.0, 0.0]))


def test_exp2_forms_match_sigmoid_and_tanh_and_saturate_at_extremes():
    x = torch.linspace(-30, 30, 60001, dtype=torch.float32)
    assert float((exp2_sigmoid(x) - torch.sigmoid(x)).abs().max()) < 1e-6
    assert float((exp2_tanh(x) - torch.tanh(x)).abs().max()) < 1e-6
    big = torch.tensor([-1e4, -100.0, 0.0, 100.0, 1e4])
    torch.testing.assert_close(exp2_sigmoid(big), torch.tensor([0.0, 0.0, 0.5, 1.0, 1.0]))
    torch.testing.assert_close(exp2_tanh(big), torch.tensor([-1.0, -1.0, 0.0, 1.0, 1.0]))


@pytest.mark.slow
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_fused_gates_have_finite_gradients_at_saturated_pre_activations(dtype):
    """The exp2 forms' autograd derivative is NaN at -1e4: training kernels must not use it
    where the compiler derives the backward (float32), and the hand-written one (bf16) is exact."""
    torch.manual_seed(11)
    values = torch.tensor([-1e4, -30.0, -1.0, 0.0, 1.0, 30.0, 1e4, 0.5])
    gates = values[torch.randint(0, 8, (2, 8, 3, 3))]
    x_gates = torch.randn(2, 8, 3, 3)
    c = torch.randn(2, 2, 3, 3)
    weights = torch.randn(2, 2, 3, 3)
    grads = []
    for fn in (lstm_pointwise, fused_pointwise):
        inputs = [t.clone().requires_grad_() for t in (gates, c, x_gates)]
        g, c0, xg = inputs
        h, c1 = fn(GateInputs(g.to(dtype), c0, x_gates=xg.to(dtype)))
        loss = (h.float() * weights).sum() + c1.square().sum()
        grads.append(torch.autograd.grad(loss, inputs))
    for g_eager, g_fused in zip(*grads, strict=True):
        assert torch.isfinite(g_fused).all()
        tol = 1e-5 if dtype == torch.float32 else 0.02
        torch.testing.assert_close(g_fused, g_eager, atol=tol, rtol=tol)


@pytest.mark.parametrize("peephole", [False, True])
@pytest.mark.parametrize("used", ["h and c", "h", "c"])
def test_written_out_backward_equals_autograd_through_the_arithmetic(peephole, used):
    """float64, eager: the gradients of gates, c, the peepholes and a broadcast x_gates (a
    bias, reduced by the caller) against autograd; an unused output's gradient is None."""
    gen = torch.Generator().manual_seed(12)

    def rand(*shape):
        return torch.randn(*shape, generator=gen, dtype=torch.float64)

    f = 3
    inputs = GateInputs(rand(2, 4 * f, 4, 5), rand(2, f, 4, 5),
                        *((rand(f, 4, 5) for _ in range(3)) if peephole else (None,) * 3),
                        rand(1, 4 * f, 1, 1))
    leaves = GateInputs(*(None if t is None else t.clone().requires_grad_() for t in inputs))
    h, c = lstm_pointwise(leaves)
    dh = rand(*h.shape) if "h" in used else None
    dc = rand(*c.shape) if "c" in used else None
    outputs, grads = zip(*((o, g) for o, g in ((h, dh), (c, dc)) if g is not None), strict=True)
    torch.autograd.backward(outputs, grads)

    h2, c2, q = lstm_pointwise_with_derivatives(inputs)
    torch.testing.assert_close(h2, h.detach(), rtol=0, atol=1e-15)
    torch.testing.assert_close(c2, c.detach(), rtol=0, atol=1e-15)
    d_gates, d_c, *d_w = lstm_pointwise_backward(inputs, q, h2, dh, dc)
    torch.testing.assert_close(d_gates, leaves.gates.grad)
    torch.testing.assert_close(d_gates.sum((0, 2, 3), keepdim=True), leaves.x_gates.grad)
    torch.testing.assert_close(d_c, leaves.c.grad)
    if peephole:
        for got, leaf in zip(d_w, (leaves.w_ci, leaves.w_cf, leaves.w_co), strict=True):
            # w_co reaches only h: without dh, autograd leaves its gradient None, here zeros
            want = torch.zeros_like(leaf) if leaf.grad is None else leaf.grad
            torch.testing.assert_close(got, want)
    else:
        assert d_w == [None, None, None]


def test_gate_inputs_default_to_no_peepholes_and_no_input_term():
    gates, c = torch.zeros(1, 8, 2, 2), torch.ones(1, 2, 2, 2)
    inputs = GateInputs(gates, c)
    assert inputs.w_ci is inputs.w_cf is inputs.w_co is inputs.x_gates is None
    h, c_new = lstm_pointwise(inputs)
    # all pre-activations 0: i = f = o = 1/2, g = 0, so c halves and h = tanh(c) / 2
    torch.testing.assert_close(c_new, c / 2)
    torch.testing.assert_close(h, torch.tanh(c / 2) / 2)
