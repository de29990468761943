"""Draw a `scratch.scalar.Scalar` graph with matplotlib: leaves left, the output right.

Each node is a box with its label and operation, its value and its gradient; an arrow runs from
every parent to the node it feeds. Columns are the longest path from a leaf. A `Figure` is
built directly (no pyplot state): save it, or show it inline in a notebook.
"""

from __future__ import annotations

from matplotlib.figure import Figure

from scratch.scalar import Scalar

__all__ = ["draw_graph", "graph_layout"]


def graph_layout(root: Scalar) -> dict[int, tuple[float, float]]:
    """id(node) -> (column, row): an operation sits one column right of its deepest parent, a
    leaf just left of its first consumer; rows follow the parents' mean row, centred per column."""
    order = root.nodes()  # parents come first
    column: dict[int, int] = {}
    for node in order:
        if node.parents:
            column[id(node)] = 1 + max(column.get(id(p), 0) for p in node.parents)
    for parent, child in root.edges():
        if not parent.parents:
            column[id(parent)] = min(column.get(id(parent), 10**9), column[id(child)] - 1)
    column.setdefault(id(root), 0)
    index = {id(n): i for i, n in enumerate(order)}
    row: dict[int, float] = {}
    for c in sorted(set(column.values())):
        members = [n for n in order if column[id(n)] == c]
        keys = {id(n): _row_key(n, row, index[id(n)] / len(order)) for n in members}
        members.sort(key=lambda n: keys[id(n)])
        for i, node in enumerate(members):
            row[id(node)] = i - (len(members) - 1) / 2
    return {i: (float(column[i]), -row[i]) for i in column}


def _row_key(node: Scalar, row: dict[int, float], fallback: float) -> float:
    """The mean row of a node's placed parents, relative to the column; else its DFS position."""
    rows = [row[id(p)] for p in node.parents if id(p) in row]
    return sum(rows) / len(rows) if rows else fallback * len(row) ** 0.5


def draw_graph(root: Scalar, *, width: float = 12.0) -> Figure:
    """The graph of `root` as a figure."""
    position = graph_layout(root)
    labels = root.labels()
    columns = 1 + max(x for x, _ in position.values())
    top = max(abs(y) for _, y in position.values()) + 0.6
    fig = Figure(figsize=(width, 0.9 * 2 * top))
    ax = fig.add_subplot()
    for parent, child in root.edges():
        ax.annotate(
            "", xy=position[id(child)], xytext=position[id(parent)],
            arrowprops={"arrowstyle": "->", "color": "0.5", "shrinkA": 28, "shrinkB": 28},
        )  # fmt: skip
    for node in root.nodes():
        op = node.op or ("input" if node.name is not None else "const")
        text = f"{labels[id(node)]}: {op}\n{node.data:.4g}\ngrad {node.grad:.4g}"
        kind = "input" if node.name is not None else "op" if node.parents else "const"
        colour = {"input": "#cfe3ff", "op": "#fff2cc", "const": "#eeeeee"}[kind]
        ax.text(
            *position[id(node)], text, ha="center", va="center", fontsize=7,
            bbox={"boxstyle": "round", "facecolor": colour, "edgecolor": "0.4"},
        )  # fmt: skip
    ax.set_xlim(-0.6, columns - 0.4)
    ax.set_ylim(-top, top)
    ax.axis("off")
    fig.tight_layout()
    return fig
