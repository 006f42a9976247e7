"""The Lineage tab's graph, laid out here and drawn as inline SVG by
templates/registry/partials/lineage.html (no script: CSP allows none inline, and the page must
work without JavaScript).

Columns, left to right, each drawn only when it has something:

    datasets │ run │ copied from │ this version │ copies

Every node is a link (a run or version page, or the row of the table below that holds the
dataset's details), except what the user may not see: those are dashed boxes without names.
Texts are plain strings; the template escapes them (dataset names and sources are user input).
"""

from dataclasses import dataclass, field

from django.urls import NoReverseMatch, reverse

NODE_W, NODE_H = 176, 46
COL_GAP, ROW_GAP, PAD = 44, 12, 6
MAX_ROWS = 6  # nodes drawn per column; the rest is one "+ N more" node (the table lists all)
LABEL_CHARS = 22


@dataclass
class Node:
    kind: str  # dataset, run, copied-from, version, copy, more
    label: str
    sublabel: str
    title: str  # full text for the tooltip and screen readers
    href: str = ""
    hidden: bool = False  # something the user may not see: drawn dashed, never named
    current: bool = False
    x: int = 0
    y: int = 0

    @property
    def testid(self):
        return f"lineage-node-{self.kind}"

    @property
    def label_x(self):
        return self.x + 10

    @property
    def label_y(self):
        return self.y + 19

    @property
    def sublabel_y(self):
        return self.y + 36


@dataclass
class Edge:
    path: str


@dataclass
class Graph:
    width: int
    height: int
    nodes: list = field(default_factory=list)
    edges: list = field(default_factory=list)
    summary: str = ""
    node_w: int = NODE_W
    node_h: int = NODE_H


def _short(text, limit=LABEL_CHARS):
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def version_url(node):
    return reverse("version", args=node.url_parts) if node.visible else ""


def run_url(run):
    """The run page, when the user may see the run and run pages exist."""
    if run is None or not run.visible:
        return ""
    try:
        return reverse("run", args=[run.experiment_id, run.run_id])
    except NoReverseMatch:
        return ""


def experiment_url(run):
    if run is None or not run.visible:
        return ""
    try:
        return reverse("experiment", args=[run.experiment_id])
    except NoReverseMatch:
        return ""


def _more(count, what, href):
    return Node("more", f"+ {count} more", what, f"{count} more {what}, listed in the table below", href=href)


def _dataset_nodes(datasets):
    nodes = []
    for i, d in enumerate(datasets[:MAX_ROWS] if len(datasets) > MAX_ROWS else datasets):
        sub = " · ".join(p for p in ("dataset", d.context, d.source_type) if p)
        title = f"Dataset {d.name}" + (f" ({d.context})" if d.context else "") + (
            f", source {_short(d.source_label, 200)}" if d.source else "") + (f", digest {d.digest}" if d.digest else "")
        nodes.append(Node("dataset", _short(d.name or "(unnamed)"), _short(sub, 30), title, href=f"#lineage-dataset-{i + 1}"))
    if len(datasets) > MAX_ROWS:
        nodes[-1] = _more(len(datasets) - MAX_ROWS + 1, "datasets", "#lineage-datasets")
    return nodes


def _run_node(run):
    if run.visible:
        label = run.name or run.run_id
        sub = " · ".join(p for p in ("run", run.status.lower(), run.experiment_name) if p)
        title = f"Run {run.name or run.run_id} ({run.run_id}) in experiment {run.experiment_name}"
        return Node("run", _short(label), _short(sub, 30), title, href=run_url(run) or "#lineage-run")
    why = "a run you cannot see" if run.exists else "not in this server's tracking"
    return Node("run", _short(f"run {run.run_id}"), why, f"Run {run.run_id}: {why}", href="#lineage-run")


def _version_node(kind, node, *, what):
    if not node.visible:
        return Node(kind, "a version you cannot see", what, f"{what.capitalize()}: a version you cannot see", hidden=True)
    label = f"{node.full_name.rsplit('.', 1)[-1]} v{node.version}"
    sub = f"{what} · {node.full_name.split('.', 1)[0]}"
    return Node(kind, _short(label), _short(sub, 30), f"{what.capitalize()}: {node.full_name} version {node.version} "
                f"({node.status})", href=version_url(node))


def build(lineage):
    columns = []
    if lineage.datasets:
        columns.append(_dataset_nodes(lineage.datasets))
    if lineage.run:
        columns.append([_run_node(lineage.run)])
    if lineage.copied_from:
        columns.append([_version_node("copied-from", lineage.copied_from, what="copied from")])
    me = _version_node("version", lineage.version, what="this version")
    me.current = True
    columns.append([me])
    copies = [_version_node("copy", c, what="copy") for c in lineage.copies]
    if lineage.hidden_copies:
        n = lineage.hidden_copies
        copies.append(Node("copy", f"{n} cop{'y' if n == 1 else 'ies'}", "you cannot see",
                           f"{n} cop{'y' if n == 1 else 'ies'} in models you cannot see", hidden=True))
    if len(copies) > MAX_ROWS:
        copies = copies[: MAX_ROWS - 1] + [_more(len(copies) - MAX_ROWS + 1, "copies", "#lineage-copies")]
    if copies:
        columns.append(copies)

    rows = max(len(c) for c in columns)
    height = PAD * 2 + rows * NODE_H + (rows - 1) * ROW_GAP
    width = PAD * 2 + len(columns) * NODE_W + (len(columns) - 1) * COL_GAP
    for ci, column in enumerate(columns):
        col_h = len(column) * NODE_H + (len(column) - 1) * ROW_GAP
        top = PAD + (height - 2 * PAD - col_h) // 2
        for ri, node in enumerate(column):
            node.x = PAD + ci * (NODE_W + COL_GAP)
            node.y = top + ri * (NODE_H + ROW_GAP)
    edges = []
    for left, right in zip(columns, columns[1:]):
        for a in left:
            for b in right:
                x1, y1 = a.x + NODE_W, a.y + NODE_H // 2
                x2, y2 = b.x - 4, b.y + NODE_H // 2
                mid = (x1 + x2) // 2
                edges.append(Edge(f"M{x1},{y1} C{mid},{y1} {mid},{y2} {x2},{y2}"))
    parts = []
    if lineage.datasets:
        parts.append(f"{len(lineage.datasets)} dataset{'s' if len(lineage.datasets) != 1 else ''}")
    if lineage.run:
        parts.append("run")
    if lineage.copied_from:
        parts.append("copied from a version")
    parts.append("this version")
    count = len(lineage.copies) + lineage.hidden_copies
    if count:
        parts.append(f"{count} cop{'y' if count == 1 else 'ies'}")
    return Graph(width=width, height=height, nodes=[n for c in columns for n in c], edges=edges,
                 summary=" → ".join(parts))
