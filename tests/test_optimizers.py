"""Optimizers against float64 references of torch.optim's published algorithms (tests/reference.py),
on a flat buffer of several tensors, with clipping, weight decay and schedules."""

import numpy
import pytest

import reference
import xpann
from conftest import assert_backends_agree
from xpann import optimizers, schedules

SHAPES = [(4, 3), (3,), (3, 2), (2,)]
STEPS = 10

# (xpann class, reference name, hyperparameters in xpann's names)
CASES = {
    "sgd": (optimizers.SGD, "sgd", {"learning_rate": 0.1}),
    "sgd_momentum": (optimizers.SGD, "sgd", {"learning_rate": 0.05, "momentum": 0.9}),
    "sgd_nesterov": (optimizers.SGD, "sgd", {"learning_rate": 0.05, "momentum": 0.8, "nesterov": True}),
    "sgd_weight_decay": (optimizers.SGD, "sgd", {"learning_rate": 0.1, "momentum": 0.5, "weight_decay": 0.1}),
    "adagrad": (optimizers.Adagrad, "adagrad", {"learning_rate": 0.1}),
    "adagrad_initial_lr_decay": (optimizers.Adagrad, "adagrad", {
        "learning_rate": 0.1, "initial_accumulator_value": 0.3, "lr_decay": 0.05, "weight_decay": 0.01}),
    "adadelta": (optimizers.Adadelta, "adadelta", {"learning_rate": 1.0}),
    "adadelta_weight_decay": (optimizers.Adadelta, "adadelta", {
        "learning_rate": 0.5, "rho": 0.8, "epsilon": 1e-5, "weight_decay": 0.05}),
    "rmsprop": (optimizers.RMSprop, "rmsprop", {"learning_rate": 0.01}),
    "rmsprop_momentum": (optimizers.RMSprop, "rmsprop", {"learning_rate": 0.01, "momentum": 0.9}),
    "rmsprop_centered": (optimizers.RMSprop, "rmsprop", {"learning_rate": 0.01, "centered": True, "rho": 0.9}),
    "rmsprop_centered_momentum": (optimizers.RMSprop, "rmsprop", {
        "learning_rate": 0.01, "centered": True, "momentum": 0.5, "weight_decay": 0.02}),
    "adam": (optimizers.Adam, "adam", {"learning_rate": 0.01}),
    "adam_weight_decay": (optimizers.Adam, "adam", {"learning_rate": 0.01, "weight_decay": 0.1, "beta_1": 0.8}),
    "adam_amsgrad": (optimizers.Adam, "adam", {"learning_rate": 0.01, "amsgrad": True}),
    "adamw": (optimizers.AdamW, "adamw", {"learning_rate": 0.01}),
    "adamw_amsgrad": (optimizers.AdamW, "adamw", {"learning_rate": 0.01, "weight_decay": 0.2, "amsgrad": True}),
    "nadam": (optimizers.Nadam, "nadam", {"learning_rate": 0.01}),
    "nadam_weight_decay": (optimizers.Nadam, "nadam", {
        "learning_rate": 0.01, "weight_decay": 0.05, "momentum_decay": 0.01, "beta_2": 0.99}),
}


def make_problem(seed=0, steps=STEPS, shapes=SHAPES, grad_scale=1.0):
    """Random float64 tensors and a sequence of gradients whose sizes change from step to step
    (so that the state, not just the first step, is exercised)."""
    rng = numpy.random.default_rng(seed)
    params = [rng.standard_normal(shape) for shape in shapes]
    grads = [[grad_scale * rng.uniform(0.1, 2.0) * rng.standard_normal(shape) for shape in shapes]
             for _ in range(steps)]
    return params, grads


def flatten(tensors):
    return numpy.concatenate([numpy.ravel(t) for t in tensors])


def segments_of(shapes):
    parts, start = [], 0
    for shape in shapes:
        size = int(numpy.prod(shape))
        parts.append(slice(start, start + size))
        start += size
    return parts


def run_xpann(backend, optimizer, params, grads, dtype, segments=None, shapes=SHAPES):
    """Apply ``optimizer`` to the flat buffer; returns the final flat parameters on the host."""
    segments = segments_of(shapes) if segments is None else segments
    flat = backend.asarray(flatten(params), dtype=dtype)
    optimizer.build(backend, flat)
    for step_grads in grads:
        g = backend.asarray(flatten(step_grads), dtype=dtype)
        optimizer.apply(flat, g, segments)
    assert flat.dtype == numpy.dtype(dtype)
    return backend.to_numpy(flat)


def run_reference(name, hyper, params, grads, **extra):
    hyper = dict(hyper)
    lr = hyper.pop("learning_rate")
    opt = reference.ReferenceOptimizer(name, params, lr, **extra, **hyper)
    for step_grads in grads:
        opt.step(step_grads)
    return flatten(opt.params)


@pytest.mark.parametrize("case", sorted(CASES))
def test_matches_torch_algorithm_float64(backend, case):
    cls, name, hyper = CASES[case]
    params, grads = make_problem()
    got = run_xpann(backend, cls(**hyper), params, grads, "float64")
    want = run_reference(name, hyper, params, grads)
    assert not numpy.allclose(want, flatten(params)), "the reference did not move the parameters"
    numpy.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-13)


@pytest.mark.parametrize("case", sorted(CASES))
def test_matches_torch_algorithm_float32(backend, case):
    cls, name, hyper = CASES[case]
    params, grads = make_problem(seed=1)
    params = [p.astype(numpy.float32).astype(numpy.float64) for p in params]
    grads = [[g.astype(numpy.float32).astype(numpy.float64) for g in step] for step in grads]
    got = run_xpann(backend, cls(**hyper), params, grads, "float32")
    want = run_reference(name, hyper, params, grads)
    numpy.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-6)


CLIPPING = [
    {"clipnorm": 1.5},
    {"global_clipnorm": 2.0},
    {"clipvalue": 0.4},
]


@pytest.mark.parametrize("clip", CLIPPING, ids=lambda c: next(iter(c)))
@pytest.mark.parametrize("case", ["sgd_weight_decay", "adam_weight_decay", "adamw", "rmsprop_centered"])
def test_clipping_before_weight_decay(backend, case, clip):
    cls, name, hyper = CASES[case]
    params, grads = make_problem(seed=2, grad_scale=3.0)  # norms above and below the limits
    norms = [numpy.linalg.norm(g) for step in grads for g in step]
    assert min(norms) < 1.5 < max(norms)
    got = run_xpann(backend, cls(**hyper, **clip), params, grads, "float64")
    want = run_reference(name, hyper, params, grads, **clip)
    numpy.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-13)
    unclipped = run_reference(name, hyper, params, grads)
    assert not numpy.allclose(got, unclipped), "clipping made no difference: the test proves nothing"


def test_clip_formulas_on_one_step(backend):
    """One plain SGD step with lr 1 shows the clipped gradient itself (Keras semantics)."""
    shapes = [(2,), (3,)]
    g_parts = [numpy.array([3.0, 4.0]), numpy.array([0.1, -0.2, 0.2])]  # norms 5 and 0.3
    cases = {
        "clipnorm": (1.0, [g_parts[0] / 5.0, g_parts[1]]),
        "global_clipnorm": (1.0, [g * (1.0 / numpy.sqrt(25.09)) for g in g_parts]),
        "clipvalue": (0.15, [numpy.array([0.15, 0.15]), numpy.array([0.1, -0.15, 0.15])]),
    }
    for option, (value, clipped) in cases.items():
        opt = optimizers.SGD(learning_rate=1.0, **{option: value})
        got = run_xpann(backend, opt, [numpy.zeros(s) for s in shapes], [g_parts], "float64", shapes=shapes)
        numpy.testing.assert_allclose(-got, flatten(clipped), rtol=1e-14, atol=1e-15, err_msg=option)


def test_clipnorm_without_segments_treats_the_buffer_as_one_tensor(backend):
    opt = optimizers.SGD(learning_rate=1.0, clipnorm=1.0)
    got = run_xpann(backend, opt, [numpy.zeros(2)], [[numpy.array([3.0, 4.0])]], "float64",
                    segments=(), shapes=[(2,)])
    numpy.testing.assert_allclose(got, [-0.6, -0.8], rtol=1e-14)


@pytest.mark.parametrize("options", [
    {"clipnorm": 1.0, "clipvalue": 1.0},
    {"clipnorm": 1.0, "global_clipnorm": 1.0},
    {"global_clipnorm": 1.0, "clipvalue": 0.5},
])
@pytest.mark.parametrize("cls", [optimizers.SGD, optimizers.Adam, optimizers.AdamW, optimizers.Nadam])
def test_two_clip_options_are_refused(cls, options):
    with pytest.raises(ValueError, match="at most one"):
        cls(**options)


@pytest.mark.parametrize("bad", [
    {"learning_rate": 0}, {"learning_rate": -1.0}, {"learning_rate": float("nan")},
    {"learning_rate": "fast"}, {"weight_decay": -0.1}, {"clipnorm": 0}, {"clipvalue": -1.0},
])
def test_bad_arguments_raise_when_built(bad):
    with pytest.raises(ValueError):
        optimizers.Adam(**bad)


def test_bad_specific_arguments():
    with pytest.raises(ValueError):
        optimizers.SGD(nesterov=True)  # torch: Nesterov needs momentum
    with pytest.raises(ValueError):
        optimizers.Adam(beta_1=1.0)
    with pytest.raises(ValueError):
        optimizers.RMSprop(rho=1.5)
    with pytest.raises(ValueError, match="valid names"):
        optimizers.get("adamax")


SCHEDULES = {
    "exponential": schedules.ExponentialDecay(0.05, decay_steps=3, decay_rate=0.5),
    "exponential_staircase": schedules.ExponentialDecay(0.05, decay_steps=3, decay_rate=0.5, staircase=True),
    "step": schedules.StepDecay(0.05, step_size=4, gamma=0.3),
    "cosine": schedules.CosineDecay(0.05, decay_steps=7, alpha=0.1),
}


@pytest.mark.parametrize("schedule", sorted(SCHEDULES))
@pytest.mark.parametrize("case", ["sgd_momentum", "adam", "adamw", "nadam", "adagrad_initial_lr_decay"])
def test_schedule_as_learning_rate(backend, case, schedule):
    cls, name, hyper = CASES[case]
    sched = SCHEDULES[schedule]
    hyper = {**hyper, "learning_rate": sched}
    params, grads = make_problem(seed=3)
    opt = cls(**hyper)
    got = run_xpann(backend, opt, params, grads, "float64")
    assert opt.iterations == STEPS
    assert opt.current_learning_rate() == pytest.approx(sched(STEPS))
    want = run_reference(name, hyper, params, grads)  # reference reads lr(t) with t from 0
    numpy.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-13)
    constant = run_reference(name, {**hyper, "learning_rate": sched(0)}, params, grads)
    assert not numpy.allclose(got, constant)


@pytest.mark.parametrize("case", sorted(CASES))
def test_state_round_trip_resumes_exactly(backend, case):
    """get_state after 4 steps, set_state into a fresh optimizer, 6 more steps = 10 steps in one go."""
    cls, _, hyper = CASES[case]
    params, grads = make_problem(seed=4)
    whole = run_xpann(backend, cls(**hyper), params, grads, "float64")

    first = cls(**hyper)
    flat = backend.asarray(flatten(params), dtype="float64")
    first.build(backend, flat)
    for step in grads[:4]:
        first.apply(flat, backend.asarray(flatten(step), dtype="float64"), segments_of(SHAPES))
    scalars, slots = first.get_state()
    host_slots = {key: backend.to_numpy(value).copy() for key, value in slots.items()}

    second = optimizers.deserialize(optimizers.serialize(first))
    assert type(second) is cls and second.get_config() == first.get_config()
    second.build(backend, flat)
    second.set_state(dict(scalars), host_slots)
    for step in grads[4:]:
        second.apply(flat, backend.asarray(flatten(step), dtype="float64"), segments_of(SHAPES))
    numpy.testing.assert_array_equal(backend.to_numpy(flat), whole)


# Every hyperparameter an optimizer gets from its name alone. The update rules are torch.optim's,
# and so are these defaults, except the two learning rates marked: there xpann keeps Keras's.
DEFAULTS = {
    "sgd": {"learning_rate": 0.01,  # Keras; torch.optim.SGD: 0.001
            "weight_decay": 0.0, "momentum": 0.0, "nesterov": False},
    "adagrad": {"learning_rate": 0.01, "weight_decay": 0.0, "initial_accumulator_value": 0.0, "epsilon": 1e-10,
                "lr_decay": 0.0},
    "adadelta": {"learning_rate": 1.0, "weight_decay": 0.0, "rho": 0.9, "epsilon": 1e-6},
    "rmsprop": {"learning_rate": 0.001,  # Keras; torch.optim.RMSprop: 0.01
                "weight_decay": 0.0, "rho": 0.99, "momentum": 0.0, "epsilon": 1e-8, "centered": False},
    "adam": {"learning_rate": 0.001, "weight_decay": 0.0, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-8,
             "amsgrad": False},
    "adamw": {"learning_rate": 0.001, "weight_decay": 0.01, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-8,
              "amsgrad": False},
    "nadam": {"learning_rate": 0.002, "weight_decay": 0.0, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-8,
              "momentum_decay": 0.004},
}


@pytest.mark.parametrize("name", sorted(DEFAULTS))
def test_names_give_the_documented_defaults(name):
    opt = optimizers.get(name)
    assert opt.get_config() == DEFAULTS[name]
    assert opt.learning_rate == DEFAULTS[name]["learning_rate"] and opt.current_learning_rate() == opt.learning_rate


@pytest.mark.parametrize("case", ["sgd_nesterov", "rmsprop_centered_momentum", "adam_amsgrad", "nadam", "adadelta"])
def test_backends_agree_on_optimizer_steps(case):
    cls, _, hyper = CASES[case]
    params, grads = make_problem(seed=5, steps=5)

    def run(backend):
        flat = backend.asarray(flatten(params), dtype="float32")
        opt = cls(**hyper, clipnorm=1.0)
        opt.build(backend, flat)
        for step in grads:
            opt.apply(flat, backend.asarray(flatten(step), dtype="float32"), segments_of(SHAPES))
        return [flat, *opt.get_state()[1].values()]

    assert_backends_agree(run, "float32", rtol=1e-5, atol=1e-6)


def test_model_train_on_batch_uses_the_optimizer(backend):
    """A model step equals the optimizer applied by hand to the model's own gradients."""
    model = xpann.Sequential([xpann.layers.Dense(3, activation="tanh"), xpann.layers.Dense(1)],
                             input_dim=4, seed=0, dtype="float64")
    model.compile(optimizer=optimizers.Adam(learning_rate=0.01, clipnorm=0.5), loss="mse")
    rng = numpy.random.default_rng(6)
    x, y = rng.standard_normal((8, 4)), rng.standard_normal((8, 1))
    before = model.get_weights()
    _, grads = model.compute_gradients(x, y)
    model.train_on_batch(x, y)
    want = run_reference("adam", {"learning_rate": 0.01}, before, [grads], clipnorm=0.5)
    numpy.testing.assert_allclose(flatten(model.get_weights()), want, rtol=1e-11, atol=1e-13)
