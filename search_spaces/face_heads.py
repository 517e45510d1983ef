"""The searchable AU heads of the ``face`` space.

Every head maps a backbone feature map (N, C, H, W) to per-AU logits (N, A) and an embedding;
they differ in how they get a feature *per AU* and whether AUs talk to each other:

* ``linear`` (:class:`search_spaces.blocks.LinearHead`): one pooled vector, one linear layer.
* ``au_attention`` (:class:`AUAttentionHead`, after ARL, arXiv 1808.03457): per-AU channel
  attention then per-AU spatial attention; each AU pools its own region and has its own
  classifier. The maps are learned from the AU labels alone (no landmarks).
* ``au_transformer`` (:class:`AUTransformerHead`, after FANTrans): one learned token per AU
  cross-attends to the feature map, then the AU tokens self-attend (AU co-occurrence), and each
  token gives its AU's logit.
* ``au_graph`` (:class:`AUGraphHead`, after arXiv 2001.01168): per-AU regional attention gives
  node features; graph convolutions over a *learned* AU adjacency model AU relations.

``attention_maps()`` returns (N, A, H, W) maps of the last forward (detached) for the heads that
have them, so training can save them as images (:func:`search_spaces.face.attention_images`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from search_spaces.blocks import MultiHeadAttention, PerGroupLinear, SpaceError, spatial_softmax


class AUAttentionHead(nn.Module):
    """ARL-style channel-wise then spatial attention, one of each per AU.

    Channel attention: squeeze the map by global pooling, excite with per-AU weights (an SE
    block per AU). Spatial attention: a per-AU 1x1 then 3x3 conv (grouped by AU) over that AU's
    re-weighted channels, squashed by a sigmoid. The AU feature is the attention-weighted mean of
    its channel-attended map; a per-AU linear layer gives the logit.
    """

    def __init__(
        self, cin: int, num_aus: int, reduction: int = 4, spatial_hidden: int = 8, dropout: float = 0.0
    ) -> None:
        super().__init__()
        hidden = max(4, cin // reduction)
        self.num_aus = num_aus
        self.excite1 = PerGroupLinear(num_aus, cin, hidden)
        self.excite2 = PerGroupLinear(num_aus, hidden, cin)
        self.spatial1 = nn.Conv2d(num_aus * cin, num_aus * spatial_hidden, 1, groups=num_aus, bias=False)
        self.spatial_bn = nn.BatchNorm2d(num_aus * spatial_hidden)
        self.spatial2 = nn.Conv2d(num_aus * spatial_hidden, num_aus, 3, padding=1, groups=num_aus)
        self.dropout = nn.Dropout(dropout)
        self.classifier = PerGroupLinear(num_aus, cin, 1)
        self.embed_dim = num_aus * cin
        self._maps: torch.Tensor | None = None

    def forward_with_embedding(self, feat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n, c, h, w = feat.shape
        pooled = feat.mean(dim=(2, 3)).unsqueeze(1).expand(n, self.num_aus, c)
        channel = torch.sigmoid(self.excite2(F.relu(self.excite1(pooled))))  # (N, A, C)
        per_au = feat.unsqueeze(1) * channel[..., None, None]  # (N, A, C, H, W)
        hidden = F.relu(self.spatial_bn(self.spatial1(per_au.reshape(n, self.num_aus * c, h, w))))
        maps = torch.sigmoid(self.spatial2(hidden))  # (N, A, H, W)
        self._maps = maps.detach()
        weights = maps / (maps.sum(dim=(2, 3), keepdim=True) + 1e-6)
        au_feat = (per_au * weights.unsqueeze(2)).sum(dim=(3, 4))  # (N, A, C)
        logits = self.classifier(self.dropout(au_feat)).squeeze(-1)
        return logits, au_feat.flatten(1)

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        return self.forward_with_embedding(feat)[0]

    def attention_maps(self) -> torch.Tensor | None:
        return self._maps


class AUTransformerHead(nn.Module):
    """FANTrans-style AU tokens: cross-attention to the map, self-attention between AUs.

    The feature map becomes ``H*W`` tokens (1x1 projection + learned position embedding); one
    learned query per AU cross-attends to them (pre-norm, residual), the AU tokens then run a
    pre-norm transformer block among themselves, and a per-AU linear layer reads each token.
    The cross-attention weights, averaged over heads, are the AU's attention map.
    """

    def __init__(
        self, cin: int, num_aus: int, feat_size: int, dim: int = 64, heads: int = 4, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.num_aus = num_aus
        self.feat_size = feat_size
        self.proj = nn.Conv2d(cin, dim, 1)
        self.pos = nn.Parameter(torch.randn(1, feat_size * feat_size, dim) * 0.02)
        self.queries = nn.Parameter(torch.randn(num_aus, dim) * 0.02)
        self.norm_q = nn.LayerNorm(dim)
        self.norm_kv = nn.LayerNorm(dim)
        self.cross = MultiHeadAttention(dim, heads, dropout)
        self.cross.keep_weights = True
        self.norm_self = nn.LayerNorm(dim)
        self.self_attn = MultiHeadAttention(dim, heads, dropout)
        self.norm_ffn = nn.LayerNorm(dim)
        self.ffn = nn.Sequential(
            nn.Linear(dim, 2 * dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(2 * dim, dim)
        )
        self.norm_out = nn.LayerNorm(dim)
        self.classifier = PerGroupLinear(num_aus, dim, 1)
        self.embed_dim = num_aus * dim
        self._hw: tuple[int, int] | None = None

    def _position(self, h: int, w: int) -> torch.Tensor:
        if h * w == self.pos.shape[1] and h == self.feat_size:
            return self.pos
        # Another input size than the one built for: resize the learned grid (as ViTs do).
        grid = self.pos.reshape(1, self.feat_size, self.feat_size, -1).permute(0, 3, 1, 2)
        grid = F.interpolate(grid, size=(h, w), mode="bilinear", align_corners=False)
        return grid.flatten(2).transpose(1, 2)

    def forward_with_embedding(self, feat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n, _, h, w = feat.shape
        self._hw = (h, w)
        tokens = self.proj(feat).flatten(2).transpose(1, 2) + self._position(h, w)  # (N, HW, D)
        q = self.queries.unsqueeze(0).expand(n, -1, -1)
        q = q + self.cross(self.norm_q(q), self.norm_kv(tokens))
        normed = self.norm_self(q)
        q = q + self.self_attn(normed, normed)
        q = q + self.ffn(self.norm_ffn(q))
        q = self.norm_out(q)
        return self.classifier(q).squeeze(-1), q.flatten(1)

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        return self.forward_with_embedding(feat)[0]

    def attention_maps(self) -> torch.Tensor | None:
        weights = self.cross.last_weights
        if weights is None or self._hw is None:
            return None
        return weights.mean(dim=1).reshape(weights.shape[0], self.num_aus, *self._hw)


class AUGraphHead(nn.Module):
    """AU relation graph with a learned adjacency (after arXiv 2001.01168, spatial part).

    Node features: each AU's softmax attention over the map pools a C-vector, mapped by its own
    linear layer. Edges: ``softmax(adjacency_logits)`` row-wise, learned end to end (no
    predefined co-occurrence prior), initialised to favour self-loops. ``layers`` residual graph
    convolutions ``h <- h + relu(norm(adj @ h W))`` then a per-AU linear read-out.
    """

    def __init__(self, cin: int, num_aus: int, dim: int = 64, layers: int = 2, dropout: float = 0.0) -> None:
        super().__init__()
        if layers < 1:
            raise SpaceError(f"au_graph needs at least one graph layer, got {layers}")
        self.num_aus = num_aus
        self.locate = nn.Conv2d(cin, num_aus, 1)
        self.node = PerGroupLinear(num_aus, cin, dim)
        self.adjacency_logits = nn.Parameter(2.0 * torch.eye(num_aus))
        self.graph = nn.ModuleList(nn.Linear(dim, dim, bias=False) for _ in range(layers))
        self.norms = nn.ModuleList(nn.LayerNorm(dim) for _ in range(layers))
        self.dropout = nn.Dropout(dropout)
        self.classifier = PerGroupLinear(num_aus, dim, 1)
        self.embed_dim = num_aus * dim
        self._maps: torch.Tensor | None = None

    def adjacency(self) -> torch.Tensor:
        """The learned (A, A) row-stochastic AU adjacency."""
        return self.adjacency_logits.softmax(dim=-1)

    def forward_with_embedding(self, feat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        maps = spatial_softmax(self.locate(feat))  # (N, A, H, W), each sums to 1
        self._maps = maps.detach()
        pooled = torch.matmul(maps.flatten(2), feat.flatten(2).transpose(1, 2))  # (N, A, C)
        h = F.relu(self.node(pooled))
        adj = self.adjacency()
        for linear, norm in zip(self.graph, self.norms, strict=True):
            h = h + F.relu(norm(torch.matmul(adj, linear(h))))
        return self.classifier(self.dropout(h)).squeeze(-1), h.flatten(1)

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        return self.forward_with_embedding(feat)[0]

    def attention_maps(self) -> torch.Tensor | None:
        return self._maps
