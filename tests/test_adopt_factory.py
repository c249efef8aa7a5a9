"""A factory's own torch scheduler is adopted: stepped by schedtui, shown as the lr's schedule, reproduced by rerun."""

import sys
import textwrap

from engine_helpers import of_type
from schedtui.cli import main
from test_experiment import only_log

FACTORY = """
    import torch
    from torch import nn
    import schedtui

    def experiment():
        g = torch.Generator().manual_seed(0)
        x = torch.randn(96, 4, generator=g)
        y = (x[:, 0] * x[:, 1] > 0).long()  # hard for a linear model: the validation loss stalls
        torch.manual_seed(0)
        model = nn.Linear(4, 2)
        opt = torch.optim.SGD(model.parameters(), lr=0.5)
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=0, threshold=0.5)
        return schedtui.Experiment(model=model, train=(x[:64], y[:64]), val=(x[64:], y[64:]), optimizer=opt,
                                   scheduler=sched)
"""


def test_a_factorys_plateau_scheduler_gets_its_metric_and_reruns_bit_for_bit(tmp_path, monkeypatch, capsys):
    (tmp_path / "mods").mkdir()
    (tmp_path / "mods" / "plateau_factory.py").write_text(textwrap.dedent(FACTORY))
    monkeypatch.syspath_prepend(str(tmp_path / "mods"))
    sys.modules.pop("plateau_factory", None)
    sets = ["--set", 'device="cpu"', "--set", "data.batch_size=16", "--epochs", "4"]
    assert main(["run", "plateau_factory:experiment", "--headless", "--runs-dir", str(tmp_path / "a"), *sets]) == 0, \
        capsys.readouterr().err
    log = only_log(tmp_path / "a")
    lrs = [s["knobs"]["lr"] for s in of_type(log, "step")]
    # torch's ReduceLROnPlateau: the first evaluation sets its best; each later one that is no better halves the lr
    assert lrs[:8] == [0.5] * 8 and lrs[8:12] == [0.25] * 4 and lrs[12:] == [0.125] * 4
    assert "ReduceLROnPlateau" in log.header["knobs"]["lr"] and "val_loss" in log.header["knobs"]["lr"]
    assert main(["rerun", str(log.path), "--headless", "--experiment", "plateau_factory:experiment",
                 "--runs-dir", str(tmp_path / "b")]) == 0, capsys.readouterr().err
    again = only_log(tmp_path / "b")
    assert [(s["loss"], s["knobs"]) for s in of_type(again, "step")] == [(s["loss"], s["knobs"]) for s in of_type(log, "step")]
