"""The one cache of plans and compiled functions: bounded, least recently used first out, keyed by value."""

import dataclasses

import jax
import numpy as np
import pytest

from jdl.diagnostics import fast_path_coverage, per_example_grad_norms, per_example_grads, per_example_moments
from jdl.diagnostics.per_example import cache
from jdl.models import MLP

TRACES = []
_MODEL = MLP(hidden=(4,), outputs=3)


@dataclasses.dataclass(frozen=True)
class _Loss:
    """An equal-by-value loss: two instances with the same scale are one key."""

    scale: float

    def __call__(self, params, x, y):
        TRACES.append(self.scale)
        return -self.scale * jax.nn.log_softmax(_MODEL.apply({"params": params}, x[None])[0])[y]


def _data(n):
    rng = np.random.RandomState(0)
    x, y = rng.randn(n, 5).astype(np.float32), rng.randint(0, 3, n)
    return _MODEL.init(jax.random.PRNGKey(0), x[:1])["params"], x, y


@pytest.fixture
def fresh(monkeypatch):
    """An empty cache of 3 entries in place of the global one."""
    monkeypatch.setattr(cache, "CACHE", cache.LRUCache(3))
    return cache.CACHE


def test_the_cache_is_bounded_and_evicts_the_least_recently_used():
    lru = cache.LRUCache(3)
    built = []
    for key in range(100):
        lru.get(key, lambda key=key: built.append(key) or key)
        assert len(lru) <= 3
    assert built == list(range(100))
    assert lru.get(98, lambda: "rebuilt") == 98, "an entry present is not built again"
    lru.get("new", lambda: "new")
    assert 97 not in lru and 98 in lru and 99 in lru, "97 was the least recently used"
    with pytest.raises(ZeroDivisionError):
        lru.get("bad", lambda: 1 / 0)
    assert "bad" not in lru


def test_equal_calls_share_one_entry_and_its_compiled_code(fresh):
    params, x, y = _data(6)
    first = per_example_grad_norms(_Loss(2.0), params, (x, y))
    traced = len(TRACES)
    again = per_example_grad_norms(_Loss(2.0), params, (np.array(x), np.array(y)))
    assert len(fresh) == 1 and len(TRACES) == traced, "an equal loss and equal shapes: no new plan, no new trace"
    np.testing.assert_array_equal(first, again)
    per_example_moments(_Loss(2.0), params, (x, y))
    assert len(fresh) == 1, "moments reuse the plan of the same entry"
    entry = fresh.get(cache.key(_Loss(2.0), "auto", None, params, (x, y)), pytest.fail)
    assert entry.plan is not None and set(entry.compiled) == {"norms", "moments"}
    fast_path_coverage(_Loss(3.0), params, (x, y))
    assert len(fresh) == 2, "a loss that differs in value is another key"


def test_a_flood_of_distinct_calls_never_grows_the_cache_beyond_its_bound(fresh):
    """Each call with another batch size makes a plan (fast_path_coverage: a trace, no compile)."""
    for n in range(1, 9):
        params, x, y = _data(n)
        fast_path_coverage(_Loss(1.0), params, (x, y))
        assert len(fresh) <= fresh.maxsize == 3
    for n, present in ((8, True), (6, True), (5, False), (1, False)):
        params, x, y = _data(n)
        assert (cache.key(_Loss(1.0), "fast", None, params, (x, y)) in fresh) is present
    per_example_grads(_Loss(1.0), params, (x, y))
    assert len(fresh) == 3 and cache.key(_Loss(1.0), "vmap", None, params, (x, y)) in fresh


def test_the_global_cache_is_bounded():
    assert isinstance(cache.CACHE, cache.LRUCache) and cache.CACHE.maxsize == cache.MAXSIZE == 64
