"""Pictures of a 2-D map and the Embedding Projector files.

- ``draw_png``: matplotlib (Agg, no pyplot state), coloured by genre, highlighted books and their
  nearest neighbours labelled, exactly ``width`` x ``height`` pixels;
- ``write_html``: a standalone plotly page that opens offline (``html_page.py``);
- ``write_projector``: vectors.tsv, metadata.tsv and projector_config.json for the TensorFlow
  Embedding Projector.

matplotlib and plotly come from the optional `maps` extra and are imported only when drawing.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bookvec.model.analysis.reduce import require
from bookvec.outfiles import output_file
from bookvec.safetext import printable

# tab10 without its grey, then tab20's light tints and two of tab20b: 20 colours a reader can
# tell apart; "other" is the light grey that none of them is.
PALETTE: tuple[str, ...] = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#bcbd22", "#17becf", "#393b79",
    "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5",
    "#c49c94", "#f7b6d2", "#dbdb8d", "#9edae5", "#637939",
)  # fmt: skip
OTHER_COLOUR = "#bdbdbd"
MAX_GROUPS = len(PALETTE)


@dataclass(frozen=True)
class Highlight:
    """A picked-out point and its nearest neighbours in the full space: [(row, cosine)]."""

    index: int
    neighbours: list[tuple[int, float]] = field(default_factory=list)


@dataclass(frozen=True)
class MapData:
    """Everything a picture needs, already decided: where, what colour, what to label."""

    coords: np.ndarray  # float (n, 2)
    names: list[str]  # title (or link name) per point
    groups: list[str | None]  # colour group per point; None = other
    legend: list[tuple[str, int]]  # the coloured groups in colour order, with their sizes
    hover_fields: tuple[str, ...] = ()  # labels of the hover lines after the name
    hover: list[list[str]] = field(default_factory=list)  # per point, one value per field
    highlights: list[Highlight] = field(default_factory=list)
    title: str = ""
    other_label: str = "other genres"
    marked: list[bool] = field(default_factory=list)  # per point: drawn ringed (upserted)
    marked_label: str = "upserted"

    def marked_rows(self) -> np.ndarray:
        return np.flatnonzero(np.asarray(self.marked, dtype=bool)) if self.marked else np.array([])

    def shown_name(self, row: int) -> str:
        """The name as hover text shows it: a marked point says so."""
        marked = bool(self.marked) and self.marked[row]
        return f"{self.names[row]} ({self.marked_label})" if marked else self.names[row]

    def colour(self, group: str | None) -> str:
        for rank, (name, _) in enumerate(self.legend):
            if name == group:
                return PALETTE[rank % MAX_GROUPS]
        return OTHER_COLOUR

    def members(self) -> list[tuple[str | None, np.ndarray]]:
        """(group, row indices) for "other" first (drawn underneath), then each legend group."""
        rows: dict[str | None, list[int]] = {None: []}
        rows.update((name, []) for name, _ in self.legend)
        for i, group in enumerate(self.groups):
            rows[group if group in rows else None].append(i)
        return [(name, np.array(r, dtype=int)) for name, r in rows.items() if r]


# --- PNG ---------------------------------------------------------------------------------------


def _point_size(n: int) -> float:
    """Marker area in points^2: big for a few hundred books, small for tens of thousands."""
    return float(np.clip(12000.0 / max(n, 1), 1.0, 30.0))


def draw_png(data: MapData, out: Path, *, width: int = 1600, height: int = 1200) -> None:
    """Write the map as a PNG of exactly ``width`` x ``height`` pixels. Titles are drawn as
    typed: a ``$`` is not mathtext and no LaTeX runs, whatever the user's matplotlibrc says."""
    require("matplotlib", "matplotlib")
    import matplotlib

    with matplotlib.rc_context({"text.parse_math": False, "text.usetex": False}):
        _draw_png(data, out, width=width, height=height)


def _draw_png(data: MapData, out: Path, *, width: int, height: int) -> None:
    from matplotlib import patheffects
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    dpi = 100
    fig = Figure(figsize=(width / dpi, height / dpi), dpi=dpi, facecolor="white")
    FigureCanvasAgg(fig)
    n_other = sum(1 for g in data.groups if g is None)
    entries = [(PALETTE[r % MAX_GROUPS], f"{g} ({c:,})") for r, (g, c) in enumerate(data.legend)]
    if data.legend and n_other:
        entries.append((OTHER_COLOUR, f"{data.other_label} ({n_other:,})"))
    handles = [_legend_dot(Line2D, colour, label) for colour, label in entries]
    marked = data.marked_rows()
    if len(marked):
        label = f"{data.marked_label} ({len(marked):,})"
        handles.append(_legend_mark(Line2D, "D", 6, "none", label))
    if data.highlights:
        handles.append(_legend_mark(Line2D, "*", 12, "white", "highlighted"))
        handles.append(_legend_mark(Line2D, "o", 7, "none", "nearest (cosine)"))
    longest = max((len(h.get_label()) for h in handles), default=0)
    legend_space = float(np.clip((longest * 6.5 + 50) / width, 0.12, 0.4)) if handles else 0.0
    box = (0.01, 0.01, 0.98 - legend_space, 0.92)
    ax = fig.add_axes(box)
    ax.set_axis_off()

    xy = np.asarray(data.coords, dtype=float)
    size = _point_size(len(xy))
    for group, rows in data.members():
        ax.scatter(
            xy[rows, 0],
            xy[rows, 1],
            s=size,
            c=data.colour(group),
            alpha=0.6 if group is None else 0.85,
            linewidths=0,
            zorder=1 if group is None else 2,
        )
    if len(marked):  # ringed over their genre colour
        ax.scatter(
            xy[marked, 0], xy[marked, 1], s=max(size * 3, 12), marker="D", facecolors="none",
            edgecolors="black", linewidths=0.7, zorder=3,
        )  # fmt: skip
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    span = np.maximum(hi - lo, 1e-9)
    pad = span * (0.12 if data.highlights else 0.03)
    lo, hi = lo - pad, hi + pad
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    # data units per pixel, to keep labels (about 0.6 em per character) inside the picture
    per_px = (hi - lo) / np.array([box[2] * width, box[3] * height])
    outline = [patheffects.withStroke(linewidth=3, foreground="white")]
    for highlight in data.highlights:
        bx, by = xy[highlight.index]
        angles = _spread_angles(xy, highlight)
        for angle, (row, cosine) in zip(angles, highlight.neighbours, strict=True):
            text = f"{data.names[row]} ({cosine:.2f})"
            spot, ha = _label_spot(
                (bx, by), angle, 0.08 * span, len(text) * 8 * 0.6 * per_px[0], lo, hi
            )
            ax.plot([bx, xy[row, 0]], [by, xy[row, 1]], color="#444444", lw=0.6, alpha=0.6)
            ax.scatter(*xy[row], s=45, facecolors="none", edgecolors="black", zorder=4)
            ax.annotate(
                text,
                xy=tuple(xy[row]),
                xytext=spot,
                fontsize=8,
                ha=ha,
                va="center",
                arrowprops={"arrowstyle": "-", "color": "#888888", "linewidth": 0.5},
                path_effects=outline,
                zorder=6,
            )
        colour = data.colour(data.groups[highlight.index])
        ax.scatter([bx], [by], s=260, marker="*", c=colour, edgecolors="black", zorder=5)
        name = data.names[highlight.index]
        half = len(name) * 11 * 0.62 * per_px[0] / 2
        ha = "left" if bx - half < lo[0] else "right" if bx + half > hi[0] else "center"
        ax.annotate(
            name,
            xy=(bx, by),
            xytext=(0, 12),
            textcoords="offset points",
            ha=ha,
            fontsize=11,
            fontweight="bold",
            path_effects=outline,
            zorder=7,
        )
    if handles:
        fig.legend(
            handles=handles,
            loc="center left",
            bbox_to_anchor=(1.0 - legend_space + 0.005, 0.5),
            frameon=False,
            fontsize=9,
            title="genre" if data.legend else None,
        )
    if data.title:
        fig.suptitle(data.title, x=0.01, y=0.985, ha="left", va="top", fontsize=12)
    out.parent.mkdir(parents=True, exist_ok=True)
    with output_file(out, what="--out") as where, open(where, "wb") as handle:
        fig.savefig(handle, dpi=dpi, format="png", facecolor="white")


def _label_spot(
    origin: tuple[float, float],
    angle: float,
    radius: np.ndarray,
    text_width: float,
    lo: np.ndarray,
    hi: np.ndarray,
) -> tuple[tuple[float, float], str]:
    """Where a neighbour's label goes (at ``angle`` from its book) and how it is aligned,
    mirrored left-right when the text would run off the picture."""
    dx, dy = radius[0] * math.cos(angle), radius[1] * math.sin(angle)
    x = origin[0] + dx
    if dx >= 0 and x + text_width > hi[0]:
        x = origin[0] - abs(dx)
    elif dx < 0 and x - text_width < lo[0]:
        x = origin[0] + abs(dx)
    ha = "left" if x >= origin[0] else "right"
    y = float(
        np.clip(origin[1] + dy, lo[1] + 0.02 * (hi[1] - lo[1]), hi[1] - 0.02 * (hi[1] - lo[1]))
    )
    return (float(x), y), ha


def _legend_dot(line2d: type, colour: str, label: str):
    return line2d(
        [], [], marker="o", linestyle="", markersize=7, markerfacecolor=colour,
        markeredgewidth=0, label=label,
    )  # fmt: skip


def _legend_mark(line2d: type, marker: str, size: int, face: str, label: str):
    return line2d(
        [], [], marker=marker, linestyle="", markersize=size, markerfacecolor=face,
        markeredgecolor="black", label=label,
    )  # fmt: skip


def _spread_angles(xy: np.ndarray, highlight: Highlight) -> list[float]:
    """Label directions for a highlight's neighbours: their own bearing from the book, spread to
    at least 360/k degrees apart so that labels of one group do not sit on each other."""
    k = len(highlight.neighbours)
    if k == 0:
        return []
    origin = xy[highlight.index]
    bearings = [
        math.atan2(xy[row, 1] - origin[1], xy[row, 0] - origin[0])
        for row, _ in highlight.neighbours
    ]
    order = sorted(range(k), key=lambda i: bearings[i])
    step = 2 * math.pi / k
    angles = [0.0] * k
    previous = -math.inf
    for i in order:
        angles[i] = previous = max(bearings[i], previous + step)
    return angles


def write_html(data: MapData, out: Path) -> None:
    """A standalone plotly page of the map (``bookvec.model.analysis.html_page``)."""
    from bookvec.model.analysis.html_page import write_html as write

    write(data, out)


# --- the Embedding Projector ---------------------------------------------------------------------

PROJECTOR_COLUMNS = ("title", "author", "genres", "year", "umap_x", "umap_y")


def tsv_cell(value: object) -> str:
    """One metadata cell: tabs and line breaks escaped (as \\t, \\n, \\r), every other
    control character too (safetext.printable: ESC, NUL, C1, bidi overrides), None empty."""
    if value is None:
        return ""
    return printable(value)


def write_projector(
    out_dir: Path,
    vectors: np.ndarray,
    metadata: Sequence[Sequence[object]],
    *,
    tensor_name: str,
    columns: Sequence[str] = PROJECTOR_COLUMNS,
) -> dict[str, str]:
    """Write vectors.tsv (no header), metadata.tsv (a header row, then one row per vector) and
    projector_config.json; return {what: path}."""
    if len(metadata) != len(vectors):
        raise ValueError(f"{len(metadata)} metadata rows for {len(vectors)} vectors")
    out_dir.mkdir(parents=True, exist_ok=True)
    vectors_path = out_dir / "vectors.tsv"
    metadata_path = out_dir / "metadata.tsv"
    config_path = out_dir / "projector_config.json"
    with output_file(vectors_path, what="projector file") as where:
        np.savetxt(where, np.asarray(vectors, dtype=np.float32), fmt="%.6f", delimiter="\t")
    with (
        output_file(metadata_path, what="projector file") as where,
        open(where, "w", encoding="utf-8", newline="\n") as handle,
    ):
        handle.write("\t".join(columns) + "\n")
        for row in metadata:
            handle.write("\t".join(tsv_cell(value) for value in row) + "\n")
    config = {
        "embeddings": [
            {
                "tensorName": tensor_name,
                "tensorShape": [int(len(vectors)), int(np.shape(vectors)[1])],
                "tensorPath": vectors_path.name,
                "metadataPath": metadata_path.name,
            }
        ]
    }
    with output_file(config_path, what="projector file") as where:
        where.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    return {
        "vectors": str(vectors_path),
        "metadata": str(metadata_path),
        "config": str(config_path),
    }
