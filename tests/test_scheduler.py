"""The placement policies as pure arithmetic: no database, no app."""
from __future__ import annotations

from collections import Counter

import pytest

from eucalite.cluster import scheduler
from eucalite.cluster.scheduler import Need, NodeView, choose, fits, validate_policy

SMALL = Need(cores=1, memory_mb=256, disk_gb=5)


def node(node_id, cores=4, memory_mb=4096, disk_gb=100, used=0, last_chosen=0,
         enabled=True) -> NodeView:
    return NodeView(node_id, cores, memory_mb, disk_gb, used=used, last_chosen=last_chosen,
                    enabled=enabled)


# --- validate_policy ------------------------------------------------------------------

@pytest.mark.parametrize("given, expected", [
    ("GREEDY", "GREEDY"), ("roundrobin", "ROUNDROBIN"), (" PowerSave ", "POWERSAVE")])
def test_validate_policy_canonical_case(given, expected):
    assert validate_policy(given) == expected


@pytest.mark.parametrize("bad", ["", "FIRSTFIT", "GREEDY2", "round robin"])
def test_validate_policy_rejects_unknown(bad):
    with pytest.raises(ValueError, match="GREEDY, ROUNDROBIN, POWERSAVE"):
        validate_policy(bad)


def test_choose_rejects_unknown_policy():
    with pytest.raises(ValueError):
        choose([node("a")], SMALL, 1, "RANDOM")


# --- Need and fits --------------------------------------------------------------------

@pytest.mark.parametrize("cores, memory, disk", [(0, 256, 5), (1, -1, 5), (1, 256, -1)])
def test_need_rejects_impossible_sizes(cores, memory, disk):
    with pytest.raises(ValueError):
        Need(cores, memory, disk)


def test_fits_is_limited_by_the_scarcest_resource():
    assert fits(8, 1024, 100, Need(2, 256, 5)) == 4          # cores
    assert fits(8, 600, 100, Need(1, 256, 5)) == 2           # memory
    assert fits(8, 4096, 12, Need(1, 256, 5)) == 2           # disk
    assert fits(8, 4096, 100, Need(1, 256, 0)) == 8          # disk not needed: no limit
    assert fits(1, 0, 0, Need(1, 0, 0)) == 1


def test_fits_never_negative():
    assert fits(-2, 100, 100, SMALL) == 0
    assert fits(4, -256, 100, SMALL) == 0


# --- common edge cases ----------------------------------------------------------------

@pytest.mark.parametrize("policy", scheduler.POLICIES)
def test_no_nodes_gives_nothing(policy):
    assert choose([], SMALL, 3, policy) == []


@pytest.mark.parametrize("policy", scheduler.POLICIES)
def test_count_zero_gives_nothing(policy):
    assert choose([node("a")], SMALL, 0, policy) == []


def test_negative_count_is_an_error():
    with pytest.raises(ValueError):
        choose([node("a")], SMALL, -1, "GREEDY")


@pytest.mark.parametrize("policy", scheduler.POLICIES)
def test_disabled_nodes_are_never_chosen(policy):
    nodes = [node("a", enabled=False), node("b", cores=2), node("c", enabled=False)]
    assert choose(nodes, SMALL, 5, policy) == ["b", "b"]


@pytest.mark.parametrize("policy", scheduler.POLICIES)
def test_capacity_runs_out_returns_fewer(policy):
    nodes = [node("a", cores=2), node("b", cores=1)]
    chosen = choose(nodes, SMALL, 10, policy)
    assert Counter(chosen) == {"a": 2, "b": 1}


@pytest.mark.parametrize("policy", scheduler.POLICIES)
def test_never_exceeds_any_resource(policy):
    need = Need(2, 1000, 10)
    nodes = [node("a", cores=16, memory_mb=3000, disk_gb=100),   # memory: 3
             node("b", cores=5, memory_mb=10000, disk_gb=100),   # cores: 2
             node("c", cores=16, memory_mb=10000, disk_gb=25)]   # disk: 2
    chosen = choose(nodes, need, 100, policy)
    assert Counter(chosen) == {"a": 3, "b": 2, "c": 2}


@pytest.mark.parametrize("policy", scheduler.POLICIES)
def test_full_or_overcommitted_nodes_are_skipped(policy):
    nodes = [node("a", cores=0), node("b", cores=-3, used=7), node("c", cores=1)]
    assert choose(nodes, SMALL, 3, policy) == ["c"]


@pytest.mark.parametrize("policy", scheduler.POLICIES)
def test_instance_bigger_than_every_node(policy):
    assert choose([node("a", cores=4), node("b", cores=8)], Need(16, 256, 5), 1, policy) == []


@pytest.mark.parametrize("policy", scheduler.POLICIES)
def test_input_views_are_not_modified(policy):
    nodes = [node("a", cores=2), node("b", cores=2)]
    before = list(nodes)
    choose(nodes, SMALL, 3, policy)
    assert nodes == before


# --- GREEDY ---------------------------------------------------------------------------

def test_greedy_fills_first_node_by_id_before_the_next():
    nodes = [node("c", cores=4), node("a", cores=2), node("b", cores=2)]
    assert choose(nodes, SMALL, 5, "GREEDY") == ["a", "a", "b", "b", "c"]


def test_greedy_skips_a_node_too_full_for_the_instance():
    nodes = [node("a", cores=1), node("b", cores=4)]
    assert choose(nodes, Need(2, 256, 5), 2, "GREEDY") == ["b", "b"]


def test_greedy_ignores_load_and_recency():
    nodes = [node("b", used=3, last_chosen=0), node("a", used=0, last_chosen=9)]
    assert choose(nodes, SMALL, 1, "GREEDY") == ["a"]


# --- ROUNDROBIN -----------------------------------------------------------------------

def test_roundrobin_spreads_one_per_node_in_turn():
    nodes = [node("a"), node("b"), node("c")]
    assert choose(nodes, SMALL, 7, "ROUNDROBIN") == ["a", "b", "c", "a", "b", "c", "a"]


def test_roundrobin_starts_with_least_recently_chosen():
    nodes = [node("a", last_chosen=5), node("b", last_chosen=2), node("c", last_chosen=9)]
    assert choose(nodes, SMALL, 4, "ROUNDROBIN") == ["b", "a", "c", "b"]


def test_roundrobin_skips_full_nodes_and_keeps_cycling_the_rest():
    nodes = [node("a", cores=1), node("b", cores=3), node("c", cores=2)]
    assert choose(nodes, SMALL, 6, "ROUNDROBIN") == ["a", "b", "c", "b", "c", "b"]


def test_roundrobin_continues_across_requests():
    """Feeding back the stamps of one request makes the next start after it."""
    nodes = [node("a"), node("b"), node("c")]
    first = choose(nodes, SMALL, 2, "ROUNDROBIN")
    assert first == ["a", "b"]
    stamps = {node_id: index for index, node_id in enumerate(first, 1)}
    after = [node(n.id, last_chosen=stamps.get(n.id, 0)) for n in nodes]
    assert choose(after, SMALL, 3, "ROUNDROBIN") == ["c", "a", "b"]


# --- POWERSAVE ------------------------------------------------------------------------

def test_powersave_prefers_the_most_used_node():
    nodes = [node("a", used=1), node("b", used=3), node("c", used=0)]
    assert choose(nodes, SMALL, 2, "POWERSAVE") == ["b", "b"]


def test_powersave_fills_used_nodes_before_waking_an_idle_one():
    nodes = [node("a", cores=8, used=0), node("b", cores=1, used=3),
             node("c", cores=2, used=1)]
    assert choose(nodes, SMALL, 5, "POWERSAVE") == ["b", "c", "c", "a", "a"]


def test_powersave_packs_one_idle_node_at_a_time():
    nodes = [node("b", cores=2), node("a", cores=2), node("c", cores=2)]
    assert choose(nodes, SMALL, 5, "POWERSAVE") == ["a", "a", "b", "b", "c"]


def test_powersave_skips_used_node_without_room():
    nodes = [node("a", cores=0, used=8), node("b", cores=4, used=0)]
    assert choose(nodes, SMALL, 2, "POWERSAVE") == ["b", "b"]
