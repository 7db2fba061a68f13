"""Seeded odd command lines for every command: each is refused with one line and exit
status 2 (after any notes), or accepted. Training is replaced by a stop (the
``training_stopped`` fixture), so an accepted command line costs its checks and its data
reading only. The values are the ones users mistype or scripts produce: empty, blank, NaN,
±inf, 10⁴⁰, 21 digits, 5,000 digits, hex, underscores, a subnormal, paths that are not
folders, a newline, an emoji."""

import argparse
import contextlib
import io
import random

import pytest

VALUES = ("0", "-1", "1", "2", "3", "10", "1e9", "1e40", "1e308", "nan", "inf", "-inf",
          "1e-320", "-5e-324", "x", "", " ", "1.5", "0.999999999999", "65537",
          "999999999999999999999", "1" * 5000, "0x10", "1_0", "-0", "/", "/dev/null",
          "/nonexistent/x", "a\nb", "\U0001f600", "none", "None", "true", "1,2", "8,,8",
          "8,-1", "4,", "cpu", "cuda", "auto")
CASES = 600


def _command_lines(seed: int, count: int, out_dir) -> list[list[str]]:
    from graphvae.cli import build_parser
    parser = build_parser()
    subs = next(a for a in parser._actions
                if isinstance(a, argparse._SubParsersAction)).choices
    lines = []
    for i in range(count):
        rng = random.Random(f"{seed}-{i}")
        command = rng.choice(sorted(subs))
        flags = [a for a in subs[command]._actions
                 if a.option_strings and a.dest not in ("help", "debug")]
        argv = [command]
        for action in rng.sample(flags, min(len(flags), rng.randint(1, 6))):
            flag = rng.choice(action.option_strings)
            if action.nargs == 0:
                argv.append(flag)
                continue
            value = rng.choice([*VALUES, *map(str, action.choices or ())])
            # a value that starts with "-" given apart is read as a flag: both spellings
            argv += [f"{flag}={value}"] if value.startswith("-") and rng.random() < 0.5 \
                else [flag, value]
        if "--out" not in argv:
            argv += ["--out", str(out_dir / f"o{i}")]
        lines.append(argv)
    return lines


def test_odd_command_lines_are_refused_in_one_line_or_accepted(tmp_path, training_stopped):
    from graphvae.cli import main
    outcomes = {"refused": 0, "accepted": 0}
    commands = set()
    for argv in _command_lines(0, CASES, tmp_path):
        err = io.StringIO()
        try:
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                status = main(argv)
        except training_stopped:
            status = 0
        except SystemExit as stop:
            status = stop.code
        lines = err.getvalue().splitlines()
        if status == 2:
            assert lines and lines[-1].startswith("graphvae: error: "), (argv, lines)
            assert all(": note: " in line for line in lines[:-1]), (argv, lines)
            assert len(lines[-1]) <= 1000, (argv, len(lines[-1]))
            outcomes["refused"] += 1
        else:
            assert status == 0, (argv, status, lines[-5:])
            outcomes["accepted"] += 1
        commands.add(argv[0])
    assert len(commands) == 7                    # every command drew cases
    assert outcomes["refused"] > CASES // 2 and outcomes["accepted"] > 0, outcomes


def _refusal(capsys, hidden: str) -> str:
    from graphvae.cli import main
    with pytest.raises(SystemExit) as stop:
        main(["linkpred", "--hidden", hidden, "--quiet"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("graphvae: error: argument --hidden: ")
    return err


def test_a_refused_value_of_5000_digits_is_cut(capsys):
    err = _refusal(capsys, "1" * 5000)
    assert "'" + "1" * 100 in err and "1" * 5000 not in err and "1... (see graphvae" in err


def test_a_refused_value_holding_a_newline_is_escaped(capsys):
    assert "got 'a\\nb'" in _refusal(capsys, "a\nb")
