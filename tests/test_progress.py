"""Progress bars show on a terminal only, and never when turned off."""

import io
import sys

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

    try:
        list(steps(rows(), "reading", True))
    except ValueError:
        pass
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
