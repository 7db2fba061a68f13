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
