"""benchmarks/train_throughput.py: its rows run and report, and the stop38 row times the code stop 39 replaced."""

import json

import torch

from test_eval import _benchmark


def test_the_stop38_row_swaps_the_old_tile_and_quartiles_in_and_back_out():
    bench = _benchmark("train_throughput")
    from faderkit_plugins.paper import networks

    new_tile, new_quartiles = networks.in_layout_of, networks.column_quantiles
    x = torch.randn(2, 4, 8, 8).contiguous(memory_format=torch.channels_last)
    tile = torch.ones(2, 3, 1, 1).expand(-1, -1, 8, 8)
    with bench.stop38():
        assert not networks.in_layout_of(x, tile).is_contiguous(memory_format=torch.channels_last)
        z = torch.randn(16, 40)
        assert torch.equal(networks.column_quantiles(z, [0.25, 0.5]), torch.quantile(z, torch.tensor([0.25, 0.5]), dim=0))
    assert (networks.in_layout_of, networks.column_quantiles) == (new_tile, new_quartiles)
    assert networks.in_layout_of(x, tile).is_contiguous(memory_format=torch.channels_last)


def test_a_quick_run_times_each_row(tmp_path, monkeypatch, capsys):
    bench = _benchmark("train_throughput")
    monkeypatch.setattr(bench.common, "DATA", tmp_path / "data")  # its toy faces, not the repository's
    out = tmp_path / "speed.json"
    assert bench.main(["--quick", "--rows", "default", "stop38", "--json", str(out)]) == 0
    rows = {r["row"]: r for r in json.loads(out.read_text())["results"]}
    assert set(rows) == {"default", "stop38"}
    for r in rows.values():
        assert r["s_per_iter"] > 0 and len(r["windows_s"]) == 1 and r["gflop_per_iter"] > 0
    assert "stop38" in capsys.readouterr().out
