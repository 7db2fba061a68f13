"""What the sample grids draw: graph panels, and molecule panels with elements and bond orders."""

import networkx as nx
import numpy as np
import pytest

from graphvae import plotting

ATOMS = ["C", "N", "O", "F"]


def _molecule(atoms, bonds):
    g = nx.Graph()
    for i, a in enumerate(atoms):
        g.add_node(i, atom=ATOMS.index(a))
    for i, j, order in bonds:
        g.add_edge(i, j, bond=order - 1)
    return g


@pytest.fixture
def figures(monkeypatch):
    """The figures the plotting functions would have written."""
    kept = []
    monkeypatch.setattr(plotting, "_save", lambda fig, path: kept.append(fig))
    return kept


def _panels(fig):
    return [ax for ax in fig.axes if ax.get_title()]


def test_molecule_panels_draw_elements_bond_orders_and_notes(figures):
    acetonitrile = _molecule("CCN", [(0, 1, 1), (1, 2, 3)])          # C-C#N
    acetone = _molecule("CCCO", [(0, 1, 1), (1, 2, 1), (1, 3, 2)])  # CC(C)=O
    lone = _molecule("FF", [])                                      # two atoms, no bond
    plotting.plot_graph_grid([acetonitrile], [acetone, lone], "unused.png", "t",
                             node_attr="atom", per_row=2, atom_names=ATOMS,
                             notes=["valid", "invalid"])
    (fig,) = figures
    train, first, second = _panels(fig)
    assert train.get_title() == "train n=3"
    assert first.get_title() == "sample n=4\nvalid"
    assert second.get_title() == "sample n=2\ninvalid"
    # one line a unit of bond order; carbon unlabelled (a dot), other elements as text
    assert len(train.lines) == 1 + 3 and len(first.lines) == 1 + 1 + 2
    assert len(second.lines) == 0
    assert [t.get_text() for t in train.texts] == ["N"]
    assert [t.get_text() for t in first.texts] == ["O"]
    assert [t.get_text() for t in second.texts] == ["F", "F"]
    assert sum(len(c.get_offsets()) for c in train.collections) == 2      # two carbons


def test_molecule_panels_fall_back_to_a_spring_layout(figures, monkeypatch):
    """A graph RDKit cannot depict (here: RDKit made to fail) is still drawn."""
    pytest.importorskip("rdkit")
    from rdkit.Chem import rdDepictor

    def fail(*args, **kwargs):
        raise RuntimeError("no depiction")

    monkeypatch.setattr(rdDepictor, "Compute2DCoords", fail)
    ring = _molecule("CCCCCC", [(i, (i + 1) % 6, 1 + (i % 2)) for i in range(6)])
    plotting.plot_graph_grid([], [ring], "unused.png", atom_names=ATOMS, node_attr="atom")
    (panel,) = _panels(figures[0])
    assert len(panel.lines) == 3 * 1 + 3 * 2


def test_unknown_types_and_bond_codes_are_drawn_not_raised(figures):
    g = _molecule("CO", [(0, 1, 1)])
    g.add_node(2, atom=7)                     # out of range
    g.add_node(3)                             # no type at all
    g.add_edge(2, 3, bond=-7)                 # bond codes out of range: 1 and 3 lines
    g.add_edge(0, 3, bond=9)
    plotting.plot_graph_grid([], [g], "unused.png", atom_names=ATOMS, node_attr="atom")
    (panel,) = _panels(figures[0])
    assert [t.get_text() for t in panel.texts] == ["O", "*", "*"]
    assert len(panel.lines) == 1 + 1 + 3


def test_numpy_integer_types_are_drawn_as_their_elements(figures):
    """Types held as numpy integers (a user's own graphs) were drawn as '*'."""
    g = nx.Graph()
    g.add_node(0, atom=np.int64(1))
    g.add_node(1, atom=np.int32(2))
    g.add_node(2, atom=True)                  # a bool is not a type
    g.add_edge(0, 1, bond=0)
    g.add_edge(1, 2, bond=0)
    plotting.plot_graph_grid([], [g], "unused.png", atom_names=ATOMS, node_attr="atom")
    (panel,) = _panels(figures[0])
    assert [t.get_text() for t in panel.texts] == ["N", "O", "*"]


def test_a_graph_too_large_to_lay_out_gets_its_title_only(figures, monkeypatch):
    def no_layout(*args, **kwargs):
        raise AssertionError("laid out")

    monkeypatch.setattr(nx, "spring_layout", no_layout)
    big = nx.path_graph(plotting.DRAW_MAX_NODES + 1)
    plotting.plot_graph_grid([], [big], "unused.png", per_row=1)
    (panel,) = _panels(figures[0])
    assert panel.get_title() == f"sample n={plotting.DRAW_MAX_NODES + 1}"
    assert [t.get_text() for t in panel.texts] == ["too large\nto draw"]


def test_graph_panels_without_atom_names(figures):
    plotting.plot_graph_grid([nx.path_graph(3)], [nx.cycle_graph(4)], "unused.png",
                             per_row=1)
    titles = [ax.get_title() for ax in _panels(figures[0])]
    assert titles == ["train n=3", "sample n=4"]


def test_the_grid_is_written_as_png(tmp_path):
    path = tmp_path / "samples.png"
    plotting.plot_graph_grid([_molecule("CO", [(0, 1, 1)])], [], path, node_attr="atom",
                             atom_names=ATOMS)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# -- the training curve -------------------------------------------------------------------------

def test_training_curve_draws_the_bound_the_scores_and_the_kept_epoch(figures):
    history = [{"epoch": 1.0, "train_bound": -9.0, "lr": 0.1},
               {"epoch": 2.0, "train_bound": -7.0, "score": -8.0},
               {"epoch": 3.0, "train_bound": -6.5},
               {"epoch": 4.0, "train_bound": -6.0, "score": -8.5}]
    plotting.plot_training(history, "unused.png", weights_epoch=2, score_label="val", title="t")
    (fig,) = figures
    left, right = fig.axes
    (bound, kept) = left.get_lines()
    assert list(bound.get_xdata()) == [1, 2, 3, 4]
    assert list(bound.get_ydata()) == [-9.0, -7.0, -6.5, -6.0]
    assert list(kept.get_xdata()) == [2, 2]                       # the dashed line
    score = right.get_lines()[0]
    assert list(score.get_xdata()) == [2, 4] and list(score.get_ydata()) == [-8.0, -8.5]
    assert right.get_ylabel() == "val" and "epoch 2" in right.get_legend().texts[0].get_text()


def test_a_long_axis_label_is_wrapped_to_the_height_of_its_panel(figures):
    """vector's IWAE label ran above its panel, into the title and the panel beside it."""
    label = "validation IWAE bound, K = 50 (nats per row)"
    plotting.plot_training([{"epoch": 1.0, "train_bound": -3.0, "score": -4.0}], "unused.png",
                           score_label=label, title="iwae on mnist",
                           train_label="training reconstruction log-likelihood (nats per "
                                       "row; not a bound)")
    (fig,) = figures
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:
        text = ax.yaxis.label
        assert "\n" in text.get_text()
        assert text.get_window_extent(renderer).height <= ax.get_window_extent(renderer).height
    assert fig.axes[1].get_ylabel().replace("\n", " ") == label


def test_training_curve_without_evaluation_has_one_panel(figures):
    plotting.plot_training([{"epoch": 1.0, "train_bound": -3.0},
                            {"epoch": 2.0, "train_bound": -2.0}], "unused.png")
    (fig,) = figures
    (ax,) = fig.axes
    assert len(ax.get_lines()) == 1 and ax.get_legend() is None


def test_a_one_epoch_curve_has_whole_epoch_ticks(figures):
    """A run of one epoch had ticks 0.945, 0.960, ... (MaxNLocator's fallback on a short
    span): its ticks are the epochs themselves now."""
    plotting.plot_training([{"epoch": 1.0, "train_bound": -3.0, "score": -4.0}], "unused.png")
    (fig,) = figures
    for ax in fig.axes:
        assert list(ax.get_xticks()) == [1.0]
        assert ax.get_xlim() == (0.5, 1.5)


def test_latent_plot_names_its_axes_by_the_latent_size(figures):
    """Two principal components for a 2-d (or wider) latent; a 1-d latent is drawn along one
    axis, with no "PC 2" that would be a row of zeros; one node does not fail."""
    z2 = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 1.0], [2.0, 1.0]])
    plotting.plot_latent(z2, "unused.png")
    plotting.plot_latent(np.array([[0.0], [3.0], [1.0]]), "unused.png")
    plotting.plot_latent(np.array([[1.0, 2.0]]), "unused.png")
    wide, narrow, single = (f.axes[0] for f in figures)
    assert (wide.get_xlabel(), wide.get_ylabel()) == ("PC 1", "PC 2")
    # the first component is the wider spread (x: 2 against y: 1), centred: ±1
    assert sorted(abs(v) for v in wide.collections[0].get_offsets()[:, 0]) == [1, 1, 1, 1]
    assert narrow.get_ylabel() == "" and "1-d" in narrow.get_xlabel()
    assert list(narrow.get_yticks()) == []
    offsets = narrow.collections[0].get_offsets()
    np.testing.assert_allclose(offsets[:, 0], [-4 / 3, 5 / 3, -1 / 3], rtol=0, atol=1e-12)
    assert list(offsets[:, 1]) == [0, 0, 0]
    assert single.collections[0].get_offsets().shape == (1, 2)


def test_inputs_with_nothing_to_draw_or_nan_are_named(tmp_path):
    """Each ended in a library's error (min() of an empty sequence, SVD did not converge,
    'Input contains NaN'); each is now one ValueError naming the function."""
    from graphvae.plotting import plot_image_rows, plot_latent, plot_roc_pr, plot_training
    out = tmp_path / "p.png"
    cases = [(lambda: plot_training([], out), "plot_training: the history has no epochs"),
             (lambda: plot_image_rows([], out, (2, 2)), "plot_image_rows: no images to draw"),
             (lambda: plot_latent(np.array([[0.0, 1.0], [np.nan, 2.0]]), out),
              "plot_latent: the latents hold NaN"),
             (lambda: plot_roc_pr(np.array([0.1, np.nan]), np.array([0, 1]), out),
              "plot_roc_pr: the scores hold NaN")]
    for call, message in cases:
        with pytest.raises(ValueError, match=message):
            call()
    assert not out.exists()


def test_image_rows_are_strips_of_their_images_with_blank_gaps(figures):
    """Each row is one panel: its images side by side (2 × 2 images, a gap of 1 between
    them, a row of 2 in a grid of 3 columns ends in a blank place), drawn on the grey scale
    from 0 to 1 with the row's label; gaps and missing places are NaN, drawn white."""
    a = np.array([[0.0, 0.25, 0.5, 0.75], [1.0, 1.0, 0.0, 0.0]])
    nan = np.nan
    np.testing.assert_array_equal(plotting.image_strip(a, (2, 2), 3), [
        [0.0, 0.25, nan, 1.0, 1.0, nan, nan, nan],
        [0.5, 0.75, nan, 0.0, 0.0, nan, nan, nan]])
    assert plotting.image_strip(np.zeros((1, 64)), (8, 8), 2).shape == (8, 8 + 2 + 8)
    plotting.plot_image_rows([("data", a), ("more", np.vstack([a, a[:1]]))], "unused.png",
                             (2, 2), "title")
    (fig,) = figures
    panels = fig.axes
    assert [ax.get_title(loc="left") for ax in panels] == ["data", "more"]
    (first,), (second,) = (ax.get_images() for ax in panels)
    assert first.get_array().shape == (2, 8) and second.get_array().shape == (2, 8)
    np.testing.assert_array_equal(second.get_array().filled(-1)[:, 6:], a[:1].reshape(2, 2))
    assert first.get_clim() == (0, 1) and tuple(first.get_cmap().get_bad()[:3]) == (1, 1, 1)
