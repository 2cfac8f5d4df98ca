"""`bookvec info`: what model and store this machine has, and where their files live."""

from __future__ import annotations

from typing import Any

from bookvec.cli import output
from bookvec.cli.app import app
from bookvec.cli.common import ApiKeyOption, CollectionOption, JsonOption, ModelOption, UrlOption


def _render(result: dict[str, Any]) -> None:
    from rich.console import Group
    from rich.panel import Panel
    from rich.table import Table

    def section(title: str, rows: list[tuple[str, Any]], error: str | None) -> Panel:
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold")
        grid.add_column()
        if error:
            grid.add_row("error", f"[red]{output.cell(error)}[/red]")
        for key, value in rows:
            if value is not None and value != "":
                grid.add_row(key, value if key == "status" else output.cell(value))
        return Panel(grid, title=title, title_align="left", expand=False)

    model, store = result["model"], result["store"]
    metrics = model.get("metrics", {})
    auc = metrics.get("val_auc")
    model_rows = [
        ("id", model.get("id")),
        ("created", model.get("created")),
        ("books", f"{model['books']:,}" if "books" in model else None),
        ("links", f"{model['links']:,}" if "links" in model else None),
        ("pairs", f"{model['pairs']:,}" if model.get("pairs") else None),
        ("dimensions", model.get("dim")),
        ("objective", model.get("objective")),
        ("validation AUC", f"{auc:.3f}" if auc is not None else None),
        (
            "corpus",
            (model.get("corpus") or "") + (" (synthetic)" if model.get("synthetic") else ""),
        ),
        ("files", model.get("path")),
    ]
    status = None
    if "error" not in model and "error" not in store:
        status = (
            "[green]indexed with this model[/green]"
            if store["model"] == model["id"]
            else f"[yellow]holds model {output.cell(store['model'])}; run `bookvec index`[/yellow]"
        )
    store_rows = [
        ("backend", store.get("backend")),
        ("collection", store.get("collection")),
        ("points", f"{store['points']:,}" if "points" in store else None),
        ("dimensions", store.get("dim")),
        ("sparse vectors", store.get("sparse") or ("none" if "backend" in store else None)),
        ("default search mode", store.get("search_mode")),
        ("hybrid fusion", store.get("fusion")),
        ("HNSW", _hnsw(store)),
        ("status", status),
        ("location", store.get("location")),
    ]
    output.stdout.print(
        Group(
            f"bookvec home: {output.cell(result['home'])}",
            section("Model", model_rows, model.get("error")),
            section("Store", store_rows, store.get("error")),
        )
    )


def _hnsw(store: dict) -> str | None:
    """How searches use the graph: hnsw_ef and how it was chosen, or that they are exact."""
    if "hnsw_ef" not in store:
        return None
    if not store.get("indexed_vectors"):
        return "no graph yet: every search is exact"
    found = store.get("hnsw_calibration") or {}
    if "recall_at_10" not in found:
        return f"hnsw_ef {store['hnsw_ef']}"
    filtered = found.get("filtered_recall_at_10")
    how = found.get("filtered_search")
    return (
        f"hnsw_ef {found['ef']}: recall@10 {found['recall_at_10']:.4f}"
        + (f", genre-filtered {filtered:.4f}" if filtered is not None else "")
        + f" on {found['queries']} books (target {found['target']})"
        + (f"; filtered searches: {how}" if how else "")
    )


@app.command()
def info(
    model: ModelOption = None,
    json_: JsonOption = False,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    collection: CollectionOption = "books",
) -> None:
    """Show the current model bundle and the collection: counts, versions, locations.

    Example: bookvec info --json
    """
    from bookvec.library.info import info as collect

    result = collect(model, url, api_key, collection).to_dict()
    if json_:
        output.emit_json(result)
        return
    _render(result)
