"""Data loading (``graphvae.datasets``) and input validation (``graphvae.graph``).

Every expected value below was worked out by hand from the small inputs written
in each test, not read back from the package.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import networkx as nx
import pytest
import torch

from graphvae.datasets import (
    LINKPRED_DATASETS,
    load_dataset,
    load_graph_file,
    load_planetoid,
    make_sbm_graph,
    read_edge_list,
    read_features,
)
from graphvae.errors import DataError
from graphvae.graph import (
    check_edge_index,
    check_features,
    check_graph,
    edge_index_to_dense,
    permute_graph,
    sparse_features,
)

DATA_ROOT = Path(os.environ.get(
    "GRAPHVAE_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))
CORA_RAW = DATA_ROOT / "Planetoid" / "Cora" / "raw"
needs_cora = pytest.mark.skipif(not CORA_RAW.is_dir(), reason=f"no Cora under {DATA_ROOT}")


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def pairs(edge_index: torch.Tensor) -> list[tuple[int, int]]:
    return [tuple(c) for c in edge_index.t().tolist()]


# Nodes a, b, c, d; undirected edges a-b, b-c, c-d, a-c.  The input also holds a
# header, a comment, the duplicate "b a" of a-b and the self-loop "d d".
# Indices a=0, b=1, c=2, d=3, so the sorted ordered pairs (i, j) are:
FOUR_NODE_PAIRS = [(0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1), (2, 3), (3, 2)]
FOUR_NODE_ROWS = [("source", "target"), ("# a comment line",), ("a", "b"), ("b", "c"),
                  ("", ), ("c", "d"), ("a", "c"), ("b", "a"), ("d", "d")]


@pytest.mark.parametrize("suffix, sep", [(".csv", ","), (".tsv", "\t"), (".txt", " \t  ")])
def test_edge_list_formats_parse_to_simple_undirected_graph(tmp_path, suffix, sep):
    text = "\n".join(sep.join(row) if len(row) > 1 else row[0] for row in FOUR_NODE_ROWS)
    data = load_graph_file(write(tmp_path / f"edges{suffix}", text + "\n"))
    assert data.num_nodes == 4
    assert data.node_names == ["a", "b", "c", "d"]
    assert data.x is None
    assert data.edge_index.dtype == torch.long
    assert pairs(data.edge_index) == FOUR_NODE_PAIRS


def test_read_edge_list_skips_header_and_comments_keeps_raw_pairs(tmp_path):
    path = write(tmp_path / "e.csv", "source,target\n# note\na,b\n\nb,a\nd,d\n")
    assert read_edge_list(path) == [("a", "b"), ("b", "a"), ("d", "d")]


def test_extra_columns_are_ignored(tmp_path):
    path = write(tmp_path / "e.csv", "u,v,weight\nx,y,0.5\ny,z,2\n")
    data = load_graph_file(path)
    assert data.node_names == ["x", "y", "z"]
    assert pairs(data.edge_index) == [(0, 1), (1, 0), (1, 2), (2, 1)]


def test_string_node_ids_sorted_as_strings(tmp_path):
    # "n10" < "n2" < "n9" as strings, and mixed ids such as "7" fall back to strings too.
    data = load_graph_file(write(tmp_path / "e.csv", "n9,n10\nn2,n9\n7,n2\n"))
    assert data.node_names == ["7", "n10", "n2", "n9"]
    # edges n9-n10 = (3,1), n2-n9 = (2,3), 7-n2 = (0,2)
    assert pairs(data.edge_index) == [(0, 2), (1, 3), (2, 0), (2, 3), (3, 1), (3, 2)]


def test_numeric_node_ids_sorted_numerically(tmp_path):
    data = load_graph_file(write(tmp_path / "e.txt", "10 9\n9 2\n"))
    assert data.node_names == ["2", "9", "10"]
    # 10-9 -> (2, 1); 9-2 -> (1, 0)
    assert pairs(data.edge_index) == [(0, 1), (1, 0), (1, 2), (2, 1)]


def test_numeric_ids_with_leading_zeros_keep_their_spelling(tmp_path):
    data = load_graph_file(write(tmp_path / "e.csv", "01,2\n2,3\n"))
    assert data.node_names == ["01", "2", "3"]
    assert pairs(data.edge_index) == [(0, 1), (1, 0), (1, 2), (2, 1)]


def test_header_after_utf8_byte_order_mark_is_still_a_header(tmp_path):
    path = tmp_path / "e.csv"
    path.write_bytes(b"\xef\xbb\xbfsource,target\na,b\nb,c\n")
    data = load_graph_file(path)
    assert data.node_names == ["a", "b", "c"]
    assert pairs(data.edge_index) == [(0, 1), (1, 0), (1, 2), (2, 1)]


@pytest.mark.parametrize("header", ["id,f1,f2\n", "", "node,0,1\n", "Node_ID,1,2\n", ",0,1\n"])
def test_feature_table_with_and_without_header(tmp_path, header):
    edges = write(tmp_path / "e.csv", "a,b\nb,c\n")
    # The feature file's order defines the node order (c, a, b), and it names the
    # isolated node "e", which the edge list never mentions.
    feats = write(tmp_path / "f.csv", header + "c,1,2\na,3.5,-4\nb,0,0\ne,1e-3,7\n")
    data = load_graph_file(edges, feats)
    assert data.num_nodes == 4
    assert data.node_names == ["c", "a", "b", "e"]
    assert data.x.dtype == torch.float
    assert torch.equal(data.x, torch.tensor([[1, 2], [3.5, -4], [0, 0], [1e-3, 7]]))
    # a-b = (1, 2), b-c = (2, 0); node 3 ("e") is isolated
    assert pairs(data.edge_index) == [(0, 2), (1, 2), (2, 0), (2, 1)]
    assert 3 not in data.edge_index.flatten().tolist()


@pytest.mark.parametrize("text, message", [
    ("id,a,b\nx,0\ny,1\n", r"f\.csv:2: 1 features, expected 2 \(as the header names\)"),
    ("node,0\nx,0,1\n", r"f\.csv:2: 2 features, expected 1 \(as the header names\)"),
    ("x,0,1\ny,1\n", r"f\.csv:2: 1 features, expected 2$"),
])
def test_feature_rows_as_wide_as_the_header_or_the_first_row(tmp_path, text, message):
    with pytest.raises(DataError, match=message):
        read_features(write(tmp_path / "f.csv", text))


def test_an_empty_node_id_in_a_feature_row_is_an_error(tmp_path):
    """Only a first row may start with an empty cell (pandas' index header ``,0,1``); any
    other such row would be a node named "" and is refused, naming its line."""
    with pytest.raises(DataError, match=r"f\.csv:3: a feature row has an empty node id$"):
        read_features(write(tmp_path / "f.csv", ",0,1\na,1,2\n,3,4\n"))
    with pytest.raises(DataError, match=r"g\.tsv:2: a feature row has an empty node id$"):
        read_features(write(tmp_path / "g.tsv", "a\t1\n\t3\n"))


def test_feature_rows_are_refused_by_their_cells(tmp_path):
    """A first row is a header only when every cell after its id is a word: ``x,1,abc`` is
    a row whose third cell is not a number. A row of an id alone has no value; a value
    below -3.4e38 is beyond float32 as one above it is; a header and a comment are no
    rows."""
    with pytest.raises(DataError, match=r"f\.csv:1: column 3: 'abc' is not a number"):
        read_features(write(tmp_path / "f.csv", "x,1,abc\ny,2,3\n"))
    with pytest.raises(DataError, match=r"f\.csv:1: a feature row needs a node id and a "
                                        r"value$"):
        read_features(write(tmp_path / "f.csv", "x\ny,2\n"))
    with pytest.raises(DataError, match=r"f\.csv:2: column 2: '-1e39' is beyond the float32 "
                                        r"range$"):
        read_features(write(tmp_path / "f.csv", "x,1\ny,-1e39\n"))
    with pytest.raises(DataError, match=r"f\.csv: the feature table has no rows$"):
        read_features(write(tmp_path / "f.csv", "id,a\n# none\n"))


def test_with_num_nodes_the_feature_rows_are_the_nodes_in_order(tmp_path):
    """``--num-nodes 3`` makes ids 0, 1, 2 the node indices, so a table listing node 1
    first would give node 0 node 1's features: refused, as is one row short."""
    edges = write(tmp_path / "e.csv", "0,1\n1,2\n")
    g = load_graph_file(edges, write(tmp_path / "f.csv", "0,5\n1,6\n2,7\n"), num_nodes=3)
    assert g.x.flatten().tolist() == [5.0, 6.0, 7.0]
    for table in ("1,6\n0,5\n2,7\n", "0,5\n1,6\n"):
        with pytest.raises(DataError, match=r"f\.csv: with --num-nodes the feature table must "
                                            r"list the nodes 0\.\.2 in order$"):
            load_graph_file(edges, write(tmp_path / "f.csv", table), num_nodes=3)


_FLAG = '<key id="d0" for="node" attr.name="flag" attr.type="boolean"{}>'
_TYPED = '<key id="d0" for="node" attr.name="w" attr.type="{}"{}>'


@pytest.mark.parametrize("key, data, reason", [
    (_FLAG.format("/"), '<data key="d0">NaN</data>',
     "boolean attribute 'flag' (key 'd0') holds 'NaN', not true, false, 1 or 0"),
    (_FLAG.format("/"), '<data key="d0"> 1</data>',          # nothing is stripped
     "boolean attribute 'flag' (key 'd0') holds ' 1', not true, false, 1 or 0"),
    (_FLAG.format("") + "<default>yes</default></key>", "",
     "boolean attribute 'flag' (key 'd0') has the default 'yes', not true, false, 1 or 0"),
    (_FLAG.format("") + "<default></default></key>", "",
     "boolean attribute 'flag' (key 'd0') has the default '', not true, false, 1 or 0"),
    (_FLAG.format("") + "<default><x/>true</default></key>", "",    # its text before <x/>
     "boolean attribute 'flag' (key 'd0') has the default '', not true, false, 1 or 0"),
    ('<key id="d0" for="node" attr.name="w" attr.type="x"/>', '<data key="d0">1</data>',
     "key 'd0' has attr.type 'x', which networkx's GraphML reader has no type for (it knows "
     "boolean, double, float, int, integer, long, string)"),
    (_FLAG.format("/"), '<data key="d0">TRUE</data>', None),   # lower-cased, as networkx
    (_FLAG.format("/"), '<data key="d0"></data>', None),       # no value: none read
    (_FLAG.format("") + "<default>0</default></key>", '<data key="d0">1</data>', None),
    (_FLAG.format("/"), '<data key="d0">maybe<y:z xmlns:y="urn:y"/></data>', None),  # yFiles
    (_FLAG.format("/") + '<x:key xmlns:x="urn:x" id="d1" attr.type="zzz"/>', "", None),
    (_TYPED.format("int", "/"), '<data key="d0">1e5</data>',
     "int attribute 'w' (key 'd0') holds '1e5', not an integer"),
    (_TYPED.format("long", "") + "<default>x</default></key>", "",
     "long attribute 'w' (key 'd0') has the default 'x', not an integer"),
    (_TYPED.format("double", "/"), '<data key="d0">1,5</data>',
     "double attribute 'w' (key 'd0') holds '1,5', not a number"),
    (_TYPED.format("float", "/"), '<data key="d0">true</data>',
     "float attribute 'w' (key 'd0') holds 'true', not a number"),
    (_TYPED.format("int", "/"), '<data key="d0">+-5</data>',           # not too long
     "int attribute 'w' (key 'd0') holds '+-5', not an integer"),
    (_TYPED.format("int", "/"), '<data key="d0"> 7 </data>', None),   # int() strips
    (_TYPED.format("float", "/"), '<data key="d0">1e-3</data>', None),
    (_TYPED.format("string", "/"), '<data key="d0">1e5</data>', None),
    # networkx reads no port's data (it warns that ports are not supported)
    (_TYPED.format("int", "/"), '<port name="p"><data key="d0">x</data></port>', None),
    (_FLAG.format("/"), '<port name="p"><data key="d0">x</data></port>', None),
])
def test_graphml_values_networkx_cannot_read_are_named(tmp_path, key, data, reason):
    """networkx's GraphML reader failed on these in Python's words (``KeyError: 'nan'``
    for a boolean value, ``KeyError: 'x'`` for an unknown type, ``AttributeError`` for an
    empty boolean default, ``ValueError: invalid literal for int() with base 10: '1e5'``
    for an integer or number ``int`` / ``float`` does not read); each is named now.
    Refused exactly where networkx fails: the others (its own spellings, an empty value,
    yFiles' nested data, another namespace's key, what ``int`` reads) read."""
    path = write(tmp_path / "g.graphml",
                 '<?xml version="1.0"?>\n<graphml xmlns="http://graphml.graphdrawing.org/'
                 f'xmlns">{key}<graph edgedefault="undirected"><node id="a">{data}</node>'
                 '<node id="b"/><edge source="a" target="b"/></graph></graphml>\n')
    if reason is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)    # networkx: ports not read
            nx.read_graphml(path)
        assert load_graph_file(path).num_nodes == 2
        return
    with pytest.raises((KeyError, AttributeError, ValueError)):
        nx.read_graphml(path)
    with pytest.raises(DataError) as err:
        load_graph_file(path)
    assert str(err.value) == f"{path}: {reason}"


def test_networkx_notes_on_ports_and_untyped_keys_are_not_shown(tmp_path):
    """networkx warns that it reads no <port> and that a key without attr.type is read as
    a string; on the command line that was Python's two-line warning with networkx's
    source path. Neither changes the graph read."""
    path = write(tmp_path / "g.graphml",
                 '<?xml version="1.0"?>\n<graphml xmlns="http://graphml.graphdrawing.org/'
                 'xmlns"><key id="d0" for="node" attr.name="w"/><graph edgedefault='
                 '"undirected"><node id="a"><port name="p"/><data key="d0">x</data></node>'
                 '<node id="b"/><edge source="a" target="b"/></graph></graphml>\n')
    with pytest.warns(UserWarning):
        nx.read_graphml(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        g = load_graph_file(path)
    assert g.node_names == ["a", "b"] and g.x is None and g.edge_index.tolist() == [[0, 1],
                                                                                    [1, 0]]


def test_a_graphml_integer_past_pythons_digit_limit_is_named_so(tmp_path):
    path = write(tmp_path / "g.graphml",
                 '<?xml version="1.0"?>\n<graphml xmlns="http://graphml.graphdrawing.org/'
                 f'xmlns">{_TYPED.format("int", "/")}<graph edgedefault="undirected"><node '
                 f'id="a"><data key="d0">{"1" * 5000}</data></node><node id="b"/><edge '
                 'source="a" target="b"/></graph></graphml>\n')
    with pytest.raises(DataError, match=r"g\.graphml: int attribute 'w' \(key 'd0'\) holds "
                                        r"'1+\.\.\. \(5000 characters\), not an integer of at "
                                        r"most 4,300 digits \(Python's limit on reading "
                                        r"them\)$"):
        load_graph_file(path)


@pytest.mark.parametrize("encoding, why", [
    ("UPF-8", "LookupError: unknown encoding: UPF-8"),       # the fuzz's, at seed 43
    ("rot13", "LookupError: 'rot13' is not a text encoding; use codecs.decode() to handle "
              "arbitrary codecs"),
    ("utf-7", "ValueError: multi-byte encodings are not supported"),
    ("shift_jis", "ValueError: multi-byte encodings are not supported"),
    ("x" * 5000, "LookupError: unknown encoding: " + "x" * 169 + "..."),  # cut at 200
    ("latin-1", None), ("koi8-r", None), ("utf-8", None),
])
def test_a_graphml_encoding_expat_cannot_use_is_named(tmp_path, encoding, why):
    """An XML declaration naming an encoding Python does not know, a codec that is not a
    text encoding, or a multi-byte one: expat raised LookupError or ValueError, neither
    caught (a traceback; the ValueError did not name the file). One line now."""
    path = write(tmp_path / "e.graphml",
                 f'<?xml version="1.0" encoding="{encoding}"?>\n<graphml xmlns="http://'
                 'graphml.graphdrawing.org/xmlns"><graph edgedefault="undirected"><node '
                 'id="a"/><node id="b"/><edge source="a" target="b"/></graph></graphml>\n')
    if why is None:
        assert load_graph_file(path).num_nodes == 2
        return
    with pytest.raises(DataError) as err:
        load_graph_file(path)
    assert str(err.value) == f"{path}: cannot be read in the encoding its XML declaration " \
                             f"names ({why}); save it as UTF-8"


def test_graphml_and_gml_refusals(tmp_path):
    """GML labels 1 (a number) and "1" (a string) are two nodes to networkx and one id
    once written: refused. ``--num-nodes`` is an edge-list option; a graph of nodes alone
    is empty; a numeric attribute beyond float32 is named; GML nodes without labels are
    named by their ids; a feature table must have a row for every node of the graph."""
    gml = write(tmp_path / "g.gml", 'graph [\n  node [ id 0 label 1 ]\n  node [ id 1 label '
                                    '"1" ]\n  edge [ source 0 target 1 ]\n]\n')
    with pytest.raises(DataError, match=r"g\.gml: two nodes have the same id once written as "
                                        r"text$"):
        load_graph_file(gml)
    graphml = write(tmp_path / "g.graphml", '<?xml version="1.0"?>\n<graphml xmlns="http://'
                    'graphml.graphdrawing.org/xmlns"><graph edgedefault="undirected"><node '
                    'id="a"/><node id="b"/><edge source="a" target="b"/></graph></graphml>\n')
    assert load_graph_file(graphml).num_nodes == 2
    with pytest.raises(ValueError, match="--num-nodes is for edge lists, not GraphML / GML"):
        load_graph_file(graphml, num_nodes=2)
    lonely = write(tmp_path / "n.graphml", graphml.read_text().replace(
        '<edge source="a" target="b"/>', ""))
    with pytest.raises(DataError, match=r"n\.graphml: the graph is empty \(no edges\)$"):
        load_graph_file(lonely)
    big = write(tmp_path / "b.graphml", graphml.read_text().replace(
        '<graph ', '<key id="w" for="node" attr.name="w" attr.type="double"/><graph ').replace(
        '<node id="a"/>', '<node id="a"><data key="w">1e39</data></node>').replace(
        '<node id="b"/>', '<node id="b"><data key="w">1</data></node>'))
    with pytest.raises(DataError, match=r"b\.graphml: node 'a': attribute 'w' = 1e\+39 is not "
                                        r"a finite float32 number$"):
        load_graph_file(big)
    # nodes without labels are named by their ids, as networkx reads them with label="id"
    ids = write(tmp_path / "i.gml", "graph [\n  node [ id 7 ]\n  node [ id 9 ]\n  edge [ "
                                    "source 7 target 9 ]\n]\n")
    g = load_graph_file(ids)
    assert g.node_names == ["7", "9"] and g.edge_index.tolist() == [[0, 1], [1, 0]]
    # with a feature table, its rows are the nodes: one the graph has and it lacks is named
    with pytest.raises(DataError, match=r"g\.graphml: the edge list names node 'b', which has "
                                        r"no row in the feature table$"):
        load_graph_file(graphml, write(tmp_path / "f.csv", "a,1\n"))


def test_read_features_returns_names_and_matrix(tmp_path):
    names, x = read_features(write(tmp_path / "f.tsv", "node\tv\n# c\nq\t5\np\t-1\n"))
    assert names == ["q", "p"]
    assert torch.equal(x, torch.tensor([[5.0], [-1.0]]))


def test_graphml_numeric_attributes_become_features(tmp_path):
    g = nx.Graph()
    g.add_node("n1", w=1.5, k=2, name="x", flag=True)
    g.add_node("n0", w=-0.5, k=7, name="y", flag=False)
    g.add_node("n2", w=3.0, k=0, name="z", flag=True)
    g.add_node("n3", w=1.0, k=1, name="q", flag=True)          # isolated
    g.add_edges_from([("n1", "n0"), ("n0", "n2"), ("n2", "n2")])  # self-loop dropped
    path = tmp_path / "g.graphml"
    nx.write_graphml(g, path)
    data = load_graph_file(path)
    assert data.num_nodes == 4
    assert data.node_names == ["n1", "n0", "n2", "n3"]            # file order
    # numeric keys sorted: k, w; strings and booleans are not features
    assert torch.equal(data.x, torch.tensor([[2, 1.5], [7, -0.5], [0, 3.0], [1, 1.0]]))
    # n1-n0 = (0, 1), n0-n2 = (1, 2)
    assert pairs(data.edge_index) == [(0, 1), (1, 0), (1, 2), (2, 1)]


def test_gml_lists_nested_past_the_recursion_limit_are_named(tmp_path):
    """networkx's GML parser recurses once a list level: 100,000 levels were "could not
    read gml (RecursionError: maximum recursion depth exceeded ...)"."""
    import sys
    path = tmp_path / "deep.gml"
    path.write_text("graph [ node [ id 0 ] node [ id 1 ] edge [ source 0 target 1 ] x "
                    + "[ a " * 100_000 + "1" + " ]" * 100_000 + " ]")
    with pytest.raises(DataError) as err:
        load_graph_file(path)
    assert str(err.value) == f"{path}: its lists are nested deeper than networkx's GML " \
                             f"reader can follow (Python's recursion limit, " \
                             f"{sys.getrecursionlimit():,})"
    path.write_text("graph [ node [ id 0 ] node [ id 1 ] edge [ source 0 target 1 ] x "
                    + "[ a " * 20 + "1" + " ]" * 20 + " ]")
    assert load_graph_file(path).num_nodes == 2          # 20 levels read


def test_gml_numeric_attributes_become_features(tmp_path):
    g = nx.path_graph(4)                                # 0-1-2-3
    g.add_edge(3, 0)                                    # a 4-cycle
    g.add_node(4)                                       # isolated
    for i in g:
        g.nodes[i]["v"] = 2.0 * i
        g.nodes[i]["colour"] = "red"
    path = tmp_path / "g.gml"
    nx.write_gml(g, path)
    data = load_graph_file(path)
    assert data.num_nodes == 5
    assert data.node_names == ["0", "1", "2", "3", "4"]
    assert torch.equal(data.x, torch.tensor([[0.0], [2.0], [4.0], [6.0], [8.0]]))
    assert pairs(data.edge_index) == [(0, 1), (0, 3), (1, 0), (1, 2), (2, 1), (2, 3),
                                      (3, 0), (3, 2)]


def test_graphml_without_numeric_attributes_has_no_features(tmp_path):
    g = nx.Graph([("a", "b"), ("b", "c")])
    path = tmp_path / "g.graphml"
    nx.write_graphml(g, path)
    data = load_graph_file(path)
    assert data.x is None
    assert data.num_nodes == 3


def test_graphml_and_gml_larger_than_the_cap_are_refused_before_they_are_read(
        tmp_path, monkeypatch):
    """networkx holds tens of bytes a byte of either format; a file one byte over the
    cap is refused in one line naming it, one at the cap is read."""
    from graphvae.datasets import networkx_files as nf
    g = nx.Graph([("a", "b"), ("b", "c")])
    for suffix, write_graph in ((".graphml", nx.write_graphml), (".gml", nx.write_gml)):
        path = tmp_path / f"g{suffix}"
        write_graph(g, path)
        size = path.stat().st_size
        monkeypatch.setattr(nf, "MAX_NETWORKX_BYTES", size)
        assert load_graph_file(path).num_nodes == 3
        monkeypatch.setattr(nf, "MAX_NETWORKX_BYTES", size - 1)
        monkeypatch.setattr(nf.nx, "read_gml", None)           # never reached
        monkeypatch.setattr(nf, "_read_graphml", None)
        with pytest.raises(DataError, match=rf"g{suffix}: is larger than the 0 MiB graphvae "
                                            rf"reads from a {suffix[1:]} file .*edge list"):
            load_graph_file(path)
        monkeypatch.undo()


# ---------------------------------------------------------------- validation errors

def test_check_edge_index_out_of_range():
    ei = torch.tensor([[0, 1], [1, 3]])
    with pytest.raises(ValueError, match=r"refers to node 3 but the graph has only 3 nodes"):
        check_edge_index(ei, 3)
    with pytest.raises(ValueError, match=r"refers to node 3"):
        check_graph(None, ei, 3)


def test_check_edge_index_negative():
    with pytest.raises(ValueError, match=r"negative node index \(-1\)"):
        check_edge_index(torch.tensor([[0, -1], [1, 0]]), 2)


def test_check_edge_index_shape_and_dtype():
    with pytest.raises(ValueError, match=r"shape \(2, E\)"):
        check_edge_index(torch.tensor([[0, 1, 2]]), 3)
    with pytest.raises(ValueError, match=r"torch.long"):
        check_edge_index(torch.tensor([[0.0], [1.0]]), 2)
    check_edge_index(torch.tensor([[0, 1], [1, 0]]), 2)   # valid: no error


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_check_features_non_finite(bad):
    x = torch.ones(3, 2)
    x[1, 0] = bad
    with pytest.raises(ValueError, match=r"1 NaN or infinite value"):
        check_features(x, 3)
    with pytest.raises(ValueError, match=r"NaN or infinite"):
        check_graph(x, torch.tensor([[0, 1], [1, 0]]), 3)


def test_check_features_rows_must_match_nodes():
    with pytest.raises(ValueError, match=r"feature table has 4 rows but the graph has 3 nodes"):
        check_graph(torch.zeros(4, 2), torch.tensor([[0, 1], [1, 0]]), 3)
    with pytest.raises(ValueError, match=r"2-D"):
        check_features(torch.zeros(3), 3)


def test_check_graph_empty():
    with pytest.raises(ValueError, match=r"empty: it has no nodes"):
        check_graph(None, torch.empty(2, 0, dtype=torch.long), 0)
    with pytest.raises(ValueError, match=r"empty: it has no edges"):
        check_graph(torch.zeros(3, 1), torch.empty(2, 0, dtype=torch.long), 3)
    check_graph(None, torch.empty(2, 0, dtype=torch.long), 3, require_edges=False)


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "source,target\n"])
def test_empty_edge_list_file(tmp_path, text):
    with pytest.raises(ValueError, match=r"edge list is empty"):
        load_graph_file(write(tmp_path / "e.csv", text))


def test_edge_list_of_only_self_loops_is_empty_graph(tmp_path):
    with pytest.raises(ValueError, match=r"no edges"):
        load_graph_file(write(tmp_path / "e.csv", "a,a\nb,b\n"))


def test_graphml_without_edges(tmp_path):
    g = nx.Graph()
    g.add_nodes_from(["a", "b"])
    nx.write_graphml(g, tmp_path / "g.graphml")
    with pytest.raises(ValueError, match=r"no edges"):
        load_graph_file(tmp_path / "g.graphml")


def test_non_numeric_feature_cell_names_line_and_column(tmp_path):
    edges = write(tmp_path / "e.csv", "a,b\n")
    feats = write(tmp_path / "f.csv", "id,f1,f2\na,1,2\nb,3,oops\n")
    with pytest.raises(ValueError, match=r"f\.csv:3: column 3: 'oops' is not a number"):
        load_graph_file(edges, feats)
    # Python's float reads 1_0 as 10 and ٣ as 3
    for cell in ("1_0", "\u0663"):
        feats = write(tmp_path / "f.csv", f"id,f1,f2\na,1,2\nb,3,{cell}\n")
        with pytest.raises(ValueError, match=rf"f\.csv:3: column 3: '{cell}' is not a number "
                                             r"\(numbers are read as ASCII text only"):
            load_graph_file(edges, feats)


@pytest.mark.parametrize("cell", ["nan", "inf", "-Infinity"])
def test_non_finite_feature_cell_in_file(tmp_path, cell):
    edges = write(tmp_path / "e.csv", "a,b\n")
    feats = write(tmp_path / "f.csv", f"a,1\nb,{cell}\n")
    with pytest.raises(ValueError, match=r"f\.csv:2: column 2: .* is NaN or infinite"):
        load_graph_file(edges, feats)


def test_ragged_feature_rows(tmp_path):
    feats = write(tmp_path / "f.csv", "a,1,2\nb,3\n")
    with pytest.raises(ValueError, match=r"f\.csv:2: 1 features, expected 2"):
        read_features(feats)


def test_edge_to_node_missing_from_feature_table(tmp_path):
    edges = write(tmp_path / "e.csv", "a,b\nb,z\n")
    feats = write(tmp_path / "f.csv", "a,1\nb,2\n")
    with pytest.raises(ValueError, match=r"e\.csv: the edge list names node 'z', which has no "
                                         r"row in the feature table f\.csv$"):
        load_graph_file(edges, feats)


@pytest.mark.parametrize("text, line", [("a,b\nc\n", 2), ("a,b\n\nc,\n", 3)])
def test_edge_line_with_one_field(tmp_path, text, line):
    with pytest.raises(ValueError, match=rf"e\.csv:{line}: an edge needs two node ids"):
        load_graph_file(write(tmp_path / "e.csv", text))


def test_duplicate_feature_rows(tmp_path):
    edges = write(tmp_path / "e.csv", "a,b\n")
    feats = write(tmp_path / "f.csv", "a,1\nb,2\na,3\n")
    with pytest.raises(ValueError, match=r"f\.csv:3: node 'a' has a second feature row \(the "
                                         r"first is line 1\)$"):
        load_graph_file(edges, feats)


def test_missing_edge_file(tmp_path):
    with pytest.raises(ValueError, match=r"missing\.csv: no such file"):
        load_graph_file(tmp_path / "missing.csv")
    with pytest.raises(ValueError, match=r"missing\.graphml: no such file"):
        load_graph_file(tmp_path / "missing.graphml")
    (tmp_path / "folder.csv").mkdir()
    with pytest.raises(ValueError, match=r"folder\.csv: is a folder, not a file"):
        load_graph_file(tmp_path / "folder.csv")
    with pytest.raises(ValueError, match=r"folder\.csv: is a folder, not a file"):
        load_graph_file(write(tmp_path / "e.csv", "a,b\n"), tmp_path / "folder.csv")


def test_unreadable_graphml(tmp_path):
    with pytest.raises(ValueError, match=r"g\.graphml:1: not readable XML at column 1: "
                                         r"syntax error$"):
        load_graph_file(write(tmp_path / "g.graphml", "this is not xml"))


HEAD = '<?xml version="1.0"?>\n<graphml xmlns="http://graphml.graphdrawing.org/xmlns">\n'


@pytest.mark.parametrize("name, text, message", [
    # line 2, "  node [ id 0 w nan ]": the n of nan is the 17th character
    ("a.gml", "graph [\n  node [ id 0 w nan ]\n  node [ id 1 ]\n  edge [ source 0 target 1 ]\n]",
     "a.gml:2: not readable GML at column 17: expected an int, float, string or '[', found "
     "'nan' (GML spells NaN and infinity NAN and INF; node attributes must be finite "
     "numbers)"),
    ("b.gml", "graph [\n node [ id 0 ]\n  node [ id 1 w @ ] ]",
     "b.gml:3: not readable GML at column 17: '@ ] ]' is not a GML token"),
    ("c.gml", "graph [\n node [ id 0 ]\n node [ id 1 ]\n edge [ source 0 target 1 ]\n"
              " edge [ source 1 target 0 ]\n]",
     'c.gml: not readable GML: edge #1 (1--0) is duplicated (a graph with parallel edges '
     'says "multigraph 1" in its header; graphvae merges them)'),
    ("d.gml", "\n\n", 'd.gml: holds no "graph [ ... ]" list, as every GML file does'),
    ("e.gml", "graph [\n node [ id 0 ]\n node [ id 1 ]\n edge [ source 0 target 1 ]\n",
     "e.gml:5: not readable GML at column 1: expected ']', found EOF"),
    # line 4: <node id="a"/> is 14 characters, <node id="b"> 13, then </nod> from the 28th
    ("f.graphml", HEAD + '<graph edgedefault="undirected">\n<node id="a"/><node id="b"></nod>'
                         '\n</graph></graphml>',
     "f.graphml:4: not readable XML at column 30: mismatched tag"),
    ("g.graphml", HEAD + '<graph edgedefault="undirected">\n<node id="a"/><node id="b"/>\n',
     "g.graphml:5: not readable XML at column 1: no element found"),
])
def test_parse_errors_name_the_line_and_column_in_graphvaes_words(tmp_path, name, text,
                                                                  message):
    """The GML and XML parsers' refusals read "could not read gml (NetworkXError: expected
    ..., found 'nan' at (2, 17))" and "(ParseError: mismatched tag: line 4, column 29)",
    the second counting columns from 0. Now file:line, a column from 1, and the fix where
    there is one (a repeated edge outside a multigraph; NaN as GML does not spell it)."""
    with pytest.raises(ValueError) as info:
        load_graph_file(write(tmp_path / name, text))
    assert str(info.value) == f"{tmp_path / name}".removesuffix(name) + message


def test_a_gml_file_of_other_characters_than_ascii_is_named_so(tmp_path):
    (tmp_path / "h.gml").write_bytes('graph [ node [ id 0 label "caf\xe9" ] ]'.encode("latin-1"))
    with pytest.raises(ValueError, match=r"h\.gml: not ASCII text, as GML is \(networkx "
                                         r"writes other characters as &#233;\)$"):
        load_graph_file(tmp_path / "h.gml")


def test_graphml_with_nested_or_several_graphs_is_refused_before_networkx_reads_it(
        tmp_path, monkeypatch):
    """networkx copies the graph read so far for each graph nested in a node (yEd's
    groups): 8,000 of them, 471 KB, took 46 s, growing as their square. A file of more
    than one <graph> is refused from one streaming pass, before networkx parses it; a
    flat graph, prefixed namespace or not, still loads."""
    import graphvae.datasets.networkx_files as nf

    head = ('<?xml version="1.0"?>\n<graphml xmlns="http://graphml.graphdrawing.org/xmlns">'
            '<graph edgedefault="undirected"><node id="a"/><node id="b"/>'
            '<edge source="a" target="b"/>')
    nested = "".join(f'<node id="g{i}"><graph id="s{i}" edgedefault="undirected"/></node>'
                     for i in range(3))
    write(tmp_path / "n.graphml", head + nested + "</graph></graphml>")
    write(tmp_path / "two.graphml", head + '</graph><graph edgedefault="undirected"/>'
                                           '</graphml>')
    monkeypatch.setattr(nf, "_read_graphml",
                        lambda *a: pytest.fail("networkx read a refused file"))
    for name in ("n.graphml", "two.graphml"):
        with pytest.raises(ValueError, match=rf"{name}: holds more than one <graph> "
                                             r"element \(a graph nested in a node"):
            load_graph_file(tmp_path / name)
    monkeypatch.undo()
    prefixed = ('<?xml version="1.0"?>\n<g:graphml xmlns:g="http://graphml.graphdrawing.org/'
                'xmlns"><g:graph edgedefault="undirected"><g:node id="a"/><g:node id="b"/>'
                '<g:edge source="a" target="b"/></g:graph></g:graphml>')
    data = load_graph_file(write(tmp_path / "p.graphml", prefixed))
    assert data.num_nodes == 2 and data.edge_index.size(1) == 2
    data = load_graph_file(write(tmp_path / "flat.graphml", head + "</graph></graphml>"))
    assert data.num_nodes == 2 and data.edge_index.size(1) == 2


def test_graphml_is_parsed_in_one_call(tmp_path, monkeypatch):
    """nx.read_graphml feeds the parser 16 kB at a time, and this machine's expat (2.5.0)
    re-scans a long token from its start at each piece: a 32 MB comment took 35 s (3 s
    parsed in one call). The reader now hands networkx the whole text, and keeps its
    fallback for a <graphml> element without the namespace."""
    import graphvae.datasets.networkx_files as nf

    monkeypatch.setattr(nf.nx, "read_graphml",
                        lambda *a, **k: pytest.fail("read in pieces"))
    body = ('<graph edgedefault="undirected"><node id="a"/><node id="b"/><node id="c"/>'
            '<edge source="a" target="b"/><edge source="b" target="c"/></graph></graphml>')
    for head in ('<graphml xmlns="http://graphml.graphdrawing.org/xmlns">', "<graphml>"):
        data = load_graph_file(write(tmp_path / "g.graphml",
                                     '<?xml version="1.0"?>\n<!-- ' + "x" * 100_000 + " -->"
                                     + head + body))
        assert data.num_nodes == 3 and data.edge_index.size(1) == 4


def test_unknown_dataset_name():
    with pytest.raises(ValueError, match=r"unknown dataset 'nope'; choose one of synthetic"):
        load_dataset("nope")
    assert LINKPRED_DATASETS == ("synthetic", "cora", "citeseer", "pubmed")


def test_missing_planetoid_root_offline(tmp_path):
    root = tmp_path / "nowhere"
    with pytest.raises(ValueError, match=r"Cora not found") as err:
        load_planetoid("cora", root, download=False)
    assert str(root / "Planetoid" / "Cora" / "raw") in str(err.value)
    assert not root.exists()                      # nothing created when offline
    # every one of the eight files is looked for, the test index last among them
    raw = root / "Planetoid" / "Cora" / "raw"
    raw.mkdir(parents=True)
    for suffix in ("x", "tx", "allx", "y", "ty", "ally", "graph"):
        (raw / f"ind.cora.{suffix}").write_bytes(b"")
    with pytest.raises(ValueError, match=r"Cora not found: .*raw lacks ind\.cora\.test\.index "
                                         r"\(set --data-root or GRAPHVAE_DATA\)$"):
        load_planetoid("cora", root, download=False)


def test_missing_planetoid_root_download_fails_cleanly(tmp_path):
    # No network here: the download attempt fails quickly (DNS) and must come back
    # as a ValueError that names the folder, not as a network exception.
    with pytest.raises(ValueError, match=r"Cora not found under .* download failed") as err:
        load_dataset("cora", data_root=str(tmp_path))
    assert str(tmp_path / "Planetoid" / "Cora" / "raw") in str(err.value)


def test_a_failed_download_leaves_nothing_of_its_own(tmp_path, monkeypatch):
    """The file being fetched when the download fails is removed (a truncated one would be
    read next time), and so are the folders the attempt created, unless they hold files
    fetched whole before the failure."""
    import torch_geometric.data as pyg_data

    calls = []

    def flaky(url, folder, log=True):
        calls.append(url)
        Path(folder).mkdir(parents=True, exist_ok=True)
        target = Path(folder) / url.rsplit("/", 1)[1]
        target.write_bytes(b"partial")
        if len(calls) == fail_at:
            raise OSError("connection reset")
        return str(target)

    monkeypatch.setattr(pyg_data, "download_url", flaky)
    fail_at = 1
    root = tmp_path / "data"
    with pytest.raises(ValueError, match=r"download failed \(OSError: connection reset\)"):
        load_planetoid("cora", root)
    assert not root.exists() and list(tmp_path.iterdir()) == []
    fail_at, calls = 3, []
    with pytest.raises(ValueError, match=r"download failed"):
        load_planetoid("cora", root)
    raw = root / "Planetoid" / "Cora" / "raw"
    assert sorted(p.name for p in raw.iterdir()) == sorted(
        u.rsplit("/", 1)[1] for u in calls[:2])                  # the two fetched whole


# ---------------------------------------------------------------- Cora

def _listing(root: Path) -> list[tuple[str, int, int]]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in sorted(dirnames + filenames):
            p = Path(dirpath) / name
            st = p.lstat()
            out.append((str(p.relative_to(root)), st.st_size, st.st_mtime_ns))
    return sorted(out)


@needs_cora
def test_cora_from_shared_data_is_read_only(monkeypatch):
    before = _listing(DATA_ROOT)
    data = load_planetoid("cora", DATA_ROOT, download=False)
    assert data.num_nodes == 2708
    assert data.edge_index.shape == (2, 10556)
    assert data.x.shape == (2708, 1433)
    assert data.x.dtype == torch.float
    assert data.y.shape == (2708,) and data.y.unique().numel() == 7
    ei = data.edge_index
    assert int((ei[0] < ei[1]).sum()) == 5278              # undirected edges
    assert not bool((ei[0] == ei[1]).any())
    fwd = set(pairs(ei))
    assert fwd == {(j, i) for i, j in fwd}
    # the download=True path, through the data-root argument and through $GRAPHVAE_DATA
    again = load_dataset("cora", data_root=str(DATA_ROOT))
    assert torch.equal(again.edge_index, ei) and torch.equal(again.x, data.x)
    monkeypatch.setenv("GRAPHVAE_DATA", str(DATA_ROOT))
    assert load_dataset("CORA").num_nodes == 2708
    assert _listing(DATA_ROOT) == before


# ---------------------------------------------------------------- synthetic default

def test_sbm_graph_is_deterministic_and_simple():
    a, b, c = make_sbm_graph(seed=0), make_sbm_graph(seed=0), make_sbm_graph(seed=1)
    assert torch.equal(a.edge_index, b.edge_index)
    assert torch.equal(a.x, b.x)
    assert torch.equal(a.y, b.y)
    assert (a.edge_index.shape != c.edge_index.shape
            or not torch.equal(a.edge_index, c.edge_index))
    assert not torch.equal(a.x, c.x)
    n = a.num_nodes
    assert n == 600 and a.x.shape == (600, 64)
    assert set(a.x.unique().tolist()) <= {0.0, 1.0}
    ei = a.edge_index
    assert not bool((ei[0] == ei[1]).any())                          # no self-loops
    adj = edge_index_to_dense(ei, n)
    assert torch.equal(adj, adj.t())                                 # symmetric
    assert int(adj.sum()) == ei.size(1)                              # no duplicate pairs
    keys = ei[0] * n + ei[1]
    assert bool((keys[1:] > keys[:-1]).all())                        # sorted by (i, j)
    assert 1500 < ei.size(1) // 2 < 3500                             # "about 2,400 edges"
    assert sorted(a.y.unique().tolist()) == [0, 1, 2, 3]
    assert torch.equal(load_dataset("synthetic").edge_index, ei)


def test_sbm_graph_blocks_follow_num_blocks():
    g = make_sbm_graph(num_nodes=60, num_blocks=3, feature_dim=12, seed=5)
    assert sorted(g.y.unique().tolist()) == [0, 1, 2]
    assert g.x.shape == (60, 12)
    with pytest.raises(ValueError, match=r"need 1 <= num_blocks <= num_nodes"):
        make_sbm_graph(num_nodes=2, num_blocks=3)


def test_sbm_graph_refuses_impossible_parameters():
    """p_in = −5 gave a graph (probabilities clipped by the comparison), a huge num_nodes
    asked for n² arrays, and an empty block warned 'Mean of empty slice'."""
    for kwargs, message in [({"p_in": -5.0}, "p_in must be a probability"),
                            ({"q_out": 1.5}, "q_out must be a probability"),
                            ({"degree_shape": 0.0}, "degree_shape must be a finite number"),
                            ({"num_nodes": 10 ** 6}, "num_nodes <= 10,000"),
                            ({"num_nodes": 6.0}, "num_nodes must be a whole number"),
                            ({"feature_dim": 0}, "feature_dim must be a whole number >= 1")]:
        with pytest.raises(ValueError, match=message):
            make_sbm_graph(**kwargs)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)   # no numpy "Mean of empty slice" (a
        # filter on every warning failed torch_geometric's first import, in its jit warning)
        g = make_sbm_graph(num_nodes=8, num_blocks=7, feature_dim=7, p_in=1.0, p_out=1.0,
                           seed=0)
    assert g.num_nodes == 8 and set(g.y.tolist()) == set(range(6))   # block 6 left empty


# ---------------------------------------------------------------- permutations

def test_permute_graph_on_a_path():
    # path 0 - 1 - 2; perm = [2, 0, 1]: new 0 = old 2, new 1 = old 0, new 2 = old 1.
    ei = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
    x = torch.tensor([[10.0], [11.0], [12.0]])
    perm = torch.tensor([2, 0, 1])
    adj = edge_index_to_dense(ei, 3)
    x2, ei2, adj2 = permute_graph(perm, x, ei, adj)
    # old (0,1) -> (1,2); (1,0) -> (2,1); (1,2) -> (2,0); (2,1) -> (0,2)
    assert ei2.tolist() == [[1, 2, 2, 0], [2, 1, 0, 2]]
    assert x2.tolist() == [[12.0], [10.0], [11.0]]
    # P[i, perm[i]] = 1
    P = torch.tensor([[0.0, 0, 1], [1, 0, 0], [0, 1, 0]])
    expected = P @ adj @ P.t()
    assert expected.tolist() == [[0, 0, 1], [0, 0, 1], [1, 1, 0]]   # old 1 is now the centre
    assert torch.equal(adj2, expected)
    assert torch.equal(edge_index_to_dense(ei2, 3), expected)
    assert torch.equal(x2, P @ x)
    none = permute_graph(perm)
    assert none == (None, None, None)


@pytest.mark.parametrize("layout", [torch.sparse_coo, torch.sparse_csr])
def test_permute_graph_keeps_sparse_features_sparse(layout):
    """Sparse features (a featureless graph's identity; bag-of-words) move with their
    nodes in their own layout, never densified: by hand on the path, then P X on a random
    sparse matrix with an empty row."""
    perm = torch.tensor([2, 0, 1])
    x = torch.tensor([[10.0, 0], [0, 11.0], [0, 0]])
    xs = x.to_sparse_coo() if layout == torch.sparse_coo else sparse_features(x)
    moved, _, _ = permute_graph(perm, xs)
    assert moved.layout == layout
    assert moved.to_dense().tolist() == [[0, 0], [10.0, 0], [0, 11.0]]
    g = torch.Generator().manual_seed(0)
    x = torch.rand(40, 7, generator=g, dtype=torch.float64)
    x[x < 0.7] = 0
    x[5] = 0
    perm = torch.randperm(40, generator=g)
    xs = x.to_sparse_coo() if layout == torch.sparse_coo else sparse_features(x)
    moved, _, _ = permute_graph(perm, xs)
    assert moved.layout == layout and moved.dtype == torch.float64
    assert torch.equal(moved.to_dense(), x[perm])


def test_dense_edge_index_round_trip():
    from graphvae.graph import dense_to_edge_index, edge_index_to_dense

    adj = torch.tensor([[0, 1, 0], [1, 0, 1], [0, 1, 0]])
    ei = dense_to_edge_index(adj)
    assert ei.tolist() == [[0, 1, 1, 2], [1, 0, 2, 1]]
    assert torch.equal(edge_index_to_dense(ei, 3, dtype=torch.long), adj)
    with pytest.raises(ValueError, match="square"):
        dense_to_edge_index(torch.zeros(2, 3))


def test_graph_pickles_load_with_the_restricted_unpickler(tmp_path):
    import pickle

    from graphvae.datasets.graphgen import load_graph_pickle, load_graphgen

    good = tmp_path / "ok.pkl"
    good.write_bytes(pickle.dumps([nx.path_graph(3), nx.cycle_graph(4)]))
    graphs = load_graph_pickle(good)
    assert [g.number_of_edges() for g in graphs] == [2, 4]

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    bad = tmp_path / "evil.pkl"
    bad.write_bytes(pickle.dumps([Evil()]))
    with pytest.raises(ValueError, match="refusing to load"):
        load_graph_pickle(bad)
    with pytest.raises(ValueError, match="unknown graph set"):
        load_graphgen("community-big", tmp_path)
    with pytest.raises(ValueError, match="has neither grid.g6 nor grid.pkl"):
        load_graphgen("grid", tmp_path)
    if (DATA_ROOT / "graphgen" / "community_small.pkl").is_file():
        cs = load_graphgen("community-small", DATA_ROOT)
        assert len(cs) == 100
        assert min(g.number_of_nodes() for g in cs) == 12
        assert max(g.number_of_nodes() for g in cs) == 20


def test_graph_tensors_refuse_directed_graphs_and_mismatched_features():
    """A DiGraph holding both directions of (0, 1) gave that edge twice (degrees 2, 3, 1
    for the path 0-1-2); feature tables with the wrong row count were batched silently."""
    import networkx as nx

    from graphvae.containers import GraphBatch, GraphTensors

    for kind in (nx.DiGraph, nx.MultiGraph):
        with pytest.raises(ValueError, match=f"got a {kind.__name__}"):
            GraphTensors.from_networkx(kind([(0, 1), (1, 2)]))
    path = GraphTensors.from_networkx(nx.path_graph(3))
    assert path.edge_index.size(1) == 4                      # (0,1), (1,2), both ways
    cycle = GraphTensors.from_networkx(nx.cycle_graph(4))
    with pytest.raises(ValueError, match=r"graph 1 has 4 nodes but its features have shape "
                                         r"\(3, 2\)"):
        GraphBatch.collate([path, cycle], [torch.ones(3, 2), torch.ones(3, 2)])
    with pytest.raises(ValueError, match="2 graphs but 1 feature tables"):
        GraphBatch.collate([path, cycle], [torch.ones(3, 2)])
    assert GraphBatch.collate([path, cycle], [torch.ones(3, 2), torch.ones(4, 2)]).x.shape \
        == (7, 2)


def test_write_edge_list_refuses_uint64_ids_past_int64(tmp_path):
    """2⁶³ + 4 wrapped to a negative int64 past the sign check and was written as 6."""
    import numpy as np

    from graphvae.datasets.sbm import write_edge_list

    with pytest.raises(ValueError, match="past 2⁶³ − 1"):
        write_edge_list(np.array([[2 ** 63 + 4], [5]], dtype=np.uint64), tmp_path / "e.txt")
    assert not (tmp_path / "e.txt").exists()
    write_edge_list(np.array([[2 ** 63 - 1], [5]], dtype=np.uint64), tmp_path / "e.txt")
    assert (tmp_path / "e.txt").read_text().splitlines()[1] == f"{2 ** 63 - 1} 5"
