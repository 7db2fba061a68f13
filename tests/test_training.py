import pytest
import torch

from graphvae.devices import resolve_device
from graphvae.io import save_atomic, write_json
from graphvae.models import ModelOutput
from graphvae.training import fit


def _quadratic_problem():
    w = torch.nn.Linear(1, 1, bias=False)
    torch.nn.init.constant_(w.weight, 0.0)

    def step():
        loss = (w.weight - 3.0).pow(2).sum()
        z = torch.zeros(1)
        return ModelOutput(loss, -loss, -loss, z.sum(), z)
    return w, step


def test_fit_restores_best_validation_epoch(tmp_path):
    w, step = _quadratic_problem()
    scores = iter([0.1, 0.5, 0.9, 0.2, 0.1, 0.0, 0.0, 0.0])
    seen = []

    def evaluate():
        seen.append(w.weight.item())
        return {"score": next(scores)}

    res = fit(w, step, epochs=8, lr=0.5, evaluate=evaluate, patience=3, progress=False,
              checkpoint=tmp_path / "m.pt")
    assert res.best_epoch == 3 and res.epochs == 6      # stopped 3 epochs after the best
    assert w.weight.item() == pytest.approx(seen[2])
    ck = torch.load(tmp_path / "m.pt")
    assert ck["epoch"] == 3 and ck["state_dict"]["weight"].item() == pytest.approx(seen[2])


def test_fit_reports_divergence():
    w = torch.nn.Linear(1, 1)

    def step():
        loss = w.weight.sum() * float("nan")
        z = torch.zeros(1)
        return ModelOutput(loss, loss, loss, z.sum(), z)

    with pytest.raises(FloatingPointError, match="diverged"):
        fit(w, step, epochs=3, progress=False)


def test_atomic_save_keeps_old_file_on_failure(tmp_path, monkeypatch):
    path = tmp_path / "ck.pt"
    save_atomic({"a": 1}, path)
    write_json({"b": 2}, tmp_path / "m.json")

    def broken(obj, f):
        with open(f, "wb") as fh:
            fh.write(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken)
    with pytest.raises(OSError):
        save_atomic({"a": 2}, path)
    monkeypatch.undo()
    assert torch.load(path) == {"a": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.pt", "m.json"]


def test_resolve_device():
    assert resolve_device("cpu").type == "cpu"
    with pytest.raises(ValueError):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA"):
            resolve_device("cuda")
