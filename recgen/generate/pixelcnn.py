"""Gated PixelCNN (van den Oord et al., arXiv 1606.05328), conditioned on a class or text vector.

Each pixel is a `levels`-way softmax (256 = the 8-bit data itself; fewer levels quantise the data first, and the
bits/dim are then those of the quantised data). Pixels are generated in raster order; the channels of one pixel are
predicted together from the pixels before it (independent of each other given that context, a simplification of
the paper's R -> G -> B ordering that changes nothing for grayscale).

Two stacks per layer remove the blind spot of the original masked PixelCNN:
    vertical   conv (k//2 + 1, k) over the rows above and the current row (padding on top only)
    horizontal conv (1, k//2 + 1) over the pixels to the left and the current one, plus the vertical stack
               shifted down one row (so it only ever sees rows strictly above)
    both gated: tanh(a + V_f h) * sigmoid(b + V_g h), h = the condition vector; residual on the horizontal stack
The layers after the first are dilated in turn (DILATIONS), which widens what a pixel sees without more cost.
The first layer shifts the horizontal stack one pixel right, so no output sees its own pixel (mask 'A').
Padding is only ever on the top and left, so the logits of row r are a function of rows <= r alone: sampling feeds
only the rows inside the receptive field (`rows_above`).
Runs trained with cond_dropout > 0 also learn a "no condition" prediction, and sampling can then apply
classifier-free guidance to each pixel's logits, as diffusion does to its noise prediction.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from recgen.errors import RecgenError
from recgen.generate.common import GeneratorTask, bits_per_dim
from recgen.generate.condition import drop_mask, make_conditioner
from recgen.generate.family import GeneratorFamily


@dataclass
class PixelCNNConfig:
    channels: int = 1  # image channels: 1 grayscale, 3 RGB
    height: int = 28  # image height in pixels
    width: int = 28  # image width in pixels
    num_classes: int = 10  # classes of the dataset (embedding rows when cond is 'class')
    cond: str = "class"  # none | class | text
    levels: int = 256  # softmax size per channel: 256 = 8-bit data; fewer = quantised data (e.g. 16 for 4 bits)
    hidden: int = 32  # channels of each stack (the gates use twice as many)
    layers: int = 8  # gated layers (the first is the masked 'A' layer)
    kernel: int = 3  # kernel width of the gated layers (the first layer uses 7)
    head: int = 64  # channels of the 1x1 output head before the softmax logits
    cond_dim: int = 32  # size of the condition vector
    # dilation of the gated layers after the first, repeated in turn ('1' = none, as in the paper; runs of
    # older versions have no such field and load as '1'); new runs get DILATIONS (recgen/generate/config.py)
    dilations: str = "1"
    # share of training images whose condition is replaced by the "no condition" token, so that sampling can use
    # classifier-free guidance (runs of older versions have none and sample unguided)
    cond_dropout: float = 0.0


# With k = 3 and no dilation, 8 layers see 11 rows above a pixel: generating row 20 of a 28-row garment, the model
# no longer sees where its shoulders were, and the samples came out class-textured but not garment-shaped. Dilating
# the vertical and horizontal convolutions (as WaveNet, arXiv 1609.03499, does in time) widens the view to 26 rows
# at the same cost; the masking is unchanged, since the stacks only ever look up and left.
DILATIONS = "1,2,4,8"


def parse_dilations(spec: str) -> list[int]:
    try:
        out = [int(d) for d in str(spec).split(",")]
    except ValueError:
        out = []
    if not out or min(out) < 1:
        raise RecgenError(f"dilations: expected comma-separated positive integers, got {spec!r}")
    return out


def gate(x: torch.Tensor) -> torch.Tensor:
    a, b = x.chunk(2, dim=1)
    return torch.tanh(a) * torch.sigmoid(b)


def shift_down(x: torch.Tensor) -> torch.Tensor:
    return F.pad(x, (0, 0, 1, 0))[:, :, :-1]


def shift_right(x: torch.Tensor) -> torch.Tensor:
    return F.pad(x, (1, 0))[..., :-1]


class GatedLayer(nn.Module):
    def __init__(self, c_in: int, p: int, k: int, first: bool, cond_dim: int, dilation: int = 1):
        super().__init__()
        self.first, self.pad = first, dilation * (k // 2)
        self.v = nn.Conv2d(c_in, 2 * p, (k // 2 + 1, k), dilation=dilation)
        self.h = nn.Conv2d(c_in, 2 * p, (1, k // 2 + 1), dilation=dilation)
        self.v2h = nn.Conv2d(2 * p, 2 * p, 1)
        self.h_out = nn.Conv2d(p, p, 1)
        self.cond = nn.Linear(cond_dim, 4 * p) if cond_dim else None

    def above(self, v: torch.Tensor, e: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """The vertical stack: (its output, what it and the condition add to the horizontal stack's
        pre-activation). The latter at row r comes from rows strictly above r, so it is fixed while r is drawn."""
        p = self.pad  # dilation * (k // 2)
        v_pre = self.v(F.pad(v, (p, p, p, 0)))  # rows r - p .. r
        from_above = self.v2h(shift_down(v_pre))  # rows strictly above
        if self.cond is not None:
            cv, ch = self.cond(e)[:, :, None, None].chunk(2, dim=1)
            v_pre, from_above = v_pre + cv, from_above + ch
        return gate(v_pre), from_above

    def left(self, h: torch.Tensor, from_above: torch.Tensor) -> torch.Tensor:
        """The horizontal stack, given what comes from above (any number of rows, e.g. just the one being drawn)."""
        h_pre = self.h(F.pad(h, (self.pad, 0, 0, 0)))  # columns c - p .. c
        if self.first:
            h_pre = shift_right(h_pre)  # mask 'A': never see the pixel being predicted
        h_new = self.h_out(gate(h_pre + from_above))
        return h_new if self.first else h + h_new

    def forward(self, v: torch.Tensor, h: torch.Tensor, e: torch.Tensor | None):
        v_out, from_above = self.above(v, e)
        return v_out, self.left(h, from_above)


class PixelCNN(nn.Module):
    def __init__(self, cfg: PixelCNNConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = make_conditioner(cfg.cond, cfg.num_classes, cfg.cond_dim)
        cd = cfg.cond_dim if self.embed is not None else 0
        self.dilations = [1] + [d for d, _ in zip(itertools.cycle(parse_dilations(cfg.dilations)),
                                                      range(cfg.layers - 1))]
        self.layers = nn.ModuleList([GatedLayer(cfg.channels, cfg.hidden, 7, True, cd)] +
                                    [GatedLayer(cfg.hidden, cfg.hidden, cfg.kernel, False, cd, d)
                                     for d in self.dilations[1:]])
        self.out = nn.Sequential(nn.ReLU(), nn.Conv2d(cfg.hidden, cfg.head, 1), nn.ReLU(),
                                 nn.Conv2d(cfg.head, cfg.levels * cfg.channels, 1))

    @property
    def rows_above(self) -> int:
        """How many rows above row r its logits depend on (the vertical receptive field, plus the one-row shift)."""
        return 1 + 7 // 2 + sum(self.dilations[1:]) * (self.cfg.kernel // 2)

    def scaled(self, x: torch.Tensor) -> torch.Tensor:
        return x.float() / (self.cfg.levels - 1) * 2 - 1

    def head(self, h: torch.Tensor) -> torch.Tensor:
        """Horizontal-stack features (B, hidden, H, W) -> logits (B, levels, C, H, W)."""
        return self.out(h).view(len(h), self.cfg.levels, self.cfg.channels, *h.shape[2:])

    def forward(self, x: torch.Tensor, c=None, drop: torch.Tensor | None = None) -> torch.Tensor:
        """Integer levels (B, C, H, W) -> logits (B, levels, C, H, W) of each pixel given the pixels before it.
        drop (B,) bool: those images get the "no condition" token instead of c."""
        v = h = self.scaled(x)
        e = self.embed(c, drop) if self.embed is not None else None
        for layer in self.layers:
            v, h = layer(v, h, e)
        return self.head(h)

    # Sampling draws one pixel per network call. Recomputing the whole window of rows for each of the 784 pixels
    # repeats work: what the rows above contribute to row r is fixed while row r is drawn. So per row, the
    # vertical stacks run once over the window (row_context), and per pixel only the horizontal stacks run, over
    # row r alone (row_logits): about 25x fewer multiply-adds per pixel, same logits.
    def row_context(self, x: torch.Tensor, e: torch.Tensor | None) -> list[torch.Tensor]:
        """Window x (B, C, rows, W) ending at the row being drawn -> per layer, what the rows above and the condition
        add to that row's horizontal stack, (B, 2 hidden, 1, W). e: the condition vectors (B, cond_dim)."""
        v, out = self.scaled(x), []
        for layer in self.layers:
            v, from_above = layer.above(v, e)
            out.append(from_above[:, :, -1:])
        return out

    def row_logits(self, row: torch.Tensor, context: list[torch.Tensor]) -> torch.Tensor:
        """The row being drawn, first columns (B, C, 1, W') -> their logits (B, levels, C, 1, W')."""
        h = self.scaled(row)
        for layer, from_above in zip(self.layers, context):
            h = layer.left(h, from_above[..., :row.shape[-1]])
        return self.head(h)


def build(cfg: PixelCNNConfig) -> dict[str, nn.Module]:
    return {"model": PixelCNN(cfg)}


def quantise(x: torch.Tensor, levels: int) -> torch.Tensor:
    """Float images in [0, 1] (from uint8) -> integer levels 0 .. levels - 1."""
    return (x * 255).round().long().mul(levels).div(256, rounding_mode="floor")


def nll(model: nn.Module, q: torch.Tensor, c, drop: torch.Tensor | None = None) -> torch.Tensor:
    """Negative log-likelihood in nats per image (B,) of integer levels q (B, C, H, W)."""
    logits = model(q, c, drop)
    return F.cross_entropy(logits, q, reduction="none").flatten(1).sum(1)


# ------------------------------------------------------------------------------------------------------ sampling
@torch.no_grad()
def sample(modules, cfg: PixelCNNConfig, c, n: int, g: torch.Generator, temperature: float = 1.0,
           start: torch.Tensor | None = None, from_row: int = 0, guidance: float = 1.0,
           progress: Callable[[float], None] | None = None) -> torch.Tensor:
    """Pixel by pixel in raster order, each drawn from the softmax at `temperature`. `start` (n, C, H, W) in [0, 1]
    with from_row > 0 keeps its rows above from_row and completes the rest. `guidance` (a run trained with
    cond_dropout > 0): the logits are uncond + w * (cond - uncond), as classifier-free guidance mixes predictions
    (arXiv 2207.12598; for autoregressive image models e.g. arXiv 2406.06525); 1 = none. Returns (n, C, H, W) in
    [0, 1]. progress: called with the share of the rows done after each row."""
    model = modules["model"]
    dev = next(model.parameters()).device
    q = torch.zeros(n, cfg.channels, cfg.height, cfg.width, dtype=torch.long, device=dev)
    if start is not None:
        q[:, :, :from_row] = quantise(start, cfg.levels)[:, :, :from_row].to(dev)
    guided = c is not None and guidance != 1.0
    both = (lambda t: torch.cat([t, t])) if guided else (lambda t: t)  # guided: conditional and null in one batch
    drop = torch.arange(2 * n, device=dev) >= n if guided else None  # the second half gets the null token
    e = model.embed(both(c), drop) if model.embed is not None else None
    for r in range(from_row, cfg.height):
        top = max(0, r - model.rows_above)  # rows outside the receptive field change nothing
        context = model.row_context(both(q[:, :, top:r + 1]), e)
        for col in range(cfg.width):
            logits = model.row_logits(both(q[:, :, r:r + 1, :col + 1]), context)[:, :, :, 0, -1]  # (n, levels, C)
            if guided:
                cond, uncond = logits.chunk(2)
                logits = uncond + guidance * (cond - uncond)
            probs = (logits / temperature).softmax(1).transpose(1, 2).flatten(0, 1).cpu()  # (n * C, levels)
            q[:, :, r, col] = torch.multinomial(probs, 1, generator=g).view(n, cfg.channels).to(dev)
        if progress is not None:
            progress((r + 1 - from_row) / (cfg.height - from_row))
    return q.float() / (cfg.levels - 1)


@torch.no_grad()
def infer_class(modules, x: torch.Tensor, conds: torch.Tensor) -> int:
    """The condition (index into conds, one per class) under which image x (1, C, H, W) is most likely."""
    model = modules["model"]
    q = quantise(x, model.cfg.levels).expand(len(conds), *x.shape[1:])
    return int(nll(model, q, conds).argmin())


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, condition, batch: int = 250) -> dict:
    """Bits per dimension of images x in [0, 1] (of the 8-bit data when levels is 256)."""
    from recgen.train import seeded

    g, total = seeded(13), 0.0
    for i in range(0, len(x), batch):
        q = quantise(x[i:i + batch], model.cfg.levels)
        total += float(nll(model, q, condition(y[i:i + batch], g)).sum())
    return {"bpd": round(bits_per_dim(total / len(x), x[0].numel()), 4)}


# ------------------------------------------------------------------------------------------------------ training
class PixelCNNTask(GeneratorTask):
    monitor, monitor_mode = "val_bpd", "min"
    grid_n = 10  # pixel-by-pixel sampling is slow: a small grid per epoch (one image per class)

    def training_step(self, batch, g):
        x, y = batch
        x = self.augment(x, g)
        q, c = quantise(x, self.arch.levels), self.condition(y, g)
        drop = drop_mask(len(x), self.arch.cond_dropout, g, x.device) if c is not None else None
        loss = nll(self.modules["model"], q, c, drop).mean() / x[0].numel()  # nats per dimension
        return {"loss": loss, "bpd": loss.detach() / math.log(2)}

    def sample(self, modules, c, n, g):
        guidance = self.cfg.guidance if FAMILY.can_guide(self.arch) else 1.0
        return sample(modules, self.arch, c, n, g, guidance=guidance)

    def validate(self, modules):
        if self.val is None:
            return {}
        m = modules["model"].eval()
        out = evaluate(m, self.val[0][:1000].to(self.device), self.val[1][:1000].to(self.device), self.condition)
        self.modules["model"].train()
        return {f"val_{k}": v for k, v in out.items()}


# ---------------------------------------------------------------------------------------- the family protocol
class PixelCNNFamily(GeneratorFamily):
    name, arch_class, task_class = "pixelcnn", PixelCNNConfig, PixelCNNTask
    options = ("pixelcnn_width", "pixelcnn_layers")
    guidable = can_vary = can_infer_class = True
    requires = {"guidable": "trained with cond_dropout > 0"}

    def make_arch(self, cfg, common):
        return PixelCNNConfig(**common, levels=cfg.levels, dilations=DILATIONS, cond_dropout=cfg.cond_dropout,
                              **({"hidden": cfg.pixelcnn_width} if cfg.pixelcnn_width else {}),
                              **({"layers": cfg.pixelcnn_layers} if cfg.pixelcnn_layers else {}))

    def build(self, arch):
        return build(arch)

    def can_guide(self, arch):
        return super().can_guide(arch) and arch.cond_dropout > 0

    def sample(self, modules, arch, cond, n, g, opts, progress=None):
        return sample(modules, arch, cond, n, g, opts.temperature, guidance=opts.guidance, progress=progress)

    def vary(self, modules, arch, cond, start, n, g, opts, progress=None):
        """Keep the top rows of `start` and complete the bottom `strength` of them."""
        from_row = int(round(arch.height * (1 - opts.strength)))
        return sample(modules, arch, cond, n, g, opts.temperature, start.expand(n, -1, -1, -1), from_row,
                      opts.guidance, progress=progress)

    def infer_class(self, modules, arch, x, conds, g):
        return infer_class(modules, x, conds)

    def evaluate(self, modules, arch, x, y, condition):
        out = evaluate(modules["model"], x, y, condition)
        out["data"] = "8-bit" if arch.levels == 256 else f"quantised to {arch.levels} levels"
        return out


FAMILY = PixelCNNFamily()
