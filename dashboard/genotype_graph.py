"""Genotypes as Graphviz DOT source, rendered in the browser by ``st.graphviz_chart``.

Only DOT *strings* are built here: the ``dot`` binary need not be installed on the server.
A DARTS cell is drawn the way the DARTS paper draws it: the two previous cells' outputs
``c_{k-2}``, ``c_{k-1}`` on the left, the intermediate nodes, every chosen edge labelled with its
op, and the concatenated output ``c_{k}``. Other spaces (a chain of per-layer choices) become a
left-to-right chain.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

OP_COLORS = {
    "max_pool_3x3": "#8c564b",
    "avg_pool_3x3": "#bcbd22",
    "skip_connect": "#7f7f7f",
    "sep_conv_3x3": "#1f77b4",
    "sep_conv_5x5": "#17becf",
    "dil_conv_3x3": "#2ca02c",
    "dil_conv_5x5": "#98df8a",
}


def _quote(value: object) -> str:
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def is_darts_genotype(genotype: Any) -> bool:
    return isinstance(genotype, dict) and isinstance(genotype.get("normal"), list) and "reduce" in genotype


def darts_cell_dot(genotype: dict[str, Any], cell: str = "normal") -> str:
    """DOT of one DARTS cell (``cell`` = ``normal`` or ``reduce``)."""
    pairs: Sequence[Sequence[Any]] = genotype.get(cell) or []
    nodes = int(genotype.get("nodes", len(pairs) // 2))
    concat = list(genotype.get(f"{cell}_concat", range(2, 2 + nodes)))
    lines = [
        "digraph cell {",
        "  rankdir=LR;",
        f"  label={_quote(cell + ' cell')}; labelloc=t; fontsize=18; fontname=Helvetica;",
        '  node [style="filled,rounded", shape=box, fontname=Helvetica, fontsize=14, penwidth=1.5];',
        "  edge [fontname=Helvetica, fontsize=11, penwidth=1.5];",
        '  "c_{k-2}" [fillcolor=darkseagreen2];',
        '  "c_{k-1}" [fillcolor=darkseagreen2];',
    ]
    for i in range(nodes):
        lines.append(f'  "{i}" [fillcolor=lightblue];')
    lines.append('  "c_{k}" [fillcolor=palegoldenrod];')

    def name(src: int) -> str:
        return {0: "c_{k-2}", 1: "c_{k-1}"}.get(int(src), str(int(src) - 2))

    for k, pair in enumerate(pairs):
        op, src = pair[0], pair[1]
        color = OP_COLORS.get(str(op), "black")
        lines.append(
            f"  {_quote(name(src))} -> {_quote(k // 2)} [label={_quote(op)}, color={_quote(color)}];"
        )
    for node in concat:
        lines.append(f'  {_quote(int(node) - 2)} -> "c_{{k}}" [color=gray];')
    lines.append("}")
    return "\n".join(lines)


def chain_dot(names: Sequence[str], ops: Sequence[str], *, title: str = "") -> str:
    """A left-to-right chain ``input -> layer_i(op) -> output`` for sequential spaces."""
    lines = [
        "digraph chain {",
        "  rankdir=LR;",
        '  node [style="filled,rounded", shape=box, fontname=Helvetica, fontsize=12, fillcolor=lightblue];',
    ]
    if title:
        lines.append(f"  label={_quote(title)}; labelloc=t;")
    lines.append('  "input" [fillcolor=darkseagreen2]; "output" [fillcolor=palegoldenrod];')
    prev = "input"
    for i, (name, op) in enumerate(zip(names, ops, strict=False)):
        node = f"n{i}"
        label = _quote(name)[:-1] + "\\n" + _quote(op)[1:]  # DOT's own line break escape
        lines.append(f"  {node} [label={label}];")
        lines.append(f"  {_quote(prev)} -> {node};")
        prev = node
    lines.append(f'  {_quote(prev)} -> "output";')
    lines.append("}")
    return "\n".join(lines)


def genotype_dots(genotype: Any, plan: dict[str, Any] | None = None) -> dict[str, str]:
    """All graphs of a genotype, by title: the two DARTS cells, or one chain for sequential spaces.

    Sequential genotypes are recognised by a list of op names under ``ops``/``layers``/``choice``
    (with decision names from the plan when they line up), NNI genotypes by their ``arch`` dict
    (one node per decision label); anything else yields no graph and the page shows the JSON only.
    """
    if is_darts_genotype(genotype):
        return {cell: darts_cell_dot(genotype, cell) for cell in ("normal", "reduce")}
    if not isinstance(genotype, dict):
        return {}
    arch = genotype.get("arch")
    if isinstance(arch, dict) and arch:  # an NNI frozen architecture: {label: value}
        values = ["+".join(map(str, v)) if isinstance(v, list) else str(v) for v in arch.values()]
        return {str(genotype.get("space", "arch")): chain_dot([str(k) for k in arch], values)}
    for key in ("ops", "layers", "choice", "blocks"):
        seq = genotype.get(key)
        if isinstance(seq, list) and seq and all(isinstance(s, str | int | float) for s in seq):
            ops = [str(s) for s in seq]
            decisions = [
                str(d.get("name"))
                if isinstance(d, dict)
                else str(d[0])
                if isinstance(d, list | tuple)
                else str(d)
                for d in (plan or {}).get("decisions") or []
            ]
            names = decisions if len(decisions) == len(ops) else [f"{key}[{i}]" for i in range(len(ops))]
            return {str(genotype.get("space", key)): chain_dot(names, ops)}
    return {}
