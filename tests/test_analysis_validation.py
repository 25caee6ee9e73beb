"""Every public analysis checks its parameters through validate_params (one place, one message form)."""
from __future__ import annotations

import warnings

import networkx as nx
import numpy as np
import pytest

from cortexsim import analysis
from cortexsim.errors import ParameterError, ParameterTypeError, UndefinedStatisticError

#: Public functions that take no parameter a constraint could check (arrays in, arrays out), or check
#: them elsewhere (``run``: ``_params.check_run_params`` over ``RUN_PARAMS``).
NOT_DECORATED = {"half_max_width", "run"}


def test_every_public_analysis_function_is_validated():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # plot_* aliases are deprecated
        names = [n for n in analysis.__all__ if callable(getattr(analysis, n)) and not isinstance(getattr(analysis, n), type)]
    missing = [n for n in names if not n.startswith("plot_") and n not in NOT_DECORATED | {"save_figure", "available",
                                                                                          "analysis_names",
                                                                                          "register_analysis"}
               and not hasattr(getattr(analysis, n), "__wrapped__")]
    assert missing == []


def test_graph_and_rdm_helpers_say_what_was_wrong():
    with pytest.raises(ParameterError, match=r"^grid_edges: connectivity must be one of \[4, 8\]; got 6\.$"):
        analysis.grid_edges(np.array([0, 0]), np.array([0, 1]), connectivity=6)
    # 2 cells side by side: one edge, (0, 1)
    assert analysis.grid_edges(np.array([0, 0]), np.array([0, 1])).tolist() == [[0, 1]]
    with pytest.raises(ParameterTypeError, match=r"^component_sizes: G must be a Graph; got \[1, 2\]\.$"):
        analysis.component_sizes([1, 2])
    with pytest.raises(ParameterTypeError, match="preference_modularity: include_none must be a bool; got 'yes'"):
        analysis.preference_modularity(nx.Graph(), include_none="yes")
    with pytest.raises(ParameterError, match=r"compare_rdms: method must be one of \['kendall', 'spearman'\]; got 'pearson'"):
        analysis.compare_rdms(np.eye(4), np.eye(4), method="pearson")


def test_robustness_parameters_are_checked_before_any_work():
    torch = pytest.importorskip("torch")
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))
    x, y = torch.zeros(3, 1, 2, 2), torch.tensor([0, 1, 0])
    from cortexsim.analysis.robustness import accuracy

    with pytest.raises(ParameterError, match=r"accuracy: batch_size must be in \[1, inf\); got 0\."):
        accuracy(model, (x, y), batch_size=0)
    with pytest.raises(ParameterTypeError, match="input_noise_robustness: model must be a Module"):
        analysis.input_noise_robustness("net", x, y)
    with pytest.raises(ParameterError, match=r"fractions must be a non-empty 1-D sequence in \[0, 1\]"):
        analysis.pruning_curve(model, ["1"], [0.0, 1.5], lambda m: 0.0)
    with pytest.raises(ParameterTypeError, match="pruning_curve: eval_fn must be a Callable; got 0.5"):
        analysis.pruning_curve(model, ["1"], [0.5], 0.5)
    with pytest.raises(ParameterTypeError, match="weight_noise_robustness: layer_name must be a str"):
        analysis.weight_noise_robustness(model, 1, (x, y))
    # all-zero weights: accuracy is that of class 0 everywhere, 2 of 3 labels
    with torch.no_grad():
        model[1].weight.zero_()
        model[1].bias.zero_()
    assert accuracy(model, (x, y)) == pytest.approx(2 / 3)
    with pytest.raises(UndefinedStatisticError, match="no data to evaluate"):
        accuracy(model, (x[:0], y[:0]))


def test_clustering_index_keeps_the_old_per_class_output_names_for_one_release():
    import xarray as xr

    # 4×4 grid, left half "a", right half "b": one component of 8 units per category
    col = np.tile(np.arange(4), 4)
    row = np.repeat(np.arange(4), 4)
    pref = xr.DataArray(np.where(col < 2, "a", "b"), dims="unit", name="preference",
                        coords={"row": ("unit", row), "col": ("unit", col), "x_mm": ("unit", col * 1.0),
                                "y_mm": ("unit", row * 1.0), "unit_id": ("unit", np.arange(16))})
    ci = analysis.clustering_index(pref, n_perm=3, seed=0)
    assert ci["observed_per_category"].values.tolist() == [8.0, 8.0]
    np.testing.assert_array_equal(ci["observed_per_class"].values, ci["observed_per_category"].values)
    np.testing.assert_array_equal(ci["null_per_class"].values, ci["null_per_category"].values)
    assert ci["null_per_class"].attrs["deprecated"] == "use null_per_category"


def test_graph_and_robustness_docs_are_filled_from_the_shared_table():
    from cortexsim.analysis._params import DOCS

    for name in ("same_preference_subgraph", "component_sizes", "preference_modularity"):
        doc = getattr(analysis, name).__doc__
        assert "%(" not in doc
        for p in ("G", "pref", "none", "attr"):
            assert DOCS[p].split("\n")[1].strip() in doc, (name, p)
    for name in ("weight_noise_robustness", "input_noise_robustness"):
        doc = getattr(analysis, name).__doc__
        assert "%(" not in doc and DOCS["seed"].split("\n")[1].strip() in doc
    assert DOCS["k"].split("\n")[1].strip() in analysis.neighbour_edges.__doc__
