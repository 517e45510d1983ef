"""DARTS cell genotypes: layout of the edge matrix, derivation from weights, validation.

A DARTS genotype is a JSON dict::

    {"space": "darts", "nodes": 4,
     "normal": [["sep_conv_3x3", 0], ["skip_connect", 1], ...],   # 2 (op, input) pairs per node
     "normal_concat": [2, 3, 4, 5],
     "reduce": [...], "reduce_concat": [2, 3, 4, 5]}

Inputs 0 and 1 are the two previous cells' outputs, input ``j >= 2`` is intermediate node ``j``.
The weight matrix of a space with ``n`` nodes has ``2 * E`` rows (``E = 2 + 3 + ... + (n + 1)``:
the normal cell's edges, then the reduction cell's), each row listing node 2's inputs 0, 1, then
node 3's inputs 0, 1, 2, and so on -- the authors' packing, so their theta files line up with ours.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np

from search_spaces.ops import PARAMETRIC_OPS, PRIMITIVES

CELL_TYPES = ("normal", "reduce")
NONE_INDEX = PRIMITIVES.index("none")
NON_PARAM_INDICES = tuple(i for i, op in enumerate(PRIMITIVES) if op != "none" and op not in PARAMETRIC_OPS)
PARAM_INDICES = tuple(i for i, op in enumerate(PRIMITIVES) if op in PARAMETRIC_OPS)


class GenotypeError(ValueError):
    """A malformed genotype (unknown op, wrong shape, bad input index)."""


def cell_edges(nodes: int) -> list[tuple[int, int]]:
    """(node, input) pairs of one cell in row order; nodes are numbered from 2."""
    return [(2 + i, j) for i in range(nodes) for j in range(2 + i)]


def num_cell_edges(nodes: int) -> int:
    return sum(2 + i for i in range(nodes))


def _split_rows(matrix: np.ndarray, nodes: int) -> list[np.ndarray]:
    """Rows of one cell grouped per intermediate node."""
    groups, start = [], 0
    for i in range(nodes):
        groups.append(matrix[start : start + 2 + i])
        start += 2 + i
    return groups


def _check_weights(weights: np.ndarray, nodes: int) -> np.ndarray:
    w = np.asarray(weights, dtype=float)
    expected = (2 * num_cell_edges(nodes), len(PRIMITIVES))
    if w.shape != expected:
        raise GenotypeError(f"weight matrix has shape {w.shape}, expected {expected} for {nodes} nodes")
    if not np.all(np.isfinite(w)):
        raise GenotypeError("weight matrix contains NaN or infinite values")
    return w


def _parse_cell(cell_weights: np.ndarray, nodes: int, k: int = 2) -> list[list[Any]]:
    """Per edge the best non-``none`` op; per node the ``k`` edges whose best op weighs most.

    Ties go to the lower input index and the lower op index (stable sorts), so the result is a
    pure function of the weights.
    """
    gene: list[list[Any]] = []
    for rows in _split_rows(cell_weights, nodes):
        candidates = rows.copy()
        candidates[:, NONE_INDEX] = -np.inf
        best_op = np.argmax(candidates, axis=1)
        best_val = candidates[np.arange(len(rows)), best_op]
        order = np.argsort(-best_val, kind="stable")[:k]
        for src in sorted(int(s) for s in order):
            gene.append([PRIMITIVES[int(best_op[src])], src])
    return gene


def derive_genotype(weights: np.ndarray, nodes: int = 4) -> dict[str, Any]:
    """DARTS rule: best non-none op per edge, then the top-2 incoming edges per node."""
    w = _check_weights(weights, nodes)
    e = num_cell_edges(nodes)
    concat = list(range(2, 2 + nodes))
    return {
        "space": "darts",
        "nodes": nodes,
        "normal": _parse_cell(w[:e], nodes),
        "normal_concat": concat,
        "reduce": _parse_cell(w[e:], nodes),
        "reduce_concat": list(concat),
    }


def _graph_height(graph: Sequence[tuple[int, int]]) -> int:
    heights: list[int] = []
    for a, b in graph:
        ha = 0 if a < 2 else heights[a - 2]
        hb = 0 if b < 2 else heights[b - 2]
        heights.append(max(ha, hb) + 1)
    return max(heights)


def _capped_cell(cell_weights: np.ndarray, nodes: int, cap: int) -> list[list[Any]]:
    """Best normal cell with exactly ``cap`` parameter-free ops, as the authors' generator does.

    For every choice of two inputs per node and every way of putting the parameter-free op (best
    of max/avg pool and skip) on ``cap`` of the ``2 * nodes`` slots and the best parametric op on
    the rest, score = sum of the chosen ops' weights; the highest score wins, ties to the shallower
    cell. Given the graph the best slot assignment is the ``cap`` slots where the parameter-free op
    gains most, so only the graphs are enumerated.
    """
    per_node = _split_rows(cell_weights, nodes)
    np_best = [rows[:, NON_PARAM_INDICES].argmax(axis=1) for rows in per_node]
    p_best = [rows[:, PARAM_INDICES].argmax(axis=1) for rows in per_node]
    best: tuple[float, int, list[list[Any]]] | None = None
    input_pairs = [list(itertools.combinations(range(2 + i), 2)) for i in range(nodes)]
    for graph in itertools.product(*input_pairs):
        slots = []  # (node, src, np_value, p_value)
        for i, pair in enumerate(graph):
            rows = per_node[i]
            for src in pair:
                npi = NON_PARAM_INDICES[np_best[i][src]]
                pi = PARAM_INDICES[p_best[i][src]]
                slots.append((src, npi, pi, float(rows[src, npi]), float(rows[src, pi])))
        gains = np.array([s[3] - s[4] for s in slots])
        chosen = set(np.argsort(-gains, kind="stable")[:cap].tolist())
        score = sum(s[3] if idx in chosen else s[4] for idx, s in enumerate(slots))
        height = _graph_height(graph)
        if best is None or score > best[0] + 1e-12 or (abs(score - best[0]) <= 1e-12 and height < best[1]):
            gene = [[PRIMITIVES[s[1] if idx in chosen else s[2]], s[0]] for idx, s in enumerate(slots)]
            best = (score, height, gene)
    assert best is not None
    return best[2]


def skip_capped_genotype(weights: np.ndarray, nodes: int = 4, cap: int = 2) -> dict[str, Any]:
    """The normal cell limited to ``cap`` parameter-free ops (pools/skip); reduction cell as usual.

    DARTS-style derivation tends to collapse onto skip connections; the authors therefore emit one
    variant per cap (2..6) and pick among them by size.
    """
    w = _check_weights(weights, nodes)
    cap = max(0, min(int(cap), 2 * nodes))
    e = num_cell_edges(nodes)
    genotype = derive_genotype(w, nodes)
    genotype["normal"] = _capped_cell(w[:e], nodes, cap)
    return genotype


def genotype_from_choice(choice: Sequence[int], nodes: int = 4) -> dict[str, Any]:
    """Genotype of one discrete path: one-hot weights, then the usual derivation.

    Edges whose chosen op is ``none`` only enter when a node has fewer than two other inputs.
    """
    one_hot = choice_to_weights(choice, nodes)
    # Give 'none' edges a tiny score on max_pool so they lose against any chosen op.
    off = one_hot[:, NONE_INDEX] > 0
    one_hot[off, NONE_INDEX] = 0.0
    one_hot[off, 0] = 1e-6
    return derive_genotype(one_hot, nodes)


def choice_to_weights(choice: Sequence[int], nodes: int) -> np.ndarray:
    n_rows = 2 * num_cell_edges(nodes)
    if len(choice) != n_rows:
        raise GenotypeError(f"choice has {len(choice)} entries, expected {n_rows} (one op per edge)")
    w = np.zeros((n_rows, len(PRIMITIVES)))
    for row, op in enumerate(choice):
        if not 0 <= int(op) < len(PRIMITIVES):
            raise GenotypeError(f"choice[{row}] = {op} is not an op index in 0..{len(PRIMITIVES) - 1}")
        w[row, int(op)] = 1.0
    return w


def genotype_to_choice(genotype: dict[str, Any]) -> list[int]:
    """The single path of a genotype: its ops on its edges, ``none`` everywhere else."""
    g = validate_genotype(genotype)
    nodes = g["nodes"]
    edges = cell_edges(nodes)
    choice = [NONE_INDEX] * (2 * len(edges))
    for c, cell in enumerate(CELL_TYPES):
        for k, (op, src) in enumerate(g[cell]):
            node = 2 + k // 2
            choice[c * len(edges) + edges.index((node, src))] = PRIMITIVES.index(op)
    return choice


def validate_genotype(genotype: Any) -> dict[str, Any]:
    """Return a normalised copy of a DARTS genotype or raise :class:`GenotypeError` naming the problem."""
    if not isinstance(genotype, dict):
        raise GenotypeError(f"a DARTS genotype must be a JSON object, got {type(genotype).__name__}")
    space = genotype.get("space", "darts")
    if space != "darts":
        raise GenotypeError(f"genotype is for space '{space}', not 'darts'")
    missing = [k for k in CELL_TYPES if k not in genotype]
    if missing:
        raise GenotypeError(f"genotype lacks key(s) {', '.join(missing)} (needs 'normal' and 'reduce')")
    normal = genotype["normal"]
    if not isinstance(normal, list) or len(normal) == 0 or len(normal) % 2:
        raise GenotypeError("genotype 'normal' must be a non-empty list with 2 [op, input] pairs per node")
    nodes = int(genotype.get("nodes", len(normal) // 2))
    out: dict[str, Any] = {"space": "darts", "nodes": nodes}
    for cell in CELL_TYPES:
        pairs = genotype[cell]
        if not isinstance(pairs, list) or len(pairs) != 2 * nodes:
            raise GenotypeError(
                f"genotype '{cell}' must list {2 * nodes} [op, input] pairs for {nodes} nodes"
            )
        clean = []
        for k, pair in enumerate(pairs):
            if not isinstance(pair, list | tuple) or len(pair) != 2:
                raise GenotypeError(f"genotype '{cell}'[{k}] must be an [op, input] pair, got {pair!r}")
            op, src = pair
            if op not in PRIMITIVES or op == "none":
                valid = ", ".join(p for p in PRIMITIVES if p != "none")
                raise GenotypeError(f"genotype '{cell}'[{k}]: unknown op '{op}' (valid ops: {valid})")
            node = 2 + k // 2
            if isinstance(src, bool) or not isinstance(src, int) or not 0 <= src < node:
                raise GenotypeError(
                    f"genotype '{cell}'[{k}]: input {src!r} of node {node} must be an integer "
                    f"in 0..{node - 1}"
                )
            clean.append([op, src])
        out[cell] = clean
        concat_key = f"{cell}_concat"
        concat = genotype.get(concat_key, list(range(2, 2 + nodes)))
        concat = list(concat)
        if not concat or any(
            isinstance(c, bool) or not isinstance(c, int) or not 2 <= c < 2 + nodes for c in concat
        ):
            raise GenotypeError(
                f"genotype '{concat_key}' must list intermediate node indices in 2..{nodes + 1}"
            )
        out[concat_key] = concat
    return out


def count_ops(genotype: dict[str, Any], cell: str = "normal") -> dict[str, int]:
    counts: dict[str, int] = {}
    for op, _ in genotype[cell]:
        counts[op] = counts.get(op, 0) + 1
    return counts
