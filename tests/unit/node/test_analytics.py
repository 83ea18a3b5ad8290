"""The arithmetic of the analytics totals: percentiles from bucketed times, and contributions taken back."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ledger.encoding import decode
from node.analytics import (
    BOUNDS_MS,
    Deltas,
    add_contribution,
    compute_analytics_totals,
    compute_bucket,
    compute_percentile,
)

times = st.lists(st.integers(min_value=-5_000, max_value=2**62), min_size=1, max_size=200)


@given(times, st.sampled_from([1, 50, 95, 99, 100]))
def test_a_percentile_is_the_bound_of_the_bucket_holding_the_exact_one(values: list[int], share: int) -> None:
    buckets: dict[str, int] = {}
    for value in values:
        bucket = str(compute_bucket(value))
        buckets[bucket] = buckets.get(bucket, 0) + 1
    exact = sorted(values)[-(-share * len(values) // 100) - 1]
    bound = compute_percentile(buckets, share)
    assert bound == BOUNDS_MS[compute_bucket(exact)]
    assert bound is not None and (exact <= bound or bound == BOUNDS_MS[-1])


def test_no_times_no_percentile() -> None:
    assert compute_percentile({}, 50) is None


rows = st.dictionaries(
    st.tuples(st.sampled_from(["*", "org-1"]), st.sampled_from(["channel", "sku"]), st.tuples(st.text(max_size=5))),
    st.dictionaries(st.sampled_from(["orders", "units"]), st.integers(min_value=1, max_value=1_000), min_size=1),
    max_size=8,
)


@given(rows, rows)
def test_taking_a_contribution_back_leaves_the_totals_as_they_were(kept: Deltas, passing: Deltas) -> None:
    store: dict[bytes, bytes] = {}

    def apply(deltas: Deltas) -> None:
        for key, value in compute_analytics_totals(deltas, store.get).items():
            if value is None:
                store.pop(key, None)
            else:
                store[key] = value

    apply(kept)
    before = dict(store)
    added: Deltas = {}
    add_contribution(added, passing, 1)
    apply(added)
    taken: Deltas = {}
    add_contribution(taken, passing, -1)
    apply(taken)
    assert store == before
    assert all(decode(value) for value in store.values()), "a row that comes to nothing is deleted"
