"""Tests of ddpm_lib.models (the ε-network) and ddpm_lib.train (the training loop with EMA).

References: the sinusoidal embedding re-derived in numpy; an EMA recomputed by hand from the raw
weights recorded at every step (through the loss_fn hook of train).
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from ddpm_lib import (
    MLPDenoiser,
    Schedule,
    SinusoidalEmbedding,
    l_simple,
    sample_data,
    torch_threads,
    train,
)

SCHED = Schedule.named("linear", 100)


def _small_model(seed=0, **kw):
    torch.manual_seed(
        seed
    )  # the initial weights (nn.Linear draws from the global generator)
    return MLPDenoiser(hidden=32, depth=2, **kw)


def _params(model):
    return [p.detach().clone() for p in model.parameters()]


# ---------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------


def test_mlp_output_shapes():
    """ε̂ has shape (n, d); with learn_variance (n, 2d) whose second half v lies in [−1, 1], even for
    inputs far outside the data (tanh head)."""
    x = 50 * torch.randn(64, 2, generator=torch.Generator().manual_seed(0))
    t = torch.randint(1, 101, (64,), generator=torch.Generator().manual_seed(1))
    assert _small_model()(x, t).shape == (64, 2)
    out = _small_model(learn_variance=True)(x, t)
    assert out.shape == (64, 4)
    assert torch.all(out[:, 2:].abs() <= 1)
    assert MLPDenoiser(d=3, hidden=16, depth=1)(
        torch.zeros(5, 3), torch.ones(5, dtype=torch.long)
    ).shape == (5, 3)


def test_mlp_depends_on_t():
    """The network sees the step: the same x at different t gives different outputs."""
    model = _small_model()
    x = torch.zeros(2, 2)
    out = model(x, torch.tensor([1, 90]))
    assert not torch.allclose(out[0], out[1])


def test_mlp_input_errors():
    """x with the wrong number of coordinates, or t of the wrong shape, is refused with a message that
    says what is expected."""
    model = _small_model()
    with pytest.raises(ValueError, match=r"d = 2 coordinates, got shape \(4, 3\)"):
        model(torch.zeros(4, 3), torch.ones(4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"t must have shape \(n,\) = \(4,\)"):
        model(torch.zeros(4, 2), torch.ones(3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"shape \(n, d\)"):
        model(torch.zeros(4), torch.ones(4, dtype=torch.long))


def test_sinusoidal_embedding_formula_and_distinct_rows():
    """Row t is [sin(t ω_k), cos(t ω_k)]_k with ω_k = 10000^(−k/(D/2)), k = 0…D/2−1 (re-derived in numpy;
    float32 angles up to t·ω ≈ 1000 carry a rounding error ≈ 1000·eps₃₂, we allow 4× that); the rows
    for t = 0…1000 are pairwise distinct; an odd dimension is refused."""
    D = 32
    emb = SinusoidalEmbedding(D)
    t = np.arange(1001)
    got = emb(torch.from_numpy(t)).double().numpy()
    k = np.arange(D // 2)
    angles = t[:, None] * 10000.0 ** (-k / (D // 2))
    want = np.concatenate([np.sin(angles), np.cos(angles)], 1)
    np.testing.assert_allclose(got, want, atol=4 * 1000 * np.finfo(np.float32).eps)
    dist = np.sqrt(((got[:, None, :] - got[None, :, :]) ** 2).sum(-1))
    np.fill_diagonal(dist, np.inf)
    assert dist.min() > 1e-3
    with pytest.raises(ValueError, match=r"even"):
        SinusoidalEmbedding(7)


# ---------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------

DATA = sample_data("moons", 2000, seed=0)


def _train(model, **kw):
    args = dict(steps=10, batch_size=64, lr=2e-3, ema_decay=0.9, seed=5, progress=False)
    args.update(kw)
    return train(model, DATA, SCHED, **args)


def test_training_is_reproducible():
    """Same seed and same initial weights: identical losses, identical raw and EMA weights. Another
    seed: different losses."""
    init = _small_model()
    a = _train(copy.deepcopy(init))
    b = _train(copy.deepcopy(init))
    c = _train(copy.deepcopy(init), seed=6)
    assert torch.equal(a.losses, b.losses)
    assert all(
        torch.equal(p, q) for p, q in zip(a.model.parameters(), b.model.parameters())
    )
    assert all(
        torch.equal(p, q)
        for p, q in zip(a.raw_model.parameters(), b.raw_model.parameters())
    )
    assert not torch.equal(a.losses, c.losses)
    assert a.losses.shape == (10,) and a.config["seed"] == 5


def _recording_loss(record):
    """A loss_fn that records the raw weights it is called with (θ_i before optimiser step i)."""

    def loss_fn(model, batch, sched, generator=None):
        record.append(_params(model))
        return l_simple(model, batch, sched, generator=generator)

    return loss_fn


@pytest.mark.parametrize("decay", [0.0, 0.5, 0.9])
def test_returned_model_is_the_ema_of_the_raw_weights(decay):
    """The result's .model is the exponential moving average of the raw weights, recomputed here by
    hand from the weights recorded before every step: e_0 = θ_0, e_i = d_i·e_{i−1} + (1−d_i)·θ_i with the
    warmed-up decay d_i = min(decay, i/(9 + i)), where θ_i is the raw weight after step i (θ_steps =
    raw_model). With decay = 0 it is the raw model.
    Rounding allowance: each float32 update rounds at ≈ eps₃₂·|θ|; 4·steps·eps₃₂·max|θ|."""
    steps = 6
    record = []
    res = _train(
        _small_model(), steps=steps, ema_decay=decay, loss_fn=_recording_loss(record)
    )
    assert len(record) == steps
    raw = record + [_params(res.raw_model)]  # θ_0 … θ_steps
    ema = [p.clone() for p in raw[0]]
    for i, theta in enumerate(raw[1:], start=1):
        d = min(decay, i / (9 + i))
        ema = [d * e + (1 - d) * p for e, p in zip(ema, theta)]
    assert res.model is not res.raw_model
    for e, got in zip(ema, res.model.parameters()):
        tol = (
            4 * steps * torch.finfo(torch.float32).eps * max(1.0, e.abs().max().item())
        )
        assert (got - e).abs().max().item() <= tol
    same_as_raw = all(
        torch.equal(p, q)
        for p, q in zip(res.model.parameters(), res.raw_model.parameters())
    )
    assert same_as_raw == (decay == 0.0)
    # The raw weights did move, so a non-zero decay really lags behind them.
    assert not all(torch.equal(p, q) for p, q in zip(raw[0], raw[-1]))


def test_loss_decreases_on_moons():
    """300 Adam steps on the moons with the default network: the mean loss of the last 50 steps is
    below that of the first 50 (the loss starts near E‖ε‖² = 2 for an untrained network)."""
    torch.manual_seed(0)
    res = _train(MLPDenoiser(), steps=300, batch_size=128, ema_decay=0.99, seed=7)
    assert res.losses[-50:].mean() < res.losses[:50].mean()
    assert torch.isfinite(res.losses).all()


def test_thread_count_is_set_during_training_and_restored():
    """train runs with `threads` intra-op threads and restores the previous count afterwards, also
    when the loss raises."""
    before = torch.get_num_threads()
    seen = []

    def loss_fn(model, batch, sched, generator=None):
        seen.append(torch.get_num_threads())
        return l_simple(model, batch, sched, generator=generator)

    res = _train(_small_model(), steps=2, threads=2, loss_fn=loss_fn)
    assert seen == [2, 2] and res.threads == 2
    assert torch.get_num_threads() == before

    def failing(model, batch, sched, generator=None):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        _train(_small_model(), steps=2, threads=2, loss_fn=failing)
    assert torch.get_num_threads() == before
    with torch_threads(2):
        assert torch.get_num_threads() == 2
    assert torch.get_num_threads() == before


def test_snapshots_are_the_ema_after_the_requested_steps():
    """snapshot_at=(k, …) keeps a copy of the EMA model after step k: the snapshot at the last step equals
    the returned model (but is a separate copy); the one after step 3 equals the EMA recomputed by hand
    from the raw weights recorded before steps 1–3 and after step 3; their times increase.
    Rounding allowance as in the EMA test: 4·steps·eps₃₂·max|θ|."""
    init = _small_model()
    res = _train(copy.deepcopy(init), steps=6, snapshot_at=(3, 6))
    assert [s[0] for s in res.snapshots] == [3, 6]
    assert 0 < res.snapshots[0][1] < res.snapshots[1][1] <= res.seconds
    last = res.snapshots[1][2]
    assert last is not res.model
    assert all(
        torch.equal(p, q) for p, q in zip(last.parameters(), res.model.parameters())
    )
    first = res.snapshots[0][2]
    assert not all(
        torch.equal(p, q) for p, q in zip(first.parameters(), last.parameters())
    )
    # Replaying the first three steps by hand from the same start reproduces the step-3 snapshot.
    record = []
    replay = _train(
        copy.deepcopy(init), steps=6, snapshot_at=(3,), loss_fn=_recording_loss(record)
    )
    ema = [p.clone() for p in record[0]]
    for i, theta in enumerate(record[1:4], start=1):
        d = min(0.9, i / (9 + i))  # the warmed-up decay (ddpm_lib.train.ema_decay_at)
        ema = [d * e + (1 - d) * p for e, p in zip(ema, theta)]
    for e, got in zip(ema, replay.snapshots[0][2].parameters()):
        assert (got - e).abs().max().item() <= 12 * torch.finfo(
            torch.float32
        ).eps * max(1.0, e.abs().max().item())
    assert _train(_small_model(), steps=4).snapshots == []


@pytest.mark.parametrize("snapshot_at", [(0,), (7,), (2.5,), (True,)])
def test_snapshot_steps_must_lie_in_the_run(snapshot_at):
    """A snapshot step must be an integer from 1 to steps."""
    with pytest.raises(
        ValueError, match=r"snapshot_at must hold integer steps from 1 to steps = 6"
    ):
        _train(_small_model(), steps=6, snapshot_at=snapshot_at)


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(steps=0), r"steps must be an integer ≥ 1"),
        (dict(steps=2.5), r"steps must be an integer ≥ 1"),
        (dict(ema_decay=1.0), r"ema_decay must be a finite number in \[0, 1\)"),
        (dict(ema_decay=-0.1), r"ema_decay must be a finite number in \[0, 1\)"),
    ],
)
def test_train_argument_errors(kw, match):
    """steps must be a positive integer; ema_decay must lie in [0, 1) (1 would never move the EMA)."""
    with pytest.raises(ValueError, match=match):
        _train(_small_model(), **kw)


def test_train_data_and_threads_errors():
    """The data must be (n, d) points; the thread count a positive integer."""
    with pytest.raises(ValueError, match=r"data must have shape \(n, d\)"):
        train(_small_model(), torch.zeros(10), SCHED, steps=1, progress=False)
    with pytest.raises(
        ValueError,
        match=r"threads \(the number of torch threads\) must be an integer ≥ 1",
    ):
        with torch_threads(0):
            pass
