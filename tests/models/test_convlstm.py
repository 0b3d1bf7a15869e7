import copy
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from linecube.models.convlstm import ConvLSTM, ConvLSTMCell, channels_last, per_step, time_major


def reference_scan(cell: ConvLSTMCell, x, h=None, c=None, reverse=False):
    """Plain step-by-step ConvLSTM: one convolution over [x_t, h_{t-1}], then the gates."""
    b, t, _, hh, ww = x.shape
    f = cell.hidden_channels
    h = x.new_zeros(b, f, hh, ww) if h is None else h
    c = x.new_zeros(b, f, hh, ww) if c is None else c
    weight = torch.cat([cell.weight_x, cell.weight_h], 1)
    outs = [None] * t
    for step in (range(t - 1, -1, -1) if reverse else range(t)):
        z = F.conv2d(torch.cat([x[:, step], h], 1), weight, cell.bias, padding=cell.padding)
        i, fg, g, o = z.chunk(4, 1)
        if cell.w_ci is not None:
            i, fg = i + cell.w_ci * c, fg + cell.w_cf * c
        c = torch.sigmoid(fg) * c + torch.sigmoid(i) * torch.tanh(g)
        if cell.w_co is not None:
            o = o + cell.w_co * c
        h = torch.sigmoid(o) * torch.tanh(c)
        outs[step] = h
    return torch.stack(outs, 1), (h, c)


def randomise_peepholes(layer):
    with torch.no_grad():
        for p in layer.parameters():
            if p.dim() == 3:
                p.uniform_(-0.5, 0.5)


@pytest.mark.parametrize("peephole", [False, True])
def test_shapes_and_equality_to_reference(peephole):
    torch.manual_seed(0)
    layer = ConvLSTM(3, 5, 3, peephole=peephole, size=(6, 7))
    randomise_peepholes(layer)
    x = torch.randn(2, 4, 3, 6, 7)
    out, (h, c) = layer(x)
    assert out.shape == (2, 4, 5, 6, 7) and h.shape == c.shape == (2, 5, 6, 7)
    ref, (rh, rc) = reference_scan(layer.cells[0], x)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(h, rh, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(c, rc, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out[:, -1], h)


def test_initial_state_is_used():
    torch.manual_seed(1)
    layer = ConvLSTM(2, 3, 5)
    x = torch.randn(2, 3, 2, 8, 8)
    h0, c0 = torch.randn(2, 3, 8, 8), torch.randn(2, 3, 8, 8)
    out, (h, c) = layer(x, (h0, c0))
    ref, (rh, rc) = reference_scan(layer.cells[0], x, h0, c0)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(out, layer(x)[0])


def test_repeated_input_equals_sequence_of_copies():
    torch.manual_seed(2)
    layer = ConvLSTM(4, 3, 3)
    x = torch.randn(2, 4, 5, 5)
    out, (h, c) = layer.forward_repeated(x, steps=6)
    ref, (rh, rc) = layer(x.unsqueeze(1).expand(-1, 6, -1, -1, -1))
    assert out.shape == (2, 6, 3, 5, 5)
    torch.testing.assert_close(out, ref, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(c, rc, atol=1e-6, rtol=1e-6)


def test_layer_without_input_needs_state_and_runs_on_bias():
    torch.manual_seed(3)
    layer = ConvLSTM(0, 3, 3)
    with pytest.raises(ValueError, match="initial state"):
        layer.forward_repeated(None, steps=4)
    h0 = torch.randn(2, 3, 5, 5)
    out, _ = layer.forward_repeated(None, steps=4, state=(h0, torch.zeros_like(h0)))
    cell = layer.cells[0]
    # reference: same recurrence with an input conv that sees zeros
    with torch.no_grad():
        cell.weight_x = torch.nn.Parameter(torch.zeros(12, 1, 3, 3))
    ref, _ = reference_scan(cell, torch.zeros(2, 4, 1, 5, 5), h0, torch.zeros_like(h0))
    torch.testing.assert_close(out, ref, atol=1e-6, rtol=1e-6)


def test_bidirectional_concatenates_forward_and_reversed_scans():
    torch.manual_seed(4)
    layer = ConvLSTM(2, 3, 3, bidirectional=True)
    assert layer.out_channels == 6
    x = torch.randn(2, 5, 2, 6, 6)
    out, (h, c) = layer(x)
    assert out.shape == (2, 5, 6, 6, 6) and h.shape == c.shape == (2, 6, 6, 6)
    fwd, (fh, fc) = reference_scan(layer.cells[0], x)
    bwd, (bh, bc) = reference_scan(layer.cells[1], x, reverse=True)
    torch.testing.assert_close(out, torch.cat([fwd, bwd], 2), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(h, torch.cat([fh, bh], 1), atol=1e-5, rtol=1e-5)
    # the backward direction's final state is the one after reading step 0
    torch.testing.assert_close(out[:, 0, 3:], bh, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(c, torch.cat([fc, bc], 1), atol=1e-5, rtol=1e-5)


def test_gradcheck_float64_with_peepholes():
    torch.manual_seed(5)
    layer = ConvLSTM(2, 2, 3, peephole=True, size=(4, 4), bidirectional=True).double()
    randomise_peepholes(layer)
    x = torch.randn(1, 3, 2, 4, 4, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(1, 4, 4, 4, dtype=torch.float64, requires_grad=True)

    def fn(x, h0, *params):
        return layer(x, (h0, torch.zeros_like(h0)))[0]

    assert torch.autograd.gradcheck(fn, (x, h0), eps=1e-6, atol=1e-5)
    params = [p for p in layer.parameters()]
    loss = fn(x, h0).square().sum()
    grads = torch.autograd.grad(loss, params)
    assert all(g is not None and g.abs().sum() > 0 for g in grads)


def test_gradcheck_parameters_float64():
    torch.manual_seed(6)
    cell_layer = ConvLSTM(1, 2, 3).double()
    x = torch.randn(1, 3, 1, 4, 4, dtype=torch.float64)
    names, params = zip(*cell_layer.named_parameters(), strict=True)
    detached = [p.detach().clone().requires_grad_() for p in params]

    def fn(*ps):
        return torch.func.functional_call(cell_layer, dict(zip(names, ps, strict=True)), (x,))[0]

    assert torch.autograd.gradcheck(fn, tuple(detached), eps=1e-6, atol=1e-5)


def test_per_step_applies_module_to_every_step():
    conv = torch.nn.Conv2d(2, 3, 1)
    x = torch.randn(2, 4, 2, 5, 5)
    y = per_step(conv, x)
    assert y.shape == (2, 4, 3, 5, 5)
    torch.testing.assert_close(y[:, 2], conv(x[:, 2]))


def test_peephole_needs_size_and_kernel_must_be_odd():
    with pytest.raises(ValueError, match="size"):
        ConvLSTM(1, 2, 3, peephole=True)
    with pytest.raises(ValueError, match="odd"):
        ConvLSTM(1, 2, 4)


@pytest.mark.slow
def test_fused_gates_compute_the_same_function():
    torch.manual_seed(7)
    eager = ConvLSTM(2, 3, 3, peephole=True, size=(5, 5))
    randomise_peepholes(eager)
    fused = ConvLSTM(2, 3, 3, peephole=True, size=(5, 5), fuse_gates=True)
    fused.load_state_dict(eager.state_dict())
    x = torch.randn(2, 4, 2, 5, 5)
    torch.testing.assert_close(fused(x)[0], eager(x)[0], atol=1e-5, rtol=1e-5)


@pytest.mark.slow
def test_equals_keras_convlstm2d_with_copied_weights():
    keras = pytest.importorskip("keras")
    pytest.importorskip("tensorflow")
    torch.manual_seed(8)
    layer = ConvLSTM(3, 4, 3)
    k = keras.layers.ConvLSTM2D(4, 3, padding="same", return_sequences=True, return_state=True,
                                data_format="channels_last")
    x = torch.randn(2, 5, 3, 6, 6)
    x_nhwc = x.permute(0, 1, 3, 4, 2).numpy()
    k(x_nhwc)  # build
    cell = layer.cells[0]
    k.set_weights([cell.weight_x.detach().permute(2, 3, 1, 0).numpy(),
                   cell.weight_h.detach().permute(2, 3, 1, 0).numpy(),
                   cell.bias.detach().numpy()])
    seq, kh, kc = (np.asarray(a) for a in k(x_nhwc))
    out, (h, c) = layer(x)
    np.testing.assert_allclose(out.detach().permute(0, 1, 3, 4, 2).numpy(), seq, atol=1e-5)
    np.testing.assert_allclose(c.detach().permute(0, 2, 3, 1).numpy(), kc, atol=1e-5)


def test_outputs_false_returns_only_the_final_state():
    torch.manual_seed(8)
    layer = ConvLSTM(2, 3, 3, bidirectional=True)
    x = torch.randn(2, 4, 2, 5, 5)
    out, (h, c) = layer(x)
    none, (h2, c2) = layer(x, outputs=False)
    assert none is None
    torch.testing.assert_close(h2, h)
    torch.testing.assert_close(c2, c)


@pytest.mark.parametrize("grad", [True, False])
def test_outputs_are_stored_so_the_next_layer_reads_them_without_a_copy(grad):
    layer = ConvLSTM(3, 4, 3)
    with torch.set_grad_enabled(grad):
        out, _ = layer(torch.randn(2, 5, 3, 6, 6))
    assert time_major(out).data_ptr() == out.data_ptr()
    assert time_major(out).is_contiguous(memory_format=torch.channels_last)


@pytest.mark.slow
@pytest.mark.parametrize("fuse", [False, True])
def test_without_autograd_the_same_outputs_are_written_in_place(fuse):
    """Inference stores each hidden state straight into the output sequence (no stacking)."""
    torch.manual_seed(9)
    layer = ConvLSTM(2, 3, 3, peephole=True, size=(5, 5), bidirectional=True, fuse_gates=fuse)
    randomise_peepholes(layer)
    x = torch.randn(2, 4, 2, 5, 5)
    state = tuple(torch.randn(2, 6, 5, 5) for _ in range(2))
    expected = layer(x, state)
    with torch.inference_mode():
        got = layer(x, state)
        repeated = layer.forward_repeated(x[:, 0], 4)
    repeated_expected = layer.forward_repeated(x[:, 0], 4)
    for g, e in ((got[0], expected[0]), *zip(got[1], expected[1], strict=True),
                 (repeated[0], repeated_expected[0]), (repeated[1][0], repeated_expected[1][0])):
        torch.testing.assert_close(g, e, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(got[0][:, -1, :3], got[1][0][:, :3])
    torch.testing.assert_close(got[0][:, 0, 3:], got[1][0][:, 3:])
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        out, (h, c) = layer(x, state)
    assert out.dtype == h.dtype == torch.bfloat16 and c.dtype == torch.float32
    torch.testing.assert_close(out.float(), expected[0], atol=0.05, rtol=0.05)


def test_one_channel_input_convolves_to_channels_last():
    x = channels_last(torch.randn(3, 1, 6, 6))
    y = F.conv2d(x, torch.randn(8, 1, 3, 3), padding=1)
    assert y.is_contiguous(memory_format=torch.channels_last) and y.stride()[1] == 1


def test_fused_gates_without_a_compiler_is_a_clear_error(tmp_path):
    script = (
        "import torch\n"
        "from linecube.models.convlstm import ConvLSTM\n"
        "ConvLSTM(2, 3, 3, fuse_gates=True)(torch.randn(1, 2, 2, 5, 5))\n"
    )
    env = os.environ | {"CXX": "/nonexistent/c++", "TORCHINDUCTOR_CACHE_DIR": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode != 0
    assert "ConfigError: model.fuse_gates = true: torch.compile could not build" in proc.stderr
    assert "set model.fuse_gates = false" in proc.stderr


@pytest.mark.slow
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fused_gates_have_the_gradients_of_the_eager_arithmetic(dtype):
    """The compiled backward kernel: every input and parameter gradient, with peepholes, both
    directions, an initial state, a repeated input and a layer without input."""
    torch.manual_seed(8)
    kwargs = dict(peephole=True, size=(5, 5))
    layers = {
        "sequence": (ConvLSTM(2, 3, 3, bidirectional=True, **kwargs), (2, 4, 2, 5, 5), 6),
        "repeated": (ConvLSTM(2, 3, 3, **kwargs), (2, 2, 5, 5), 3),
        "no input": (ConvLSTM(0, 3, 3, **kwargs), None, 3),
    }
    for name, (eager, x_shape, state_channels) in layers.items():
        eager = eager.to(dtype)
        randomise_peepholes(eager)
        fused = copy.deepcopy(eager)
        fused.fuse_gates = True
        x = None if x_shape is None else torch.randn(x_shape, dtype=dtype)
        state = tuple(torch.randn(2, state_channels, 5, 5, dtype=dtype) for _ in range(2))
        grads = []
        for layer in (eager, fused):
            inputs = [t.clone().requires_grad_() for t in (state if x is None else (x, *state))]
            *xs, h0, c0 = inputs
            if name == "sequence":
                out, (h, c) = layer(*xs, (h0, c0))
            else:
                out, (h, c) = layer.forward_repeated(xs[0] if xs else None, 4, (h0, c0))
            # c is left out of the loss: its gradient reaches the last step as None
            loss = (out * torch.linspace(-1, 1, out.numel(), dtype=dtype).view_as(out)).sum()
            loss = loss + h.square().sum()
            grads.append(torch.autograd.grad(loss, [*inputs, *layer.parameters()]))
        tol = 1e-5 if dtype == torch.float32 else 1e-10
        for g_eager, g_fused in zip(*grads, strict=True):
            torch.testing.assert_close(g_fused, g_eager, atol=tol, rtol=tol, msg=name)


@pytest.mark.slow
def test_fused_gates_under_bf16_autocast_have_the_gradients_of_the_eager_arithmetic():
    """The hand-written backward of low-precision gates, against autograd through the eager
    arithmetic under the same autocast (both round to bf16: compared to 1% of each norm)."""
    torch.manual_seed(10)
    eager = ConvLSTM(2, 3, 3, peephole=True, size=(5, 5), bidirectional=True)
    randomise_peepholes(eager)
    fused = copy.deepcopy(eager)
    fused.fuse_gates = True
    x = torch.randn(2, 4, 2, 5, 5)
    state = tuple(torch.randn(2, 6, 5, 5) for _ in range(2))
    weights = torch.randn(2, 4, 6, 5, 5)
    grads = []
    for layer in (eager, fused):
        inputs = [t.clone().requires_grad_() for t in (x, *state)]
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out, (h, c) = layer(inputs[0], tuple(inputs[1:]))
            loss = (out.float() * weights).sum() + c.square().sum()
        grads.append(torch.autograd.grad(loss, [*inputs, *layer.parameters()]))
    for g_eager, g_fused in zip(*grads, strict=True):
        assert g_fused.dtype == g_eager.dtype
        assert float((g_fused - g_eager).norm() / g_eager.norm()) < 0.01
