"""Neighbourhood graphs of units on the sheet (networkx), preference subgraphs, modularity.

Adjacency is one of

* **grid** — units with (row, col) on a regular grid (Reset tilings, square
  grids): 4-neighbour (``connectivity=4``, edge-sharing cells) or 8-neighbour
  (``connectivity=8``, corners too);
* **radius** — every pair closer than ``radius_mm`` (``scipy.spatial.cKDTree``);
* **k-NN** — each unit linked to its ``k`` nearest units (symmetrised: an edge
  when either end is among the other's k nearest).

:func:`neighbour_edges` returns the edge list as an (E, 2) index array, which
the clustering indices use directly (scales to millions of units);
:func:`neighbour_graph` wraps it as a :class:`networkx.Graph` whose nodes are
``unit_id`` with the unit coords (and optional per-unit values) as attributes.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import xarray as xr

from ..errors import ParameterError, SheetError, UndefinedStatisticError
from ._common import as_numpy, grid_rowcol, jsonable, unit_coords
from ._params import fill_doc, validate_params
from ._neighbours import DEFAULT_K  # noqa: F401  (re-exported: the k used when neither radius_mm nor k is given)

#: Parameters of the functions of a neighbour graph (``none``: SHARED).
_GRAPH = {"G": [nx.Graph], "pref": [None, xr.DataArray, dict], "attr": [str], "include_none": [bool]}


@validate_params()  # connectivity: SHARED (4 or 8)
def grid_edges(row: np.ndarray, col: np.ndarray, connectivity: int = 4) -> np.ndarray:
    """Edges (E, 2) of unit indices between grid neighbours, each undirected edge once.

    Parameters
    ----------
    row, col : int arrays (n_units,), unique (row, col) cells, >= 0
    connectivity : 4 or 8
    """
    row, col = np.asarray(row, dtype=np.int64), np.asarray(col, dtype=np.int64)
    lookup = np.full((row.max() + 2, col.max() + 2), -1, dtype=np.int64)  # +1 pad: neighbours off the edge read -1
    lookup[row, col] = np.arange(len(row))
    offsets = [(0, 1), (1, 0)] + ([(1, 1), (1, -1)] if connectivity == 8 else [])
    out = []
    for dr, dc in offsets:  # 2 or 4 offsets, each vectorised over all units
        j = lookup[row + dr, col + dc]  # col - 1 = -1 wraps to the pad column (-1 entries)
        keep = j >= 0
        out.append(np.stack([np.flatnonzero(keep), j[keep]], axis=1))
    return np.concatenate(out).astype(np.int64)


def _positions(obj: xr.Dataset | xr.DataArray) -> np.ndarray:
    names = [n for n in ("x_mm", "y_mm", "z_mm") if n in obj.coords]
    if "x_mm" not in names or "y_mm" not in names:
        raise SheetError(
            "a neighbour graph needs unit positions x_mm / y_mm; pass a Sheet or a per-unit "
            "DataArray that kept the Sheet's unit coords."
        )
    return np.stack([np.asarray(obj[n].values, dtype=float) for n in names], axis=1)


@validate_params({"grid": [None, bool]})
@fill_doc
def neighbour_edges(
    obj: xr.Dataset | xr.DataArray,
    *,
    radius_mm: float | None = None,
    k: int | None = None,
    grid: bool | None = None,
    connectivity: int = 4,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Neighbour pairs of units of a Sheet or per-unit DataArray.

    Parameters
    ----------
    %(obj)s
    %(radius_mm)s
    %(k)s
    grid : bool, optional
        True: grid adjacency (error if the units are not on a grid); False: never;
        None (default): grid when no radius/k is given and the units form a grid,
        else radius / k-NN (k = :data:`DEFAULT_K` when neither is given).
    connectivity : 4 or 8
        Grid neighbourhood.

    Returns
    -------
    edges : ndarray (E, 2) of unit indices (positions along ``unit``)
    info : dict with ``adjacency`` ("grid4", "grid8", "radius", "knn") and its parameter
    """
    if radius_mm is not None and k is not None:
        raise ParameterError("give radius_mm or k, not both.")
    rc = grid_rowcol(obj)
    if grid and rc is None:
        raise SheetError(
            "grid=True but the units are not on a regular grid (row/col missing, -1, or shared by "
            "several units, e.g. channels of a retinotopic layer or several areas); pass radius_mm= or k=."
        )
    if grid or (grid is None and rc is not None and radius_mm is None and k is None):
        assert rc is not None
        return grid_edges(*rc, connectivity=connectivity), {"adjacency": f"grid{connectivity}"}
    from ._neighbours import knn_pairs, radius_pairs, undirected

    pos = _positions(obj)
    if radius_mm is not None:
        return radius_pairs(pos, radius_mm), {"adjacency": "radius", "radius_mm": float(radius_mm)}
    k = DEFAULT_K if k is None else k
    # the same k neighbours as morans_i(k=...): each unit's k nearest others, here as undirected edges
    return undirected(knn_pairs(pos, k, clip=True)), {"adjacency": "knn", "k": int(k)}


@validate_params({"grid": [None, bool]}, renamed={"ds": "obj"})
@fill_doc
def neighbour_graph(
    obj: xr.Dataset | xr.DataArray,
    radius_mm: float | None = None,
    k: int | None = None,
    grid: bool | None = None,
    *,
    connectivity: int = 4,
    values: xr.DataArray | dict[str, Any] | None = None,
) -> nx.Graph:
    """Neighbourhood graph of the units (see :func:`neighbour_edges` for the adjacency).

    Parameters
    ----------
    %(obj)s
        Its unit coords give the node attributes.
    radius_mm, k, grid, connectivity : see :func:`neighbour_edges`
    values : DataArray over unit, or mapping name -> per-unit values, optional
        Extra node attributes (e.g. a preference map or a d′ map).

    Returns
    -------
    networkx.Graph
        Nodes: ``unit_id``; attributes: every unit coord plus ``values``; edges
        carry ``distance_mm``; graph attrs ``adjacency`` and its parameter.
    """
    edges, info = neighbour_edges(obj, radius_mm=radius_mm, k=k, grid=grid, connectivity=connectivity)
    coords = unit_coords(obj)
    if "unit_id" not in coords:
        raise SheetError("a neighbour graph needs the unit coord 'unit_id' to name nodes.")
    columns = {name: as_numpy(c).tolist() for name, c in coords.items()}
    if values is not None:
        extra = {values.name or "value": values} if isinstance(values, xr.DataArray) else dict(values)
        for name, v in extra.items():
            arr = as_numpy(v)
            if arr.shape != (len(columns["unit_id"]),):
                raise SheetError(f"node values {name!r} have shape {arr.shape}; need one value per unit.")
            columns[str(name)] = arr.tolist()
    ids = columns["unit_id"]
    names = list(columns)
    G = nx.Graph(**info)
    G.add_nodes_from((uid, dict(zip(names, row))) for uid, row in zip(ids, zip(*columns.values())))
    pos = _positions(obj)
    dist = np.linalg.norm(pos[edges[:, 0]] - pos[edges[:, 1]], axis=1)
    uid = np.asarray(ids)
    G.add_weighted_edges_from(zip(uid[edges[:, 0]].tolist(), uid[edges[:, 1]].tolist(), dist.tolist()), weight="distance_mm")
    return G


def _labels_of(G: nx.Graph, pref: xr.DataArray | dict[Any, Any] | None, attr: str) -> dict[Any, str]:
    """node -> preference label, from a per-unit DataArray (by unit_id), a mapping, or a node attribute."""
    if pref is None:
        labels = nx.get_node_attributes(G, attr)
        if len(labels) != G.number_of_nodes():
            raise SheetError(f"pass pref=..., or give every node a {attr!r} attribute (neighbour_graph(values=pref)).")
        return {n: str(v) for n, v in labels.items()}
    if isinstance(pref, xr.DataArray):
        if "unit_id" not in pref.coords:
            raise SheetError("pref must keep the unit coord 'unit_id' to match graph nodes.")
        mapping = dict(zip(as_numpy(pref["unit_id"]).tolist(), as_numpy(pref).astype(str).tolist()))
    else:
        mapping = {n: str(v) for n, v in pref.items()}
    missing = [n for n in G.nodes if n not in mapping]
    if missing:
        raise SheetError(f"{len(missing)} graph nodes (e.g. {missing[:5]}) have no preference label.")
    return {n: mapping[n] for n in G.nodes}


@validate_params(_GRAPH)
@fill_doc
def same_preference_subgraph(
    G: nx.Graph, pref: xr.DataArray | dict[Any, Any] | None = None, *, none: str = "none", attr: str = "preference"
) -> nx.Graph:
    """Subgraph of units with a preference, keeping only edges between units of the same preference.

    Its connected components are the same-preference clusters of the Reset
    clustering index. Nodes get the attribute ``attr`` = their label.

    Parameters
    ----------
    %(graph)s
    """
    labels = _labels_of(G, pref, attr)
    keep = [n for n, lab in labels.items() if lab != none]
    H = nx.Graph(G.subgraph(keep))
    H.remove_edges_from([(u, v) for u, v in H.edges if labels[u] != labels[v]])
    nx.set_node_attributes(H, {n: labels[n] for n in keep}, attr)
    return H


@validate_params(_GRAPH)
@fill_doc
def component_sizes(
    G: nx.Graph, pref: xr.DataArray | dict[Any, Any] | None = None, *, none: str = "none", attr: str = "preference"
) -> xr.Dataset:
    """Same-preference connected components: size and label of each, largest first.

    Parameters
    ----------
    %(graph)s

    Returns
    -------
    Dataset over ``component``: ``size`` (units), ``preference`` (label).
    """
    H = same_preference_subgraph(G, pref, none=none, attr=attr)
    comps = sorted(nx.connected_components(H), key=len, reverse=True)
    sizes = np.array([len(c) for c in comps], dtype=np.int64)
    labels = np.array([H.nodes[next(iter(c))][attr] for c in comps], dtype=str)
    return xr.Dataset(
        {"size": ("component", sizes, {"units": "units"}), "preference": ("component", labels)},
        coords={"component": np.arange(len(comps))},
    )


@validate_params(_GRAPH)
@fill_doc
def preference_modularity(
    G: nx.Graph,
    pref: xr.DataArray | dict[Any, Any] | None = None,
    *,
    none: str = "none",
    include_none: bool = False,
    attr: str = "preference",
) -> float:
    """Newman modularity of the partition of the neighbour graph by preference.

    ``include_none=False`` (default) scores the subgraph induced by units that
    have a preference; True keeps the ``none`` units as one more community.
    High values mean units of one preference are linked mostly among themselves.

    Parameters
    ----------
    %(graph)s
    include_none : bool
        Keep the units without a preference as one more community.
    """
    labels = _labels_of(G, pref, attr)
    nodes = [n for n, lab in labels.items() if include_none or lab != none]
    H = G.subgraph(nodes)
    if H.number_of_edges() == 0:
        raise UndefinedStatisticError("the graph has no edges between units with a preference; modularity is undefined.")
    groups: dict[str, set[Any]] = {}
    for n in nodes:
        groups.setdefault(labels[n], set()).add(n)
    return float(nx.algorithms.community.modularity(H, groups.values(), weight=None))


@validate_params({"G": [nx.Graph], "path": [str, os.PathLike]})
def write_graphml(G: nx.Graph, path: str | os.PathLike) -> Path:
    """Write ``G`` as GraphML (atomically); numpy/list attributes become plain types or JSON strings."""
    import json

    from ..io import atomic_path

    def clean(d: dict[str, Any]) -> dict[str, Any]:
        out = {}
        for key, v in d.items():
            v = jsonable(v)
            out[str(key)] = v if isinstance(v, (str, int, float, bool)) else json.dumps(v)
        return out

    H = nx.Graph(**clean(G.graph))
    H.add_nodes_from((n, clean(a)) for n, a in G.nodes(data=True))
    H.add_edges_from((u, v, clean(a)) for u, v, a in G.edges(data=True))
    with atomic_path(path) as tmp:
        nx.write_graphml(H, tmp)
    return Path(path)
