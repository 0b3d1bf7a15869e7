"""The textbook PyTorch ConvLSTM autoencoder of the reference workload (a peer, not linecube).

One convolution over the concatenation [x_t, h_{t-1}] per step, a Python loop over steps,
default (NCHW) memory layout, new tensors every step: the ConvLSTM found in most public code.
Reference workload (peers.md §3): encoder ConvLSTM 1->32->16 (3x3), latent = last hidden state
of the top layer, decoder = latent repeated T steps -> ConvLSTM 16->16 -> 16->32 -> 1x1 conv.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class TextbookConvLSTMLayer(nn.Module):
    """One ConvLSTM layer: ``conv([x_t, h]) -> i, f, g, o``; x (B, T, C, H, W)."""

    def __init__(self, in_channels: int, hidden: int, kernel_size: int = 3):
        super().__init__()
        self.hidden = hidden
        self.conv = nn.Conv2d(in_channels + hidden, 4 * hidden, kernel_size,
                              padding=kernel_size // 2)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """x (B, T, C, H, W) -> (outputs (B, T, F, H, W), last h (B, F, H, W))."""
        b, t, _, hh, ww = x.shape
        h = x.new_zeros(b, self.hidden, hh, ww)
        c = x.new_zeros(b, self.hidden, hh, ww)
        outs = []
        for step in range(t):
            i, f, g, o = torch.split(self.conv(torch.cat([x[:, step], h], 1)), self.hidden, 1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            outs.append(h)
        return torch.stack(outs, 1), h


class TextbookAutoencoder(nn.Module):
    """The reference workload: (B, T, 1, H, W) -> reconstruction (B, T, 1, H, W)."""

    def __init__(self):
        super().__init__()
        self.enc1 = TextbookConvLSTMLayer(1, 32)
        self.enc2 = TextbookConvLSTMLayer(32, 16)
        self.dec1 = TextbookConvLSTMLayer(16, 16)
        self.dec2 = TextbookConvLSTMLayer(16, 32)
        self.head = nn.Conv2d(32, 1, 1)

    def forward(self, x: Tensor) -> Tensor:
        t = x.shape[1]
        seq, _ = self.enc1(x)
        _, latent = self.enc2(seq)
        seq, _ = self.dec1(latent.unsqueeze(1).expand(-1, t, -1, -1, -1))
        seq, _ = self.dec2(seq)
        b = seq.shape[0]
        return self.head(seq.flatten(0, 1)).unflatten(0, (b, t))

    @torch.no_grad()
    def copy_from(self, model: nn.Module) -> None:
        """Copy the weights of a linecube ``reference`` model (same function)."""
        for mine, theirs in zip((self.enc1, self.enc2, self.dec1, self.dec2),
                                (*model.encoder, *model.decoder), strict=True):
            cell = theirs.cells[0]
            mine.conv.weight.copy_(torch.cat([cell.weight_x, cell.weight_h], 1))
            mine.conv.bias.copy_(cell.bias)
        self.head.load_state_dict(model.head.state_dict())
