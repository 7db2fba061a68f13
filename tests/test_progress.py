"""Progress bars show on a terminal only, and never when turned off."""

import io
import sys

import pytest

from graphvae.progress import bar, steps


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def _shown(monkeypatch, stream, enabled):
    monkeypatch.setattr(sys, "stderr", stream)
    got = list(steps(range(5), "counting", enabled, " things"))
    with bar("one step", enabled, 1) as b:
        b.update()
    assert got == [0, 1, 2, 3, 4]                 # the items pass through unchanged
    return stream.getvalue()


def test_bars_show_on_a_terminal(monkeypatch):
    text = _shown(monkeypatch, _Terminal(), True)
    assert "counting" in text and "/5 " in text and "one step" in text


def test_no_bars_off_a_terminal_or_when_turned_off(monkeypatch):
    assert _shown(monkeypatch, io.StringIO(), True) == ""
    assert _shown(monkeypatch, _Terminal(), False) == ""


def test_a_step_that_fails_closes_its_bar(monkeypatch):
    stream = _Terminal()
    monkeypatch.setattr(sys, "stderr", stream)

    def rows():
        yield 1
        raise ValueError("bad row")

    with pytest.raises(ValueError, match="bad row"):       # the error reaches the caller
        list(steps(rows(), "reading", True))
    # the bar is cleared (leave=False): its last write ends the line it drew
    assert stream.getvalue().endswith("\r") or stream.getvalue().endswith("\x1b[A")


def test_the_training_loop_and_scoring_bars_show_on_a_terminal_only(monkeypatch):
    """The training loop's bar (and the vector log p(x) and extra-draw bars, built the same
    way) wrote carriage-return updates into logs: a diverged run's error line then began
    with bar text. Off a terminal they print nothing; on one the loop's bar shows."""
    import torch
    from conftest import ToyBound

    from graphvae.training import fit
    from graphvae.vector import build_vector_model
    from graphvae.vector.train import estimate_nll

    def run(stream):
        monkeypatch.setattr(sys, "stderr", stream)
        m = ToyBound(2)
        fit(m, [torch.ones(2)], torch.optim.SGD(m.parameters(), lr=0.1), epochs=3,
            progress=True, desc="toy")
        estimate_nll(build_vector_model("vae", 3, latent_dim=2, hidden=(4,)),
                     torch.rand(4, 3).round(), num_samples=2, batch_size=2, progress=True)
        return stream.getvalue()

    assert run(io.StringIO()) == ""
    shown = run(_Terminal())
    assert "toy" in shown and "log p(x)" in shown


def test_library_loops_show_bars_only_inside_shown(monkeypatch):
    """The invariance checks' bars (per relabelling, and per row block of a large graph's
    exact likelihood) show inside progress.shown(True), as check-invariance opens it unless
    --quiet; a user's own call, or shown(False), draws nothing."""
    import torch

    from graphvae.likelihoods import bernoulli_edges_dense_rows
    from graphvae.models import build_model
    from graphvae.progress import shown
    from graphvae.testing import check_all

    torch.manual_seed(0)
    model = build_model("vgae", 3, "gcn", (8,), 4)
    ei = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
    graph = (torch.randn(3, 3), ei)
    keys = torch.tensor([1, 3, 5, 7])

    def run(on):
        stream = _Terminal()
        monkeypatch.setattr(sys, "stderr", stream)
        with shown(on):
            check_all(model, graph, num_permutations=2)
            bernoulli_edges_dense_rows(lambda rows: torch.zeros(len(rows), 3), keys, 3,
                                       block_entries=3)
        check_all(model, graph, num_permutations=1)             # outside: never a bar
        return stream.getvalue()

    text = run(True)
    for desc in ("encoder check", "decoder check", "bound check", "exact edge likelihood"):
        assert desc in text, desc
    assert "/2 " in text and "/3 " in text        # two relabellings; three one-row blocks
    assert run(False) == ""
