"""The checks of chapter 11's exercises accept a right answer and reject the usual wrong ones."""

from __future__ import annotations

import torch

from ddpm_lib.exercises import check


# ex-ch11-ddim-k: ddim_step_k(x, k, k_prev, eps, alphas_cumprod) -> (n, d)
def _ddim(read_prev):
    def ddim_step_k(x, k, k_prev, eps, alphas_cumprod):
        ab_t, ab_s = alphas_cumprod[k], read_prev(alphas_cumprod, k_prev)
        x0 = (x - (1 - ab_t).sqrt() * eps) / ab_t.sqrt()
        return ab_s.sqrt() * x0 + (1 - ab_s).sqrt() * eps

    return ddim_step_k


RIGHT_DDIM = _ddim(
    lambda ac, k: ac[k] if k >= 0 else torch.tensor(1.0, dtype=torch.float64)
)
WRONG_DDIM = {
    "LAST entry": _ddim(lambda ac, k: ac[k]),
    "one step short": _ddim(lambda ac, k: ac[max(k, 0)]),
}


def test_ddim_k_right():
    v = check("ex-ch11-ddim-k", RIGHT_DDIM)
    assert v, v


def test_ddim_k_wrong():
    for word, answer in WRONG_DDIM.items():
        v = check("ex-ch11-ddim-k", answer)
        assert not v and word in v.message, (word, v)

    def shifted(x, k, k_prev, eps, ac):
        one = torch.tensor(1.0, dtype=torch.float64)
        ab_t = ac[min(k + 1, len(ac) - 1)]
        ab_s = ac[k_prev + 1] if k_prev + 1 < len(ac) else one
        x0 = (x - (1 - ab_t).sqrt() * eps) / ab_t.sqrt()
        return ab_s.sqrt() * x0 + (1 - ab_s).sqrt() * eps

    v = check("ex-ch11-ddim-k", shifted)
    assert not v and "one step off" in v.message, v


def test_ddim_k_ellipsis():
    assert not check("ex-ch11-ddim-k", ...)


# ex-ch11-copies: copy_share(samples, train, heldout) -> float
def _copies(q=0.01, ref_set="train", scale=1.0):
    def copy_share(samples, train, heldout):
        ref = train if ref_set == "train" else heldout
        p1 = torch.quantile(torch.cdist(heldout, train).min(1).values, q)
        nn = torch.cdist(samples, ref).min(1).values
        return scale * (nn < p1).double().mean().item()

    return copy_share


def test_copies_right():
    v = check("ex-ch11-copies", _copies())
    assert v, v


def test_copies_wrong():
    for word, answer in {
        "percentage": _copies(scale=100.0),
        "0.01 quantile": _copies(q=0.1),
        "not to the held-out": _copies(ref_set="heldout"),
    }.items():
        v = check("ex-ch11-copies", answer)
        assert not v and word in v.message, (word, v)

    def to_each_other(samples, train, heldout):
        d = torch.cdist(heldout, heldout) + torch.diag(
            torch.full((len(heldout),), float("inf"), dtype=heldout.dtype)
        )
        p1 = torch.quantile(d.min(1).values, 0.01)
        return (torch.cdist(samples, train).min(1).values < p1).double().mean().item()

    v = check("ex-ch11-copies", to_each_other)
    assert not v and "to each other" in v.message, v


def test_copies_ellipsis():
    assert not check("ex-ch11-copies", ...)
