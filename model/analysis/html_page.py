"""The HTML map: a standalone plotly page (plotly.js inlined; hover details, legend toggles per
genre, a search box that centres a title) that opens offline (``offline_html``). plotly comes
from the optional `maps` extra and is imported only when writing."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from bookvec.model.analysis.plots import MapData
from bookvec.model.analysis.reduce import require
from bookvec.outfiles import output_file

PLOTLY_CONFIG = {
    "responsive": True,
    "displaylogo": False,
    "scrollZoom": True,
    "showSendToCloud": False,
    "topojsonURL": "",  # geo traces only, never drawn here; no default CDN either
    "toImageButtonOptions": {"format": "png", "filename": "bookvec-map"},
}

# The search box: a few lines of plain JS run after the plot exists ({plot_id} is the div).
SEARCH_JS = """
(function () {
  var gd = document.getElementById('{plot_id}');
  var box = document.createElement('div');
  box.style.cssText = 'position:absolute;top:46px;left:8px;z-index:10;font:13px sans-serif;' +
    'background:rgba(255,255,255,0.9);padding:6px;border:1px solid #ccc;border-radius:4px';
  box.innerHTML = '<input id="bookvec-search" list="bookvec-titles" size="34" ' +
    'placeholder="find a title" autocomplete="off"> <button id="bookvec-find">find</button> ' +
    '<button id="bookvec-reset">reset</button> <span id="bookvec-status"></span>' +
    '<datalist id="bookvec-titles"></datalist>';
  document.body.appendChild(box);
  var input = document.getElementById('bookvec-search');
  var list = document.getElementById('bookvec-titles');
  var status = document.getElementById('bookvec-status');
  var points = [], xs = [], ys = [], searchTrace = -1;
  gd.data.forEach(function (trace, t) {
    if (trace.meta === 'bookvec-search') { searchTrace = t; return; }
    if (trace.meta !== 'bookvec-points') return;
    for (var i = 0; i < trace.x.length; i++) {
      var row = trace.customdata[i];  // shown fields (HTML-escaped), then the raw title
      points.push({title: row[row.length - 1], x: trace.x[i], y: trace.y[i]});
      xs.push(trace.x[i]); ys.push(trace.y[i]);
    }
  });
  function esc(text) {  // plotly reads tags (<a href>, <b>) in labels: show them as typed
    return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  }
  var spanX = Math.max.apply(null, xs) - Math.min.apply(null, xs);
  var spanY = Math.max.apply(null, ys) - Math.min.apply(null, ys);
  function matches(query, limit) {
    var q = query.trim().toLowerCase(), exact = [], prefix = [], inside = [];
    if (!q) return [];
    for (var i = 0; i < points.length; i++) {
      var t = points[i].title.toLowerCase();
      if (t === q) exact.push(points[i]);
      else if (t.indexOf(q) === 0) prefix.push(points[i]);
      else if (t.indexOf(q) > 0) inside.push(points[i]);
    }
    return exact.concat(prefix, inside).slice(0, limit);
  }
  input.addEventListener('input', function () {
    list.innerHTML = '';
    if (input.value.trim().length < 2) return;
    matches(input.value, 20).forEach(function (p) {
      var option = document.createElement('option');
      option.value = p.title;
      list.appendChild(option);
    });
  });
  function find() {
    var hit = matches(input.value, 1)[0];
    if (!hit) { status.textContent = 'no title matches'; return; }
    status.textContent = '';
    var dx = 0.06 * spanX, dy = 0.06 * spanY;
    Plotly.relayout(gd, {
      'xaxis.range': [hit.x - dx, hit.x + dx], 'yaxis.range': [hit.y - dy, hit.y + dy],
      annotations: [{x: hit.x, y: hit.y, text: esc(hit.title), showarrow: true, arrowhead: 0,
                     ax: 0, ay: -36, bgcolor: 'rgba(255,255,255,0.9)', bordercolor: '#333'}]
    });
    if (searchTrace >= 0) Plotly.restyle(gd, {x: [[hit.x]], y: [[hit.y]]}, [searchTrace]);
  }
  document.getElementById('bookvec-find').addEventListener('click', find);
  input.addEventListener('keydown', function (e) { if (e.key === 'Enter') find(); });
  document.getElementById('bookvec-reset').addEventListener('click', function () {
    status.textContent = '';
    Plotly.relayout(gd, {'xaxis.autorange': true, 'yaxis.autorange': true, annotations: []});
    if (searchTrace >= 0) Plotly.restyle(gd, {x: [[]], y: [[]]}, [searchTrace]);
  });
  window.bookvecFind = function (title) { input.value = title; find(); };
  if (location.hash.indexOf('#find=') === 0) {
    window.bookvecFind(decodeURIComponent(location.hash.slice(6)));
  }
})();
"""

LABEL_POSITIONS = ("top right", "bottom right", "top left", "bottom left", "middle right")

# WebGL draws tens of thousands of points smoothly; SVG needs no GPU and suits small maps.
WEBGL_FROM = 5000


def write_html(data: MapData, out: Path) -> None:
    """Write a standalone interactive map: hover details, legend toggles, a search box."""
    go = require("plotly.graph_objects", "plotly")
    offline = require("plotly.offline", "plotly")
    xy = np.round(np.asarray(data.coords, dtype=float), 4)
    scatter = go.Scattergl if len(xy) >= WEBGL_FROM else go.Scatter
    size = float(np.clip(4000.0 / max(len(xy), 1) ** 0.75, 3.0, 9.0))
    template = "<b>%{customdata[0]}</b>" + "".join(
        f"<br>{label}: %{{customdata[{i + 1}]}}" for i, label in enumerate(data.hover_fields)
    )
    n_other = sum(1 for g in data.groups if g is None)
    counts = dict(data.legend)
    fig = go.Figure()
    for group, rows in data.members():
        label = (
            f"{group} ({counts[group]:,})"
            if group is not None
            else f"{data.other_label} ({n_other:,})"
        )
        fig.add_trace(
            scatter(
                x=xy[rows, 0].tolist(),
                y=xy[rows, 1].tolist(),
                mode="markers",
                name=_html(label),
                meta="bookvec-points",
                marker={
                    "color": data.colour(group),
                    "size": size,
                    "opacity": 0.5 if group is None else 0.85,
                },
                customdata=[
                    [_html(data.shown_name(r)), *map(_html, _hover(data, r)), data.names[r]]
                    for r in rows
                ],
                hovertemplate=template + "<extra></extra>",
            )
        )
    marked = data.marked_rows()
    if len(marked):  # rings over their genre colour; the search box skips this trace
        fig.add_trace(
            scatter(
                x=xy[marked, 0].tolist(),
                y=xy[marked, 1].tolist(),
                mode="markers",
                name=_html(f"{data.marked_label} ({len(marked):,})"),
                meta="bookvec-marked",
                marker={"symbol": "diamond-open", "size": size + 5, "color": "black"},
                customdata=[
                    [_html(data.shown_name(r)), *map(_html, _hover(data, r))] for r in marked
                ],
                hovertemplate=template + "<extra></extra>",
            )
        )
    _add_highlights(go, fig, data, xy)
    fig.add_trace(
        go.Scatter(
            x=[],
            y=[],
            mode="markers",
            meta="bookvec-search",
            showlegend=False,
            hoverinfo="skip",
            marker={
                "symbol": "circle-open",
                "size": 24,
                "color": "black",
                "line": {"width": 3, "color": "black"},
            },
        )
    )
    fig.update_layout(
        title={"text": _html(data.title), "x": 0.01, "xanchor": "left", "y": 0.98},
        template="plotly_white",
        xaxis={"visible": False},
        yaxis={"visible": False, "scaleanchor": "x", "scaleratio": 1},
        legend={"itemsizing": "constant", "title": {"text": "click: hide / show"}},
        hovermode="closest",
        dragmode="pan",
        margin={"l": 10, "r": 10, "t": 90, "b": 10},
    )
    body = fig.to_html(
        full_html=True,
        include_plotlyjs=False,
        config=PLOTLY_CONFIG,
        div_id="bookvec-map",
        post_script=SEARCH_JS,
        default_width="100%",
        default_height="100%",
    )
    html = offline_html(body, offline.get_plotlyjs())
    out.parent.mkdir(parents=True, exist_ok=True)
    with output_file(out, what="--out") as where:
        where.write_text(html, encoding="utf-8")


def _html(text: str) -> str:
    """Text for a plotly label, which reads a few HTML tags (``<a href>``, ``<b>``, ``<br>``)
    and entities: a title's tags are shown as typed, never followed or applied."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _hover(data: MapData, row: int) -> list[str]:
    values = data.hover[row] if data.hover else []
    return [str(v) for v in values] + [""] * (len(data.hover_fields) - len(values))


def _add_highlights(go: object, fig: object, data: MapData, xy: np.ndarray) -> None:
    if not data.highlights:
        return
    line_x: list[float | None] = []
    line_y: list[float | None] = []
    near_rows: list[int] = []
    near_text: list[str] = []
    for highlight in data.highlights:
        bx, by = xy[highlight.index]
        for row, cosine in highlight.neighbours:
            line_x += [bx, xy[row, 0], None]
            line_y += [by, xy[row, 1], None]
            near_rows.append(row)
            near_text.append(_html(f"{data.names[row]} ({cosine:.2f})"))
    fig.add_trace(
        go.Scatter(
            x=line_x, y=line_y, mode="lines", line={"color": "#555555", "width": 1},
            hoverinfo="skip", legendgroup="highlight", showlegend=False,
        )
    )  # fmt: skip
    fig.add_trace(
        go.Scatter(
            x=xy[near_rows, 0].tolist(),
            y=xy[near_rows, 1].tolist(),
            mode="markers+text",
            text=near_text,
            textposition=[LABEL_POSITIONS[i % len(LABEL_POSITIONS)] for i in range(len(near_rows))],
            textfont={"size": 10},
            name="nearest neighbours",
            legendgroup="highlight",
            marker={"symbol": "circle-open", "size": 11, "color": "black"},
            hovertemplate="%{text}<extra></extra>",
        )
    )
    rows = [h.index for h in data.highlights]
    fig.add_trace(
        go.Scatter(
            x=xy[rows, 0].tolist(),
            y=xy[rows, 1].tolist(),
            mode="markers+text",
            text=[_html(data.names[r]) for r in rows],
            textposition="top center",
            textfont={"size": 13, "color": "black"},
            name="highlighted",
            legendgroup="highlight",
            marker={
                "symbol": "star",
                "size": 18,
                "color": [data.colour(data.groups[r]) for r in rows],
                "line": {"width": 1, "color": "black"},
            },
            hovertemplate="%{text}<extra></extra>",
        )
    )


_URL = re.compile(r"https?://[^\s\"'`<>(){}$\\]*")
_XML_NAMESPACE = re.compile(r"http://www\.w3\.org/[\w./]*")
_SCRIPT = re.compile(r"(<script\b[^>]*>)(.*?)(</script>)", re.DOTALL | re.IGNORECASE)


def offline_html(page: str, plotly_js: str) -> str:
    """Inline plotly.js into ``page`` so that the file opens with no network, and leave no
    http(s) URL in the text.

    plotly.js holds three kinds of URL: XML namespace names (``http://www.w3.org/2000/svg``,
    identifiers passed to createElementNS, never fetched), links in licence comments and error
    messages, and defaults of features this map never uses (map tiles and styles, geo topojson,
    Chart Studio). The namespaces keep their value, written with JS's ``\\/`` escape; every other
    URL in the library becomes ``about:blank``. URLs in the page's own scripts (text from the
    data) keep their value the same way as the namespaces.
    """
    js = _URL.sub(
        lambda m: m.group(0) if _XML_NAMESPACE.fullmatch(m.group(0)) else "about:blank", plotly_js
    )
    js = _escape_urls(js).replace("</script", "<\\/script")
    page = _SCRIPT.sub(lambda m: m.group(1) + _escape_urls(m.group(2)) + m.group(3), page)
    head = (
        "<style>body {margin: 0}</style>\n" + '<script type="text/javascript">' + js + "</script>\n"
    )
    marker = "</head>"
    if marker in page:
        page = page.replace(marker, head + marker, 1)
    else:
        page = head + page
    return page


def _escape_urls(script: str) -> str:
    r"""``http://`` -> ``http:\/\/``: the same string to JS (in a string, template, regular
    expression or comment), no longer a URL in the file's text."""
    return re.sub(r"(https?):(//)", r"\1:\\/\\/", script)
