"""The environment record written beside every result (graphvae.provenance)."""

from __future__ import annotations

import json
import platform

import networkx as nx
import numpy as np
import scipy
import torch

from graphvae import provenance


def test_package_versions_are_the_installed_ones_and_none_when_absent():
    got = provenance.package_versions(("torch", "numpy", "scipy", "networkx",
                                       "no-such-distribution-graphvae-test"))
    assert got == {"torch": torch.__version__, "numpy": np.__version__,
                   "scipy": scipy.__version__, "networkx": nx.__version__,
                   "no-such-distribution-graphvae-test": None}


def test_cpu_model_reads_the_first_model_name(tmp_path, monkeypatch):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nvendor_id\t: X\nmodel name\t: Foo CPU 9000 @ 1GHz\n\n"
                    "processor\t: 1\nmodel name\t: Other\n")
    assert provenance.cpu_model(str(info)) == "Foo CPU 9000 @ 1GHz"
    monkeypatch.setattr(platform, "processor", lambda: "")
    info.write_text("processor\t: 0\nmodel name\t:   \n")            # blank: not a name
    assert provenance.cpu_model(str(info)) is None
    assert provenance.cpu_model(str(tmp_path / "absent")) is None
    monkeypatch.setattr(platform, "processor", lambda: "arm")
    assert provenance.cpu_model(str(tmp_path / "absent")) == "arm"


def test_environment_on_cpu():
    env = provenance.environment("cpu")
    assert json.loads(json.dumps(env)) == env                        # JSON as it is
    assert env["python"] == platform.python_version()
    assert env["torch_threads"] == torch.get_num_threads()
    assert env["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert set(env["packages"]) == set(provenance.PACKAGES)
    assert "cuda" not in env


def test_manifest_records_the_threads_the_run_used_and_its_device(tmp_path, monkeypatch):
    """A small run uses one thread (``threads_for``) whatever the process's setting; the
    manifest is written inside that setting, so it records 1, not the setting restored
    after the run (it recorded 2 here before). ``output_folder`` hands its device to
    :func:`environment`, which adds a CUDA run's GPU."""
    from conftest import run_cli

    from graphvae import run_folder

    old = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        rc, _, err = run_cli(["linkpred", "--quiet", "--epochs", "1",
                              "--out", str(tmp_path / "o")])
        assert rc == 0, err
        assert torch.get_num_threads() == 2                      # restored after the run
    finally:
        torch.set_num_threads(old)
    manifest = json.loads((tmp_path / "o" / "manifest.json").read_text())
    assert manifest["environment"]["torch_threads"] == 1
    seen = []
    monkeypatch.setattr(run_folder, "environment", lambda device=None: seen.append(device) or {})
    with run_folder.output_folder(tmp_path / "p", "test", torch.device("cuda", 0)) as stage:
        (stage / "a.txt").write_text("a")
    assert seen == [torch.device("cuda", 0)]


def test_each_command_hands_its_device_and_thread_setting_to_the_manifest(tmp_path,
                                                                          monkeypatch):
    """linkpred, generate and vector open their output folder with the run's device,
    inside the run's thread setting (one thread for these small runs, whatever the
    process's): the folder is replaced here by one that records both and stops the run."""
    import importlib

    from conftest import run_cli

    class Opened(Exception):
        pass

    seen = {}
    for command in ("linkpred", "generate", "vector"):
        module = importlib.import_module(f"graphvae.cli.{command}")

        def opened(out, name, device=None, _command=command):
            seen[_command] = (device, torch.get_num_threads())
            raise Opened

        monkeypatch.setattr(module, "output_folder", opened)
    old = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        for command in ("linkpred", "generate", "vector"):   # stopped where it opened
            rc, _, err = run_cli([command, "--quiet", "--epochs", "1",
                                  "--out", str(tmp_path / command)])
            assert rc != 0 and "Opened" in err, (command, err)
    finally:
        torch.set_num_threads(old)
    assert seen == {c: (torch.device("cpu"), 1) for c in ("linkpred", "generate", "vector")}
