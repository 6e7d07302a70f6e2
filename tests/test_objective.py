"""The objective as components: train.objective.losses, the built-in terms, a third-party term, the old flat fields."""

import json

import pytest
import torch
import torch.nn.functional as F

import faderkit
from faderkit import Entry, FaderkitError, hookimpl
from faderkit.checkpoint import load
from faderkit.recipe import apply_overrides, validate
from faderkit.train import train
from faderkit.train.objective import LossTerm, objective

from conftest import tiny_recipe

FLAT = {"edge_weight": 2.0, "lambda_e": 0.01}
LISTED = [{"name": "mse"}, {"name": "edges", "weight": 2.0}, {"name": "adversary", "weight": 0.01}]


def recipe(root, **train_fields) -> dict:
    """tiny_recipe; with train.objective.losses, without its flat lambda_e."""
    raw = tiny_recipe(root, **train_fields)
    if "losses" in train_fields:
        del raw["train"]["objective"]["lambda_e"]
    return raw


def _train(root, run, **train_fields):
    train(validate(recipe(root, **train_fields)), run, progress=False, log=lambda m: None)
    return load(run / "last.safetensors")[0]


def test_flat_fields_describe_the_same_terms_as_the_list():
    flat = objective(validate(tiny_recipe("x", **FLAT)).train.objective)
    assert [(t.name, t.weight, t.params) for t in flat] == [("mse", 1.0, {}), ("edges", 2.0, {"kind": "mse"}),
                                                          ("adversary", 0.01, {})]
    listed = objective(validate(recipe("x", losses=LISTED)).train.objective)
    assert [(t.name, t.weight, t.params) for t in listed] == [(t.name, t.weight, t.params) for t in flat]


def test_a_listed_objective_trains_to_the_same_weights_as_its_flat_fields(toy_root, tmp_path):
    a = _train(toy_root, tmp_path / "flat", **FLAT)
    b = _train(toy_root, tmp_path / "listed", losses=LISTED)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    c = _train(toy_root, tmp_path / "other", losses=[{"name": "mse"}, {"name": "adversary", "weight": 0.01}])
    assert not all(torch.equal(a[k], c[k]) for k in a if k.startswith("model.decoder"))


def test_flat_weights_beside_a_list_are_refused():
    with pytest.raises(FaderkitError, match="train.objective.edge_weight and train.objective.losses both given"):
        validate(tiny_recipe("x", edge_weight=2.0, losses=LISTED))
    with pytest.raises(FaderkitError, match="lists mse twice"):
        validate(recipe("x", losses=[{"name": "mse"}, {"name": "mse"}]))
    with pytest.raises(FaderkitError, match=r"train\.objective\.losses\.1\.name: unknown loss 'edgse'; choose one of: .*edges"):
        validate(recipe("x", losses=[{"name": "mse"}, {"name": "edgse"}]))
    with pytest.raises(FaderkitError, match=r"train\.objective\.losses\.1\.params\.kind"):
        validate(recipe("x", losses=[{"name": "mse"}, {"name": "edges", "params": {"kind": "l3"}}]))


def test_set_reaches_a_term_by_name_or_index():
    raw = recipe("x", losses=[dict(t) for t in LISTED])
    apply_overrides(raw, ["train.objective.losses.edges.weight=5", "train.objective.losses.0.name=l1"])
    assert [(t["name"], t.get("weight")) for t in raw["train"]["objective"]["losses"]] == [("l1", None), ("edges", 5), ("adversary", 0.01)]
    with pytest.raises(FaderkitError, match="no item 'edgs' in that list.*mse, edges, adversary"):
        apply_overrides(recipe("x", losses=[dict(t) for t in LISTED]), ["train.objective.losses.edgs.weight=5"])


class _Counting(LossTerm):
    calls = 0

    def __init__(self, env, scale: float = 1.0):
        self.scale = scale

    def loss(self, step):
        _Counting.calls += 1
        value = self.scale * step.recon.abs().mean()
        return value, {"loss_counting": value}


class _Plugin:
    @hookimpl
    def faderkit_losses(self):
        return [Entry("counting", _Counting, "a third-party term")]


def test_the_weighted_reconstruction_also_logs_the_plain_one(toy_root, tmp_path):
    _train(toy_root, tmp_path / "w", steps=2, log_every=1,
           losses=[{"name": "attribute_weighted"}, {"name": "adversary", "weight": 0.01}])
    logged = [json.loads(l) for l in (tmp_path / "w" / "metrics.jsonl").read_text().splitlines() if "loss_weighted" in l]
    assert logged and all(m["loss_rec"] > 0 and m["loss_weighted"] != m["loss_rec"] for m in logged)


def test_a_third_party_term_is_listed_trained_and_logged(toy_root, tmp_path):
    plugin = _Plugin()
    faderkit.plugins.register(plugin, "counting-plugin")
    try:
        _Counting.calls = 0
        _train(toy_root, tmp_path / "run", steps=3, log_every=1,
               losses=[{"name": "mse"}, {"name": "counting", "weight": 0.5, "params": {"scale": 2.0}}])
        assert _Counting.calls == 3
        logged = [json.loads(l) for l in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines() if "loss_rec" in l]
        assert all(m["loss_counting"] > 0 and "loss_dis" not in m for m in logged)  # no adversary listed: none ran
    finally:
        faderkit.plugins.unregister(plugin)


@pytest.mark.parametrize("name", ["attribute_weighted", "focal_frequency", "l1", "coarse"])
def test_each_reconstruction_term_trains_and_is_zero_on_a_perfect_reconstruction(toy_root, tmp_path, name):
    from faderkit.plugins import registries
    from faderkit.train.objective import Step

    _train(toy_root, tmp_path / name, steps=2, losses=[{"name": name}, {"name": "adversary", "weight": 0.01}])

    env = _term_env(validate(tiny_recipe(toy_root)))  # what a term reads when it is built
    term = registries()["loss"].create(name, env, params={})
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    step = Step(0, x, torch.zeros(2, 2, dtype=torch.long), [], None, None, None)
    step.recon = x.clone()
    assert float(term.loss(step)[0]) == pytest.approx(0.0, abs=1e-7)
    step.recon = x + 0.1
    assert float(term.loss(step)[0]) > 0


def test_the_coarse_term_sees_the_colour_the_edges_cannot_and_little_of_a_thin_stroke():
    from faderkit.train.reconstruction import coarse_loss, edge_loss

    x = torch.rand(2, 3, 32, 32) * 2 - 1
    tinted = x + torch.tensor([0.2, 0.0, -0.1])[:, None, None]  # a colour cast: no edge moves
    assert float(edge_loss(tinted, x)) == pytest.approx(0.0, abs=1e-10)
    assert float(coarse_loss(tinted, x)) == pytest.approx((0.2**2 + 0.1**2) / 3, rel=1e-5)
    stroke = x.clone()
    stroke[:, :, 16, 4:28] += 1.0  # a one-pixel line: a quarter of it survives 4 x 4 blocks, squared a sixteenth
    assert float(coarse_loss(stroke, x)) == pytest.approx(float(F.mse_loss(stroke, x)) / 4, rel=1e-5)
    assert float(coarse_loss(stroke, x, pool=2)) == pytest.approx(float(F.mse_loss(stroke, x)) / 2, rel=1e-5)
    odd = torch.rand(1, 3, 30, 30)  # sides not a multiple of the block: the last blocks are partial, nothing dropped
    assert float(coarse_loss(odd + 0.5, odd)) == pytest.approx(0.25, rel=1e-5)


def test_the_attribute_change_map_weighs_where_the_attributes_draw(tmp_path_factory):
    from faderkit_plugins.objectives.terms import attribute_change_map

    env = _map_env(tmp_path_factory)
    m = attribute_change_map(env, 1000)
    assert len(env.train_split) > 300
    assert m.shape == (32, 32) and float(m.max()) == pytest.approx(1.0) and float(m.min()) >= 0
    assert torch.allclose(m, m.flip(-1))  # the run flips images: the map is mirrored too
    centre, corners = m[8:24, 8:24].mean(), torch.stack([m[:4, :4].mean(), m[:4, -4:].mean()]).mean()
    assert centre > 2 * corners  # smiles and glasses are drawn in the face, not in the corners


def test_a_time_budget_picks_the_steps_and_trains_as_those_steps_would(toy_root, tmp_path, monkeypatch):
    import yaml

    import faderkit.train.budget as budget

    monkeypatch.setattr(budget, "ROUND", 20)  # counts in twenties: a short test

    quiet = {"eval_every": 1000, "sample_every": 1000, "checkpoint_every": 1000, "log_every": 50}
    logs = []
    train(validate(tiny_recipe(toy_root, time_budget=0.01, **quiet)), tmp_path / "budget", progress=False,
          log=logs.append)
    chosen = yaml.safe_load((tmp_path / "budget" / "recipe.yaml").read_text())["train"]["schedule"]
    assert chosen["steps"] == 20 and chosen["time_budget"] == 0.01  # the least it trains: one round of steps
    assert any("time budget 0.01 s" in m and "20 steps" in m for m in logs)
    record = next(json.loads(l) for l in (tmp_path / "budget" / "metrics.jsonl").read_text().splitlines()
                  if "time_budget" in l)
    assert record["time_budget"]["steps"] == 20 and record["time_budget"]["seconds_per_step"] > 0
    a = load(tmp_path / "budget" / "last.safetensors")[0]
    b = _train(toy_root, tmp_path / "pinned", steps=20, **quiet)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # the measurement left no trace


def test_a_slow_machine_trains_the_recipes_min_steps_and_says_so(toy_root, tmp_path, monkeypatch):
    import yaml

    import faderkit.train.budget as budget

    monkeypatch.setattr(budget, "ROUND", 20)
    quiet = {"eval_every": 1000, "sample_every": 1000, "checkpoint_every": 1000, "log_every": 50}
    logs = []
    train(validate(tiny_recipe(toy_root, time_budget=0.01, min_steps=30, **quiet)), tmp_path / "floor",
          progress=False, log=logs.append)
    chosen = yaml.safe_load((tmp_path / "floor" / "recipe.yaml").read_text())["train"]["schedule"]
    assert chosen["steps"] == 30  # the budget buys 20 (one round): the floor wins
    assert any(m.startswith("warning: this machine does 20 steps") and "min_steps (30)" in m for m in logs)
    record = next(json.loads(l) for l in (tmp_path / "floor" / "metrics.jsonl").read_text().splitlines()
                  if "time_budget" in l)["time_budget"]
    assert record["steps"] == 30 and record["bought"] == 20
    assert load(tmp_path / "floor" / "last.safetensors")[1]["step"] == 30
    logs.clear()  # a floor the budget already clears changes nothing and says nothing
    train(validate(tiny_recipe(toy_root, time_budget=0.01, min_steps=5, **quiet)), tmp_path / "above",
          progress=False, log=logs.append)
    assert yaml.safe_load((tmp_path / "above" / "recipe.yaml").read_text())["train"]["schedule"]["steps"] == 20
    assert not any(m.startswith("warning: this machine does") for m in logs)


def test_steps_set_on_the_command_line_beat_the_recipes_time_budget(tmp_path):
    import yaml

    from faderkit.recipe import load_recipe

    path = tmp_path / "r.yaml"
    raw = tiny_recipe(tmp_path)
    raw["train"]["schedule"]["time_budget"] = 600
    path.write_text(yaml.safe_dump(raw))
    assert load_recipe(path).train.schedule.time_budget == 600
    assert load_recipe(path, ["train.schedule.lr=0.001"]).train.schedule.time_budget == 600
    r = load_recipe(path, ["train.schedule.steps=200"])
    assert r.train.schedule.time_budget is None and r.train.schedule.steps == 200


def test_a_mask_that_follows_the_change_map_is_cheap_where_the_attributes_draw(tmp_path_factory):
    from types import SimpleNamespace

    from faderkit.plugins import registries
    from faderkit.train.objective import Step

    env = _map_env(tmp_path_factory)
    env.model = SimpleNamespace(decoder=SimpleNamespace(last_mask=None))
    step = Step(0, torch.zeros(1, 3, 32, 32), torch.zeros(1, 2, dtype=torch.long), [], None, None, None)

    def cost(params, where):
        term = registries()["loss"].create("change_mask", env, params={"smoothness": 0, **params})
        mask = torch.zeros(1, 1, 32, 32)
        mask[..., where[0]:where[0] + 8, where[1]:where[1] + 8] = 1  # one 8x8 square open
        env.model.decoder.last_mask = mask
        return float(term.loss(step)[0])

    from faderkit_plugins.objectives.terms import attribute_change_map
    pooled = torch.nn.functional.avg_pool2d((1 / (1 + 20 * attribute_change_map(env, 4000)))[None], 8, 1)[0]
    drawn, plain = divmod(int(pooled.argmin()), pooled.shape[1]), divmod(int(pooled.argmax()), pooled.shape[1])
    assert cost({}, drawn) == pytest.approx(cost({}, plain)) == pytest.approx(64 / 1024)  # plain prior: area only
    assert cost({"follow_change": 20}, drawn) == pytest.approx(float(pooled.min()) * 64 / 1024, rel=1e-4)
    assert cost({"follow_change": 20}, plain) == pytest.approx(float(pooled.max()) * 64 / 1024, rel=1e-4)
    assert cost({"follow_change": 20}, drawn) < 0.5 * cost({"follow_change": 20}, plain)  # where a face draws: cheap


def test_a_time_budget_counts_the_runs_evaluations_samples_and_checkpoints(toy_root, tmp_path, monkeypatch):
    """The events are timed for real (into a scratch folder) and spread over the steps at the recipe's intervals."""
    import faderkit.train.budget as budget

    monkeypatch.setattr(budget, "ROUND", 20)
    real, timed = budget.event_seconds, []

    def spy(trainer):
        out = real(trainer)
        timed.append(dict(out))
        return {"evaluation": 0.4, "best checkpoint": 0.1, "samples": 0.2, "checkpoint": 0.3}

    monkeypatch.setattr(budget, "event_seconds", spy)
    logs = []
    rec = validate(tiny_recipe(toy_root, time_budget=0.01, eval_every=10, sample_every=20, checkpoint_every=40,
                               log_every=50))
    run = tmp_path / "events"
    train(rec, run, progress=False, log=logs.append)
    assert len(timed) == 1 and set(timed[0]) == {"evaluation", "best checkpoint", "samples", "checkpoint"}
    assert all(v > 0 for v in timed[0].values())
    parts = next(json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()
                 if "time_budget" in l)["time_budget"]
    assert parts["events"] == pytest.approx(0.5 / 10 + 0.2 / 20 + 0.3 / 40, abs=1e-5)
    assert parts["seconds_per_step"] == pytest.approx(parts["iteration"] + parts["events"], abs=2e-5)
    assert any("ms evaluations, samples and checkpoints" in m for m in logs)
    # the scratch files went nowhere near the run: its checkpoints are the loop's own, at its last step
    assert load(run / "last.safetensors")[1]["step"] == 20
    assert sorted(p.name for p in run.glob("*.safetensors")) == ["best.safetensors", "classifier.safetensors",
                                                                 "last.safetensors"]


def _distance_term(attrs, **params):
    from types import SimpleNamespace

    from faderkit.interfaces import Attribute
    from faderkit_plugins.objectives.distance import LatentDistance

    env = SimpleNamespace(model=SimpleNamespace(received=lambda feats: {-1: feats[-1]}), device=torch.device("cpu"),
                          attributes=tuple(Attribute(n, ("0", "1")) for n in attrs))
    return LatentDistance(env, **params)


def test_the_latent_distance_reads_where_an_attribute_is_written_and_not_its_scale():
    g = torch.Generator().manual_seed(0)
    n = 256
    y = torch.stack([torch.arange(n) % 2, (torch.arange(n) // 2) % 2], 1)
    z = torch.randn(n, 32, generator=g)
    term = _distance_term(["A", "B"], replay=0)
    hidden = float(term.distance(z, y, torch.Generator().manual_seed(1))[0])
    # A written into a narrow band of one dimension: each value a hundredth of the spread to one side
    z_written = z.clone()
    z_written[:, 3] = z[:, 3] * 0.02 + (y[:, 0] * 2 - 1) * 0.03
    written = float(term.distance(z_written, y, torch.Generator().manual_seed(1))[0])
    assert written > hidden + 0.04  # one dimension of 32 read apart (3 deviations of the band): the quantiles see it
    # shrinking or shifting the whole latent changes nothing: it is read by median and interquartile range
    again = float(term.distance(z_written * 0.01 + 0.5, y, torch.Generator().manual_seed(1))[0])
    assert again == pytest.approx(written, rel=1e-3)
    # descending its gradient reads A's two values closer together in that dimension (by its own spread)
    gap = lambda t: float((t[y[:, 0] == 1, 3].mean() - t[y[:, 0] == 0, 3].mean()) / t[:, 3].std())
    zg = z_written.clone().requires_grad_()
    opt = torch.optim.SGD([zg], lr=0.1)
    for k in range(50):
        opt.zero_grad()
        term.distance(zg, y, torch.Generator().manual_seed(k))[0].backward()
        opt.step()
    assert gap(zg.detach()) < 0.75 * gap(z_written) and gap(z_written) > 1.5


def test_the_latent_shape_prices_a_dense_band_where_tiny_differences_could_hide_an_attribute():
    from faderkit_plugins.objectives.distance import normal_gap

    g = torch.Generator().manual_seed(0)
    normal = torch.randn(1, 2000, generator=g)
    banded = torch.cat([torch.randn(1, 1100, generator=g), 0.01 * torch.randn(1, 900, generator=g)], 1)
    gap = lambda x: float(normal_gap(x.sort(dim=1).values)[0])
    assert gap(normal) < 0.05 and gap(banded) > 3 * gap(normal)
    term = _distance_term(["A"], replay=0, projections=0, shape=1.0)
    y = (torch.arange(2000) % 2)[:, None]
    with_shape = term.distance(banded.t(), y, None)[1]
    assert float(with_shape) == pytest.approx(gap((banded - banded.median()) / ((banded.quantile(0.75) - banded.quantile(0.25)) / 1.349)), rel=1e-4)
    assert float(_distance_term(["A"], replay=0, projections=0).distance(banded.t(), y, None)[1]) == 0  # off by default
    alone = _distance_term(["A"], replay=0, projections=0, axes=False, shape=1.0).distance(banded.t(), y, None)
    assert float(alone[0]) == 0 and float(alone[1]) == pytest.approx(float(with_shape), rel=1e-6)  # no reads: the prior alone


def test_the_latent_distance_pools_the_replay_and_resumes_it(toy_root, tmp_path):
    from faderkit.train.objective import Step

    term = _distance_term(["A"], replay=2, projections=4)
    g = torch.Generator().manual_seed(0)
    for k in range(3):
        z = torch.randn(4, 8, generator=g, requires_grad=True)
        step = Step(k, torch.zeros(4, 3, 2, 2), torch.tensor([[0], [1], [0], [1]]), [z], g, None, None)
        value, stats = term.loss(step)
        assert value.requires_grad and float(stats["loss_distance"].detach()) > 0
    assert len(term.replay) == 2 and not term.replay[0][0].requires_grad  # the last two steps, detached
    other = _distance_term(["A"], replay=2)
    other.load_state(term.state_tensors(), "cpu")
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(term.replay, other.replay))
    # and it trains a run with the adversary beside it, logging its value
    _train(toy_root, tmp_path / "d", steps=3, log_every=1,
           losses=[{"name": "mse"}, {"name": "latent_distance", "weight": 0.1, "params": {"warmup": 0}},
                   {"name": "adversary", "weight": 0.01}])
    logged = [json.loads(l) for l in (tmp_path / "d" / "metrics.jsonl").read_text().splitlines() if "loss_rec" in l]
    assert logged and all(m["loss_distance"] > 0 and "latent_shape" not in m for m in logged)


def test_the_latent_shape_is_the_distance_term_with_nothing_read_but_the_shape(toy_root, tmp_path):
    shape = {"name": "latent_shape", "weight": 0.5, "params": {"warmup": 0}}
    as_distance = {"name": "latent_distance", "weight": 0.5,
                   "params": {"warmup": 0, "shape": 1.0, "axes": False, "projections": 0}}
    a = _train(toy_root, tmp_path / "shape", steps=3, log_every=1,
               losses=[{"name": "mse"}, shape, {"name": "adversary", "weight": 0.01}])
    b = _train(toy_root, tmp_path / "distance", steps=3, losses=[{"name": "mse"}, as_distance,
                                                                 {"name": "adversary", "weight": 0.01}])
    model = [k for k in a if k.startswith("model.")]
    assert model and all(torch.equal(a[k], b[k]) for k in model)  # (their replays are saved under their own names)
    c = _train(toy_root, tmp_path / "without", steps=3, losses=[{"name": "mse"}, {"name": "adversary", "weight": 0.01}])
    assert not all(torch.equal(a[k], c[k]) for k in a if k.startswith("model.encoder"))  # the prior moved the encoder
    logged = [json.loads(l) for l in (tmp_path / "shape" / "metrics.jsonl").read_text().splitlines() if "loss_rec" in l]
    assert logged and all(m["latent_shape"] > 0 and "loss_distance" not in m for m in logged)


def _term_env(recipe):
    """The run's TermEnv for a recipe, without networks: what the maps and the terms built here read."""
    from faderkit.data import open_dataset
    from faderkit.train.objective import TermEnv

    dataset = open_dataset(recipe)
    return TermEnv(recipe, None, None, None, tuple(dataset.attributes), dataset, dataset.split("train"),
                   torch.device("cpu"), None, None, None)


def _map_env(tmp_path_factory):
    from conftest import generated

    # enough faces that the means are not noise (the tiny set has 48)
    return _term_env(validate(tiny_recipe(generated(tmp_path_factory, "toyfaces", 400))))


def test_each_attributes_change_map_peaks_at_1_where_it_draws_and_sums_to_the_shared_map(tmp_path_factory):
    from faderkit_plugins.objectives.terms import attribute_change_map, attribute_change_maps

    env = _map_env(tmp_path_factory)
    maps = attribute_change_maps(env, 4000)
    assert maps.shape == (2, 32, 32) and torch.allclose(maps.amax((1, 2)), torch.ones(2)) and float(maps.min()) >= 0
    assert torch.allclose(maps, maps.flip(-1))  # mirrored, as the run flips images
    assert not torch.allclose(maps[0], maps[1])  # Smiling draws elsewhere than Eyeglasses
    smile_row = int(maps[0].argmax()) // 32
    assert smile_row > 16 and smile_row > int(maps[1].argmax()) // 32  # the mouth is below the glasses
    assert bool(((maps == 0).flatten(1).float().mean(1) >= 0.5).all())  # the noise floor (the median) removed
    shared = attribute_change_map(env, 4000)  # the reconstruction's weights: the spreads summed, no floor removed
    assert float(shared[maps.amax(0) > 0.5].mean()) > 2 * float(shared[maps.amax(0) == 0].mean())


def test_the_sparse_change_prices_an_edit_outside_the_flipped_attributes_pixels(tmp_path_factory):
    from types import SimpleNamespace

    from faderkit.plugins import registries
    from faderkit_plugins.objectives.terms import attribute_change_maps

    env = _map_env(tmp_path_factory)
    smile = attribute_change_maps(env, 4000)[0]
    pooled = torch.nn.functional.avg_pool2d(smile[None], 4, 1)[0]
    mouth, corner = divmod(int(pooled.argmax()), pooled.shape[1]), (0, 0)

    def cost(params, where, target=(1, 0)):
        term = registries()["loss"].create("sparse_change", env, params=params)
        recon = torch.zeros(1, 3, 32, 32, requires_grad=True)
        edited = torch.zeros(1, 3, 32, 32)
        edited[..., where[0]:where[0] + 4, where[1]:where[1] + 4] = 0.5   # a 4x4 stroke of 0.5
        edited.requires_grad_(True)
        step = SimpleNamespace(recon=recon, y=torch.tensor([[0, 0]]),
                               decoded_random=lambda: (torch.tensor([list(target)]), edited))
        value, stats = term.loss(step)
        value.backward()
        assert recon.grad is None and edited.grad.abs().sum() > 0  # the edit moves, the reconstruction is held
        assert float(stats["change_l1"]) == pytest.approx(0.5 * 16 / 1024)
        return float(value.detach())

    plain = 0.5 * 16 / 1024
    assert cost({"follow": 0}, mouth) == pytest.approx(plain) == pytest.approx(cost({"follow": 0}, corner))
    assert cost({}, corner) == pytest.approx(plain, rel=0.05)  # no face draws in the corner: full price
    assert cost({}, mouth) < 0.25 * plain                       # where a smile draws, flipping Smiling: nearly free
    assert cost({}, mouth, target=(0, 1)) > 2 * cost({}, mouth)  # flipping only Eyeglasses, the mouth is dearer
    assert cost({}, mouth, target=(0, 0)) == pytest.approx(plain)  # nothing flipped: every change pays in full


def test_the_sparse_change_moves_the_decoder_and_logs_its_price(toy_root, tmp_path):
    base = [{"name": "mse"}, {"name": "adversary", "weight": 0.01}]
    sparse = {"name": "sparse_change", "weight": 1.0, "params": {"warmup": 0, "follow": 0}}
    a = _train(toy_root, tmp_path / "sparse", steps=3, log_every=1, losses=base[:1] + [sparse] + base[1:])
    b = _train(toy_root, tmp_path / "without", steps=3, losses=base)
    assert not all(torch.equal(a[k], b[k]) for k in a if k.startswith("model.decoder"))  # the prior moved the decoder
    logged = [json.loads(l) for l in (tmp_path / "sparse" / "metrics.jsonl").read_text().splitlines() if "loss_rec" in l]
    assert logged and all(m["loss_sparse"] > 0 and m["change_l1"] == pytest.approx(m["loss_sparse"]) for m in logged)


def test_the_sparse_change_of_one_flip_edits_one_attribute_per_image_and_prices_its_map(tmp_path_factory):
    import contextlib
    from types import SimpleNamespace

    from faderkit.plugins import registries
    from faderkit_plugins.objectives.terms import attribute_change_maps

    env = _map_env(tmp_path_factory)
    codes = []
    env.model, env.autocast = SimpleNamespace(code=lambda t: codes.append(t) or t), contextlib.nullcontext()
    env.decoder = lambda feats, code: torch.ones(code.shape[0], 3, 32, 32) * 0.5  # every pixel changed by 0.5
    term = registries()["loss"].create("sparse_change", env, params={"flip": "one"})
    labels = torch.tensor([[0, 0], [1, 0], [0, 1], [1, 1]] * 16)
    step = SimpleNamespace(labels=labels, y=labels, x=torch.zeros(64, 3, 32, 32), feats=[],
                           recon=torch.zeros(64, 3, 32, 32), gen=torch.Generator().manual_seed(0))
    value, stats = term.loss(step)
    (target,) = codes
    changed = target != labels
    assert bool((changed.sum(1) == 1).all())                    # one attribute a face, set to its other value
    assert 10 < int(changed[:, 0].sum()) < 54                     # both attributes drawn
    maps = attribute_change_maps(env, 4000)
    price = (0.5 / (1 + 20 * maps[changed.long().argmax(1)])).mean()
    assert float(value) == pytest.approx(float(price), rel=1e-5) and float(stats["change_l1"]) == pytest.approx(0.5)


def test_focus_moves_the_weighted_loss_to_the_missed_stroke_at_the_same_scale(toy_root):
    from faderkit.plugins import registries
    from faderkit.train.objective import Step
    from faderkit_plugins.objectives.terms import focus_weights

    env = _term_env(validate(tiny_recipe(toy_root)))
    plain = registries()["loss"].create("attribute_weighted", env, params={})
    focused = registries()["loss"].create("attribute_weighted", env, params={"focus": 2})
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    step = Step(0, x, torch.zeros(2, 2, dtype=torch.long), [], None, None, None)

    step.recon = x + 0.1  # the same error everywhere: focus weighs every pixel alike, the loss is the plain one
    assert float(focused.loss(step)[0]) == pytest.approx(float(plain.loss(step)[0]), rel=1e-5)

    # a faint error everywhere and a stroke not drawn at all: focus gives the stroke a larger share of the gradient
    recon_stroke = x + 0.02
    recon_stroke[:, :, 16, 4:28] -= 0.5
    shares = []
    for term in (plain, focused):
        r = recon_stroke.clone().requires_grad_(True)
        step.recon = r
        value, stats = term.loss(step)
        value.backward()
        g = r.grad.abs()
        shares.append(float(g[:, :, 16, 4:28].sum() / g.sum()))
        assert float(stats["loss_rec"]) == pytest.approx(float(((r.detach() - x) ** 2).mean()), rel=1e-5)  # unweighted
    assert shares[1] > 2 * shares[0] and shares[1] > 0.9

    w = focus_weights(torch.tensor([[0.1, 0.2, 0.0, 0.3]]), 2.0)
    assert float(w.mean()) == pytest.approx(1.0) and float(w[0, 2]) == 0 and float(w[0, 3]) == pytest.approx(9 * float(w[0, 0]))
