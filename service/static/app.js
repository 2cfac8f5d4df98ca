// bookvec's page: plain JS over the HTTP API (/api/*). Text from the data is set with
// textContent only, never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const CHIPS = 20;  // genre chips shown before "all genres"
const state = { genres: new Set(), like: new Set(), unlike: new Set(), query: null,
                link: null, hits: [], map: null };

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

async function api(path, params = {}) {
  const url = new URL(path, location.origin);
  for (const [key, value] of Object.entries(params)) {
    if (Array.isArray(value)) value.forEach((v) => url.searchParams.append(key, v));
    else if (value !== null && value !== undefined && value !== "") url.searchParams.set(key, value);
  }
  const response = await fetch(url, { headers: { Accept: "application/json" } });
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const error = (data && data.error) || { message: `HTTP ${response.status}` };
    throw Object.assign(new Error(error.message), { detail: error });
  }
  return data;
}

function showError(error) {
  const box = $("error");
  if (!error) { box.hidden = true; box.textContent = ""; return; }
  const detail = error.detail || {};
  box.textContent = detail.message || error.message;
  if (detail.hint) box.append(el("div", { class: "hint", text: detail.hint }));
  for (const title of detail.suggestions || detail.candidates || []) {
    box.append(" ", el("button", { type: "button", text: title,
      onclick: () => { $("q").value = title; search(); } }));
  }
  box.hidden = false;
}

function filters() {
  return {
    genre: [...state.genres],
    author: $("author").value.trim(),
    year_from: $("year-from").value,
    year_to: $("year-to").value,
    limit: $("limit").value || 10,
  };
}

function hitsOf(data) {
  if (Array.isArray(data)) return data;
  return data.hits || data.results || [];
}

async function search() {
  const title = $("q").value.trim();
  state.link = null;
  if (!title && state.like.size === 0) return;
  state.query = title || null;
  try {
    let data;
    if (state.like.size || state.unlike.size) {
      const like = [...(title ? [title] : []), ...state.like];
      data = await api("/api/recommend", { like, unlike: [...state.unlike], ...filters() });
    } else {
      data = await api("/api/similar", { title, ...filters() });
    }
    const positive = data.positive || [title];
    const negative = data.negative || [];
    setCaption(`Books like ${positive.join(" and ")}` +
               (negative.length ? `, unlike ${negative.join(" and ")}` : ""));
    showError(null);
    render(hitsOf(data), data.mode);
  } catch (error) { showError(error); render([]); }
}

async function pageSearch(event) {
  if (event) event.preventDefault();
  const page = $("page").value.trim();
  if (!page) return;
  try {
    const data = await api("/api/linking", { page, ...filters() });
    state.link = page;
    setCaption(`Books most likely to link to ${data.link || page}`);
    showError(null);
    render(hitsOf(data), data.mode);
  } catch (error) { showError(error); render([]); }
}

function setCaption(text) {
  const genres = [...state.genres];
  $("caption").textContent = text + (genres.length ? ` (genre: ${genres.join(" or ")})` : "");
}

// What a hit's score is, by the search mode (the CLI's column labels).
const SCORE_LABEL = { dense: "cosine", sparse: "links", hybrid: "score" };

function render(hits, mode = "dense") {
  state.hits = hits;
  const list = $("results");
  list.replaceChildren();
  if (!hits.length) list.append(el("li", { class: "result", text: "No book matches." }));
  for (const hit of hits) {
    const genres = el("span", { class: "genres" });
    for (const genre of hit.genres || []) genres.append(el("span", { class: "genre", text: genre }));
    const like = markButton(hit.title, "like", "Like");
    const unlike = markButton(hit.title, "unlike", "Unlike");
    list.append(el("li", { class: "result", "data-title": hit.title },
      el("button", { type: "button", class: "title", text: hit.title,
        title: "Search from this book",
        onclick: () => { $("q").value = hit.title; search(); } }),
      el("div", { class: "meta" },
        el("span", { class: "score", text: `${SCORE_LABEL[mode] || "score"} ${Number(hit.score).toFixed(3)} ` }),
        genres,
        el("span", { text: [hit.author, hit.year].filter((v) => v !== null && v !== undefined)
                                                 .join(", ") })),
      el("div", { class: "actions" }, like, unlike,
        el("button", { type: "button", class: "why-button", text: "why?",
          "aria-label": `Why is ${hit.title} here?`, onclick: () => why(hit.title) }))));
  }
  highlightMap();
}

function markButton(title, kind, label) {
  const on = state[kind].has(title);
  return el("button", { type: "button", class: kind, "aria-pressed": String(on), text: label,
    onclick: () => {
      const other = kind === "like" ? "unlike" : "like";
      if (state[kind].has(title)) state[kind].delete(title);
      else { state[kind].add(title); state[other].delete(title); }
      renderMarks();
      search();
    } });
}

function renderMarks() {
  const box = $("marks");
  box.replaceChildren();
  for (const kind of ["like", "unlike"]) {
    for (const title of state[kind]) {
      box.append(el("span", { class: `mark ${kind}` }, `${kind === "like" ? "+" : "−"} ${title} `,
        el("button", { type: "button", text: "×", "aria-label": `Remove ${title}`,
          onclick: () => { state[kind].delete(title); renderMarks(); search(); } })));
    }
  }
}

async function why(title) {
  const source = state.query || [...state.like][0];
  const panel = $("why");
  const body = $("why-body");
  body.replaceChildren();
  if (!source) {
    body.append(el("p", { text: "A page search has no book to compare with." }));
  } else {
    try {
      const data = await api("/api/explain", { a: source, b: title });
      $("why-title").textContent = `Why ${data.b || title} is like ${data.a || source}`;
      if (data.similarity !== undefined) {
        body.append(el("p", { text: `cosine ${Number(data.similarity).toFixed(3)}` }));
      }
      body.append(linkTable("Shared pages", data.shared_links || data.shared || []));
      body.append(linkTable("Pages pulling them together", data.pulling_links || data.pulling || []));
    } catch (error) { body.append(el("p", { class: "error", text: error.message })); }
  }
  panel.hidden = false;
  panel.focus();
}

function linkTable(caption, rows) {
  const table = el("table", {}, el("caption", { text: caption }));
  if (!rows.length) table.append(el("tr", {}, el("td", { text: "none" })));
  for (const row of rows) {
    const name = row.link || row.title || row.page || JSON.stringify(row);
    const value = row.contribution ?? row.score ?? row.weight;
    table.append(el("tr", {}, el("td", { text: name }),
      el("td", { text: value === undefined ? "" : Number(value).toFixed(3) })));
  }
  return table;
}

async function loadChips() {
  try {
    const facets = await api("/api/facets");
    const entries = Array.isArray(facets) ? facets.map((f) => [f.genre, f.count])
                                          : Object.entries(facets);
    const box = $("chips");
    entries.forEach(([genre, count], i) => {
      box.append(el("button", { type: "button", class: i < CHIPS ? "chip" : "chip extra",
        "aria-pressed": "false",
        "data-genre": genre,
        onclick: (event) => {
          const chip = event.currentTarget;
          const on = !state.genres.has(genre);
          if (on) state.genres.add(genre); else state.genres.delete(genre);
          chip.setAttribute("aria-pressed", String(on));
          if (state.link) pageSearch(); else search();
        } }, genre, el("span", { class: "n", text: String(count) })));
    });
    if (entries.length > CHIPS) {
      box.append(el("button", { type: "button", id: "more-genres", class: "more",
        "aria-expanded": "false", text: `all ${entries.length} genres`,
        onclick: (event) => {
          const open = box.classList.toggle("open");
          event.currentTarget.setAttribute("aria-expanded", String(open));
          event.currentTarget.textContent = open ? "fewer genres" : `all ${entries.length} genres`;
        } }));
    }
  } catch (error) { showError(error); }
}

let completing = 0;
async function complete() {
  const text = $("q").value;
  const mine = ++completing;
  if (text.trim().length < 2) return;
  try {
    const titles = await api("/api/complete", { q: text, limit: 8 });
    if (mine !== completing) return;  // a later keystroke has its own request
    $("titles").replaceChildren(...titles.map((t) => el("option", { value: t })));
  } catch (error) { /* suggestions are a help, not a must */ }
}

async function toggleMap() {
  const box = $("map");
  const button = $("map-toggle");
  const open = box.hidden;
  box.hidden = !open;
  button.setAttribute("aria-expanded", String(open));
  button.textContent = open ? "Hide the map" : "Show the map";
  if (open && !state.map) {
    if (typeof Plotly === "undefined") { await loadScript("/static/plotly.min.js"); }
    try {
      state.map = await api("/api/map");
      drawMap();
    } catch (error) { box.textContent = error.message; }
  }
}

function loadScript(src) {
  return new Promise((resolve, reject) => {
    document.head.append(el("script", { src, onload: resolve, onerror: reject }));
  });
}

function drawMap() {
  const m = state.map;
  if (!m || typeof Plotly === "undefined") return;
  const base = { x: m.x, y: m.y, text: m.titles.map((t, i) => `${t} (${m.genre[i]})`),
    mode: "markers", type: "scattergl", hoverinfo: "text", name: "books",
    marker: { size: 4, color: "#b8bfcc" } };
  Plotly.newPlot("map", [base, highlightTrace()], { margin: { l: 20, r: 10, t: 10, b: 20 },
    showlegend: false }, { responsive: true, displaylogo: false });
  document.getElementById("map").on("plotly_click", (event) => {
    const point = event.points[0];
    if (point && point.curveNumber === 0) { $("q").value = m.titles[point.pointIndex]; search(); }
  });
}

function highlightTrace() {
  const m = state.map;
  const where = new Map(m.titles.map((t, i) => [t, i]));
  const rows = state.hits.map((h) => where.get(h.title)).filter((i) => i !== undefined);
  return { x: rows.map((i) => m.x[i]), y: rows.map((i) => m.y[i]),
    text: rows.map((i) => m.titles[i]), mode: "markers+text", type: "scatter",
    textposition: "top center", hoverinfo: "text", name: "results",
    marker: { size: 10, color: "#2453c7" } };
}

function highlightMap() {
  if (state.map && typeof Plotly !== "undefined" && !$("map").hidden) {
    Plotly.deleteTraces("map", 1);
    Plotly.addTraces("map", highlightTrace());
  }
}

$("search").addEventListener("submit", (event) => { event.preventDefault(); search(); });
$("page-search").addEventListener("submit", pageSearch);
let typing = null;  // suggestions once typing pauses, not on every key
$("q").addEventListener("input", () => { clearTimeout(typing); typing = setTimeout(complete, 150); });
$("why-close").addEventListener("click", () => { $("why").hidden = true; });
$("map-toggle").addEventListener("click", toggleMap);
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape") $("why").hidden = true;
});
loadChips();
