"""The autoscaler's decision (jobline.shared.fleet.autoscale): targets, bounds, cooldowns and
hysteresis, as a pure function of the settings, the load and the time."""

from __future__ import annotations

import math

import pytest

from jobline.shared.fleet.autoscale import Load, check_settings, decide, erlang_c_wait_s, need
from jobline.shared.platform.errors import ValidationFailed

S = check_settings({"min": 1, "max": 10, "targetBacklogPerWorker": 100, "upCooldownS": 10,
                    "downCooldownS": 60, "hysteresis": 0.2})


def test_backlog_target_scales_up_at_once_within_max() -> None:
    d = decide(S, 2, Load(backlog=750, oldest_ms=10), now_s=1000, last_change_s=None)
    assert d.desired == 8 and d.reason.startswith("up")
    assert decide(S, 2, Load(5000, 10), 1000, None).desired == 10  # capped at max


def test_up_cooldown_holds_a_second_step() -> None:
    assert decide(S, 3, Load(750, 10), now_s=1005, last_change_s=1000).desired == 3
    assert decide(S, 3, Load(750, 10), now_s=1011, last_change_s=1000).desired == 8


def test_hysteresis_and_down_cooldown_prevent_flapping() -> None:
    # need 7 of 8: within 20 % -> stays
    assert decide(S, 8, Load(700, 10), 5000, 1000).reason == "within hysteresis"
    # need 2 of 8, but changed 30 s ago -> stays
    assert decide(S, 8, Load(200, 10), 1030, 1000).reason == "down cooldown"
    # past the cooldown: one step of half the surplus, never below the need
    d = decide(S, 8, Load(200, 10), 1100, 1000)
    assert d.desired == 5 and d.reason.startswith("down")
    # an oscillating load around the current count never changes it
    seen = {decide(S, 5, Load(b, 10), 2000 + i, 1000).desired for i, b in
            enumerate([450, 500, 420, 480, 500, 410])}
    assert seen == {5}


def test_idle_scales_down_to_min_never_below() -> None:
    d = decide(S, 2, Load(0, None), 10_000, 0)
    assert d.desired == 1
    assert decide(S, 1, Load(0, None), 10_000, 0).desired == 1


def test_latency_sla_uses_erlang_c_with_rates() -> None:
    s = check_settings({"min": 1, "max": 50, "latencySlaMs": 500, "upCooldownS": 0})
    n, why = need(s, Load(backlog=0, oldest_ms=None, arrival_per_s=90, per_worker_per_s=10))
    # 9 workers would be 100 % busy (infinite wait); Erlang C picks the fewest meeting 500 ms
    assert n > 9 and "Erlang C" in why
    assert erlang_c_wait_s(n, 90, 10) <= 0.5 < erlang_c_wait_s(n - 1, 90, 10)
    assert math.isinf(erlang_c_wait_s(9, 90, 10))
    # without rates: one more worker while the oldest job waits past the SLA
    assert decide(s, 3, Load(10, 2000), 100, None).desired == 4


def test_settings_are_validated() -> None:
    for bad in ({"min": 1}, {"min": 2, "max": 1, "targetBacklogPerWorker": 5},
                {"max": 3}, {"max": 3, "latencySlaMs": 0}, {"max": 3, "hysteresis": 2,
                                                            "targetBacklogPerWorker": 1},
                {"max": 3, "targetBacklogPerWorker": 1, "bogus": 1}):
        with pytest.raises(ValidationFailed):
            check_settings(bad)
