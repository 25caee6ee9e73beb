"""Clustering of the preference map, its neighbour graph, and the topography of number maps."""
from __future__ import annotations

from typing import Any

from ...errors import CortexsimError
from ..registry import register_analysis
from ..report import Context, scalars

_ADJ = ("connectivity", "radius_mm", "k")


@register_analysis("clustering", needs=("preference",), coord="by", figure=("clustering_null", "plot_clustering_null"),
                   order=2, params=("n_perm", "seed", *_ADJ))
def clustering(ctx: Context) -> dict[str, Any]:
    """Mean size of same-preference components vs maps with the preferences permuted (Hannagan)."""
    from ..clustering import clustering_index

    p = ctx.p
    ci = ctx.keep(clustering_index(ctx.need("preference"), n_perm=p.n_perm, seed=p.seed,
                                   connectivity=p.connectivity, radius_mm=p.radius_mm, k=p.k))
    return scalars(ci)


@register_analysis("topography", needs=("numbers",), coord="numbers_by", figure=("topography_null", "plot_clustering_null"),
                   order=3, params=("n_perm", "seed", "radius_mm", "k"))
def topography(ctx: Context) -> dict[str, Any]:
    """Topography of the number map vs permuted maps."""
    from ..clustering import topography_index

    p = ctx.p
    tm = ctx.keep(topography_index(ctx.need("numbers"), n_perm=p.n_perm, seed=p.seed, radius_mm=p.radius_mm, k=p.k))
    return scalars(tm.drop_vars("proximity"))


def _write_graph(G: Any, path: Any) -> None:
    from ..graphs import write_graphml

    write_graphml(G, path)


@register_analysis("graph", needs=("preference",), coord="by", order=4, params=_ADJ)
def graph(ctx: Context) -> dict[str, Any]:
    """Neighbour graph of the units with their preference (GraphML), components and modularity."""
    from ..graphs import component_sizes, neighbour_graph, preference_modularity

    p = ctx.p
    G = ctx.keep(neighbour_graph(ctx.ds, connectivity=p.connectivity, values=ctx.need("preference"),
                                 radius_mm=p.radius_mm, k=p.k))
    comps = component_sizes(G)
    try:
        q = preference_modularity(G)
    except CortexsimError:  # no edge between preferring units
        q = None
    name = ctx.file("graph.graphml", _write_graph, G)
    return {"n_nodes": G.number_of_nodes(), "n_edges": G.number_of_edges(), **G.graph, "modularity": q,
            "n_components": int(comps.sizes["component"]),
            "largest_components": comps["size"].values[:10].tolist(), "graphml": name}
