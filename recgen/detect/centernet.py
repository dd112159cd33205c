"""A compact anchor-free detector: objects as points (CenterNet, arXiv 1904.07850) with box-edge regression.

The network predicts, on a grid of stride 4:
  heat (B, 1, H/4, W/4)  class-agnostic centre heatmap (sigmoid), trained with CenterNet's penalty-reduced focal loss
                         against elliptical Gaussians of sigma = alpha * box side / 6 (TTFNet, arXiv 1909.00700)
  cls  (B, K, H/4, W/4)  class logits, trained with cross-entropy where an object's Gaussian exceeds `reg_area`
  dist (B, 4, H/4, W/4)  distances from the cell centre to the box's left, top, right and bottom edges (in units of
                         the stride), trained on the same cells, weighted by the Gaussian, with L1 and GIoU
                         (arXiv 1902.09630) losses as in TTFNet and FCOS (arXiv 1904.01355)
CenterNet itself puts the class into K heatmaps; splitting "is there an object centre" from "which class" (YOLO's
objectness x class probability, arXiv 1506.02640) gives every object's evidence to one heatmap and a dense
cross-entropy signal to the classes, which learns much faster on a CPU budget than K heatmaps did. Decoding
keeps local maxima of the heatmap (3x3 max-pool, the paper's NMS
replacement), scores each with objectness x class probability, and may report a peak under several classes.

Backbone: a small ResNet-style pyramid (strides 2, 4, 8, 16) whose deeper maps are upsampled and added back to the
stride-4 map (a feature pyramid, arXiv 1612.03144, kept to its finest level).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from recgen.detect.boxes import giou


@dataclass
class CenterNetConfig:
    in_channels: int = 1  # image channels
    num_classes: int = 10  # object classes
    widths: tuple[int, ...] = (24, 48, 96, 160)  # channels of the stages at strides 2, 4, 8, 16
    blocks: tuple[int, ...] = (0, 1, 1, 1)  # residual blocks per stage (after its strided conv)
    neck: int = 48  # channels of the stride-4 output map and of the heads' hidden layer
    alpha: float = 0.54  # Gaussian sigma = alpha * side / 6 (TTFNet's value)
    reg_area: float = 0.3  # regress boxes at cells whose Gaussian value exceeds this

    def __post_init__(self):
        self.widths, self.blocks = tuple(self.widths), tuple(self.blocks)
        if len(self.widths) != 4 or len(self.blocks) != 4:
            raise ValueError("widths and blocks need one entry per stage (strides 2, 4, 8, 16)")
        if min(self.widths) < 1 or min(self.blocks) < 0 or self.neck < 1:
            raise ValueError(f"widths and neck must be channel counts >= 1 and blocks counts >= 0, got "
                             f"{self.widths}, {self.neck} and {self.blocks}")

    stride = 4  # output stride (the heads run on the stage-2 map)


def conv_bn(cin: int, cout: int, stride: int = 1, k: int = 3) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


class Residual(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.body = nn.Sequential(conv_bn(c, c), nn.Conv2d(c, c, 3, 1, 1, bias=False), nn.BatchNorm2d(c))
        nn.init.zeros_(self.body[-1].weight)  # each block starts as the identity (arXiv 1706.02677)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.body(x))


class CenterNet(nn.Module):
    def __init__(self, cfg: CenterNetConfig):
        super().__init__()
        self.cfg = cfg
        chans = (cfg.in_channels,) + cfg.widths
        self.stages = nn.ModuleList(
            nn.Sequential(conv_bn(chans[i], chans[i + 1], stride=2), *[Residual(chans[i + 1]) for _ in range(n)])
            for i, n in enumerate(cfg.blocks))
        self.lateral = nn.ModuleList(nn.Conv2d(c, cfg.neck, 1) for c in cfg.widths[1:])  # strides 4, 8, 16
        self.head = conv_bn(cfg.neck, cfg.neck)  # smooths the upsampled sum; one hidden layer shared by the outputs
        self.out = nn.Conv2d(cfg.neck, 1 + cfg.num_classes + 4, 1)  # heat, class logits, edge distances
        nn.init.constant_(self.out.bias[0], -4.6)  # initial p = 0.01, the focal-loss prior (arXiv 1708.02002)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x (B, C, H, W) in [0, 1], H and W multiples of 16 -> heat logits (B, 1, H/4, W/4), class logits
        (B, K, H/4, W/4), edge distances (B, 4, H/4, W/4) in strides."""
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        p = self.lateral[2](feats[3])  # top-down: stride 16 -> 8 -> 4
        for lat, f in ((self.lateral[1], feats[2]), (self.lateral[0], feats[1])):
            p = lat(f) + F.interpolate(p, size=f.shape[-2:], mode="nearest")
        o = self.out(self.head(p))
        return o[:, :1], o[:, 1:-4], o[:, -4:]


def build_centernet(cfg: CenterNetConfig) -> CenterNet:
    return CenterNet(cfg)


# ---------------------------------------------------------------------------------------------------- training
def cell_centres(h: int, w: int, stride: int, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Input-pixel coordinates (H, W) of the centre of every output cell."""
    ys = (torch.arange(h, device=device, dtype=torch.float32) + 0.5) * stride
    xs = (torch.arange(w, device=device, dtype=torch.float32) + 0.5) * stride
    return ys.view(h, 1).expand(h, w), xs.view(1, w).expand(h, w)


def encode(targets: torch.Tensor, cfg: CenterNetConfig, h: int, w: int
           ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """targets (B, M, 5) = (x1, y1, x2, y2, class) in input pixels, -1 rows padding ->
    heat (B, 1, h, w) Gaussian peaks (exactly 1 at each object's centre cell), cls (B, h, w) and box (B, 4, h, w) the
    class and xyxy box each cell learns, weight (B, h, w) their weight (the Gaussian value, 0 below `reg_area`)."""
    b, m, _ = targets.shape
    s, dev = cfg.stride, targets.device
    valid = targets[..., 4] >= 0  # (B, M)
    box = targets[..., :4] / s  # in cells
    ctr = ((box[..., :2] + box[..., 2:]) / 2).floor()  # (B, M, 2) centre cell (x, y)
    ctr[..., 0].clamp_(0, w - 1)
    ctr[..., 1].clamp_(0, h - 1)
    sigma = (cfg.alpha * (box[..., 2:] - box[..., :2]) / 6).clamp_min(0.25)  # (B, M, 2)
    xs = torch.arange(w, device=dev, dtype=torch.float32)
    ys = torch.arange(h, device=dev, dtype=torch.float32)
    gx = torch.exp(-(xs - ctr[..., 0:1]) ** 2 / (2 * sigma[..., 0:1] ** 2))  # (B, M, w)
    gy = torch.exp(-(ys - ctr[..., 1:2]) ** 2 / (2 * sigma[..., 1:2] ** 2))  # (B, M, h)
    g = (gy[..., :, None] * gx[..., None, :]) * valid[..., None, None]  # (B, M, h, w)
    best, owner = g.max(1)  # (B, h, w): the object whose Gaussian dominates each cell
    cls = targets[..., 4].long().clamp_min(0).gather(1, owner.view(b, -1)).view(b, h, w)
    boxes = targets[..., :4].gather(1, owner.view(b, -1, 1).expand(-1, -1, 4)).view(b, h, w, 4).permute(0, 3, 1, 2)
    weight = torch.where(best >= cfg.reg_area, best, torch.zeros_like(best))
    return best[:, None], cls, boxes, weight


def focal_loss(logits: torch.Tensor, heat: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """CenterNet eq. 1 (alpha=2, beta=4), normalised by the number of object centres."""
    p = logits.sigmoid().clamp(eps, 1 - eps)
    pos = heat.eq(1).float()
    pos_loss = -(torch.log(p) * (1 - p) ** 2 * pos).sum()
    neg_loss = -(torch.log(1 - p) * p ** 2 * (1 - heat) ** 4 * (1 - pos)).sum()
    return (pos_loss + neg_loss) / pos.sum().clamp_min(1)


def decode_boxes(dist: torch.Tensor, stride: int) -> torch.Tensor:
    """dist (B, 4, h, w) edge distances in strides -> xyxy boxes (B, 4, h, w) in input pixels."""
    cy, cx = cell_centres(dist.shape[-2], dist.shape[-1], stride, dist.device)
    d = dist * stride
    return torch.stack([cx - d[:, 0], cy - d[:, 1], cx + d[:, 2], cy + d[:, 3]], 1)


def centernet_loss(heat_logits: torch.Tensor, cls_logits: torch.Tensor, dist: torch.Tensor, targets: torch.Tensor,
                   cfg: CenterNetConfig, giou_weight: float = 2.0, l1_weight: float = 1.0,
                   cls_weight: float = 1.0) -> dict[str, torch.Tensor]:
    h, w = heat_logits.shape[-2:]
    heat_t, cls_t, box_t, weight = encode(targets, cfg, h, w)
    hm = focal_loss(heat_logits.float(), heat_t)
    sel = weight > 0  # (B, h, w)
    ws = weight[sel]
    wsum = ws.sum().clamp_min(1e-6)
    ce = (F.cross_entropy(cls_logits.float().permute(0, 2, 3, 1)[sel], cls_t[sel], reduction="none") * ws).sum() / wsum
    pred = decode_boxes(dist.float(), cfg.stride)  # (B, 4, h, w)
    pb, tb = pred.permute(0, 2, 3, 1)[sel], box_t.permute(0, 2, 3, 1)[sel]  # (n, 4)
    g = ((1 - giou(pb, tb)) * ws).sum() / wsum
    l1 = ((pb - tb).abs().sum(1) / cfg.stride * ws).sum() / wsum  # in strides, so it scales like the other terms
    return {"loss": hm + cls_weight * ce + giou_weight * g + l1_weight * l1, "heat": hm.detach(),
            "cls": ce.detach(), "giou": g.detach(), "l1": l1.detach()}


# ---------------------------------------------------------------------------------------------------- inference
@torch.no_grad()
def decode_dense(heat_logits: torch.Tensor, cls_logits: torch.Tensor, dist: torch.Tensor, stride: int,
                 top_k: int = 100) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Boxes (B, top_k, 4) xyxy in input pixels, scores (B, top_k), labels (B, top_k): the top_k (peak, class)
    pairs by objectness x class probability, best first. Batched tensors only, so it exports to ONNX with the
    network (`recgen export` on a detect run)."""
    b, k, h, w = cls_logits.shape
    heat = heat_logits.sigmoid()
    peaks = heat * (F.max_pool2d(heat, 3, 1, 1) == heat)  # a cell survives only if it is its 3x3 maximum
    obj, cell = peaks.reshape(b, -1).topk(min(top_k, h * w))  # (B, P)
    probs = cls_logits.softmax(1).reshape(b, k, h * w).gather(2, cell[:, None].expand(-1, k, -1))  # (B, K, P)
    joint = (obj[:, None] * probs).transpose(1, 2).reshape(b, -1)  # (B, P * K), peak-major
    scores, idx = joint.topk(min(top_k, joint.shape[1]))
    labels, cell = idx % k, cell.gather(1, idx // k)
    boxes = decode_boxes(dist.clamp_min(0), stride).reshape(b, 4, h * w)
    boxes = boxes.gather(2, cell[:, None].expand(-1, 4, -1)).transpose(1, 2)  # (B, top_k, 4)
    return boxes.clamp(0, max(h, w) * stride), scores, labels


def decode(heat_logits: torch.Tensor, cls_logits: torch.Tensor, dist: torch.Tensor, stride: int, top_k: int = 100,
           threshold: float = 0.01) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Per image: boxes (n, 4) xyxy in input pixels, scores (n,), labels (n,): decode_dense's, scoring >=
    threshold."""
    boxes, scores, labels = decode_dense(heat_logits, cls_logits, dist, stride, top_k)
    keep = scores >= threshold
    return [(boxes[i][keep[i]], scores[i][keep[i]], labels[i][keep[i]]) for i in range(len(scores))]
