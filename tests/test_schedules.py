"""Learning-rate schedules against their formulas (step 0 is the first update)."""

import math

import pytest

import reference
from xpann import optimizers, schedules

STEPS = [0, 1, 2, 3, 5, 9, 10, 11, 99, 100, 101, 1000]


@pytest.mark.parametrize("staircase", [False, True])
def test_exponential_decay(staircase):
    sched = schedules.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5, staircase=staircase)
    for step in STEPS:
        want = reference.exponential_decay(step, 0.1, 10, 0.5, staircase)
        assert sched(step) == pytest.approx(want, rel=1e-14), step
    assert sched(0) == 0.1
    assert sched(10) == pytest.approx(0.05, rel=1e-14)
    if staircase:
        assert sched(9) == 0.1 and sched(19) == pytest.approx(0.05)
    else:
        assert sched(5) == pytest.approx(0.1 * math.sqrt(0.5), rel=1e-14)


def test_step_decay():
    sched = schedules.StepDecay(0.2, step_size=3, gamma=0.1)
    for step in STEPS:
        assert sched(step) == pytest.approx(reference.step_decay(step, 0.2, 3, 0.1), rel=1e-14), step
    assert [sched(s) for s in range(7)] == pytest.approx([0.2] * 3 + [0.02] * 3 + [0.002])


@pytest.mark.parametrize("alpha", [0.0, 0.25])
def test_cosine_decay(alpha):
    sched = schedules.CosineDecay(1.0, decay_steps=100, alpha=alpha)
    for step in STEPS:
        assert sched(step) == pytest.approx(reference.cosine_decay(step, 1.0, 100, alpha), rel=1e-14, abs=1e-15)
    assert sched(0) == 1.0
    assert sched(50) == pytest.approx(0.5 * (1 - alpha) + alpha, rel=1e-14)
    assert sched(100) == pytest.approx(alpha, abs=1e-15)
    assert sched(1000) == pytest.approx(alpha, abs=1e-15)  # flat after decay_steps


@pytest.mark.parametrize("bad", [
    lambda: schedules.ExponentialDecay(0.1, decay_steps=0, decay_rate=0.5),
    lambda: schedules.ExponentialDecay(-0.1, decay_steps=5, decay_rate=0.5),
    lambda: schedules.ExponentialDecay(0.1, decay_steps=5, decay_rate=0),
    lambda: schedules.StepDecay(0.1, step_size=1.5),
    lambda: schedules.StepDecay(0.1, step_size=2, gamma=-1),
    lambda: schedules.CosineDecay(0.1, decay_steps=10, alpha=1.5),
])
def test_bad_arguments(bad):
    with pytest.raises(ValueError):
        bad()


def test_optimizer_reads_the_schedule_per_step_and_round_trips():
    sched = schedules.ExponentialDecay(0.1, decay_steps=2, decay_rate=0.5, staircase=True)
    opt = optimizers.SGD(learning_rate=sched)
    seen = []
    for step in range(5):
        opt.iterations = step
        seen.append(opt.current_learning_rate())
    assert seen == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025])
    again = optimizers.deserialize(optimizers.serialize(opt))
    assert isinstance(again.learning_rate, schedules.ExponentialDecay)
    assert again.learning_rate.get_config() == sched.get_config()
    for name, cls in [("step_decay", schedules.StepDecay), ("cosine_decay", schedules.CosineDecay)]:
        sched = cls(0.3, 7)
        config = optimizers.Adam(learning_rate=sched).get_config()["learning_rate"]
        assert schedules.check_learning_rate(config).get_config() == sched.get_config(), name
