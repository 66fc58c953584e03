"""Model files built to hurt: zip bombs, members that lie about their size or shape, configs that
ask for gigabytes or thousands of layers, values that are not numbers; and saves killed half way,
failing or racing. Loading any such file takes under a second and 100 MiB, and a refusal is one
ValueError naming the file and the fault."""

import gc
import io
import json
import os
import pathlib
import re
import signal
import stat
import struct
import subprocess
import sys
import threading
import time
import tracemalloc
import zlib

import numpy
import pytest

import xpann
import xpann.io
from xpann.layers import BatchNormalization, Dense

SECONDS = 1.0
PEAK_BYTES = 100 * 2**20
BOMB_BYTES = 2**30  # what a bomb member inflates to
CHUNK = 2**24


def small_model(seed=0):
    model = xpann.Sequential([Dense(16, activation="relu", name="hidden"), BatchNormalization(),
                              Dense(3, activation="softmax")], input_dim=4, seed=seed)
    model.compile("adam", "sparse_categorical_crossentropy")
    rng = numpy.random.default_rng(seed)
    model.fit(rng.normal(size=(32, 4)), rng.integers(0, 3, 32), epochs=1, verbose=0)
    return model


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """(a saved model, its file, its members as write_zip takes them)."""
    model = small_model()
    path = tmp_path_factory.mktemp("good") / "model.npz"
    model.save(path)
    xpann.load_model(path)  # the first load compiles the kernels; the measured ones need not
    with xpann.io.zipfile.ZipFile(path) as archive:
        members = {name: stored(archive.read(name)) for name in archive.namelist()}
    return model, path, members


def npy(array):
    stream = io.BytesIO()
    numpy.save(stream, array)
    return stream.getvalue()


def npy_header(shape, dtype):
    stream = io.BytesIO()
    numpy.lib.format.write_array_header_1_0(
        stream, {"descr": numpy.dtype(dtype).str, "fortran_order": False, "shape": tuple(shape)})
    return stream.getvalue()


def stored(data):
    """A member kept as it is: (bytes in the file, method, crc32, size it declares)."""
    return data, 0, zlib.crc32(data), len(data)


def bomb(prefix, size=BOMB_BYTES):
    """A deflated member of ``prefix`` then zeros, ``size`` bytes in all, that takes about
    size / 1000 bytes in the file (built from one compressed chunk repeated, so quickly)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = compressor.compress(prefix) + compressor.flush(zlib.Z_FULL_FLUSH)
    zeros = bytes(CHUNK)
    block = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    count, rest = divmod(size - len(prefix), CHUNK)
    tail = compressor.compress(bytes(rest)) + compressor.flush()
    crc = zlib.crc32(prefix)
    for _ in range(count):
        crc = zlib.crc32(zeros, crc)
    return head + block * count + tail, 8, zlib.crc32(bytes(rest), crc), size


def write_zip(path, members):
    """Write ``members`` (name -> (bytes, method, crc32, declared size)) as a zip by hand, so that a
    member may declare whatever size it likes."""
    central = []
    with open(path, "wb") as out:
        for name, (data, method, crc, size) in members.items():
            offset, encoded = out.tell(), name.encode()
            out.write(struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, method, 0, 0x21, crc, len(data), size,
                                  len(encoded), 0) + encoded + data)
            central.append(struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, method, 0, 0x21, crc, len(data),
                                       size, len(encoded), 0, 0, 0, 0, 0, offset) + encoded)
        start = out.tell()
        directory = b"".join(central)
        out.write(directory + struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(members), len(members),
                                          len(directory), start, 0))


def with_config(members, change):
    """``members`` with ``change(config)`` applied to the JSON config."""
    config = json.loads(str(numpy.load(io.BytesIO(members["config.npy"][0]))))
    change(config)
    return {**members, "config.npy": stored(npy(numpy.array(json.dumps(config))))}


def measured(action):
    """(what ``action()`` returned or raised, its seconds, its peak of traced memory in bytes): timed
    once as it is, then run again under tracemalloc."""
    def outcome():
        try:
            return action()
        except Exception as error:  # noqa: BLE001 - the outcome is what the test looks at
            return error

    gc.collect()
    start = time.perf_counter()
    outcome()
    seconds = time.perf_counter() - start
    gc.collect()
    tracemalloc.start()
    try:
        result = outcome()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return result, seconds, peak


def hostile_members(kind, members):
    kernel = "tensor:hidden/kernel.npy"
    if kind == "junk member":  # the reported bomb: a member no model has, with 4 MB of filling beside it
        filling = numpy.random.default_rng(0).bytes(4 * 2**20)
        return {**members, "junk.npy": bomb(npy_header((BOMB_BYTES - 128,), "u1")),
                "filling.npy": stored(npy(numpy.frombuffer(filling, dtype="u1")))}
    if kind == "kernel longer than its header":
        return {**members, kernel: bomb(members[kernel][0])}
    if kind == "kernel of another shape":
        return {**members, kernel: bomb(npy_header(((BOMB_BYTES - 128) // 4,), "float32"))}
    if kind == "huge config":
        return {**members, "config.npy": bomb(npy_header((), f"<U{BOMB_BYTES // 4}"))}
    if kind == "ten million units":
        return with_config(members, lambda c: c["model"]["layers"][0]["config"].update(units=10**7))
    if kind == "a million units":
        return with_config(members, lambda c: c["model"]["layers"][0]["config"].update(units=2**20))
    if kind == "a billion units":
        return with_config(members, lambda c: c["model"]["layers"][0]["config"].update(units=10**9))
    if kind == "a trillion weights":
        def wide(config):
            config["model"]["layers"][0]["config"].update(units=2**20)
            config["model"]["layers"].insert(1, {"class_name": "Dense", "config": {"units": 2**20}})
        return with_config(members, wide)
    if kind == "forty thousand members":
        return {**members, **{f"padding_{i:08d}.npy": stored(b"") for i in range(40000)}}
    if kind == "twenty thousand layers":
        return with_config(members, lambda c: c["model"]["layers"].extend(
            [{"class_name": "Dropout", "config": {"rate": 0.1}}] * 20000))
    if kind == "a hundred million features":
        return with_config(members, lambda c: c["model"].update(input_dim=10**8))
    assert kind == "deep metadata"
    return with_config(members, lambda c: c.update(metadata={"a": json.loads("[" * 200 + "]" * 200)}))


@pytest.mark.parametrize("kind, message", [
    ("kernel longer than its header", r"'tensor:hidden/kernel'.* declares \d+ bytes"),
    ("kernel of another shape", r"'tensor:hidden/kernel'.* shape \(268435424,\).* \(4, 16\)"),
    ("huge config", r"config is 268435456 characters long.* at most 16777216"),
    ("ten million units", r"'hidden' gives 10000000 features.* at most 1048576"),
    ("a million units", r"'tensor:hidden/kernel'.* shape \(4, 16\).* \(4, 1048576\)"),
    ("a billion units", r"'hidden' gives 1000000000 features.* at most 1048576"),
    ("a trillion weights", r"tensor values, more than the 268435456 xpann loads"),
    ("forty thousand members", r"lists 400\d\d members"),
    ("twenty thousand layers", r"20003 layers.* at most 1024"),
    ("a hundred million features", r"input_dim is 100000000.* at most"),
    ("deep metadata", r"nested deeper than"),
])
def test_a_hostile_file_is_refused_quickly_with_little_memory(saved, tmp_path, kind, message):
    _, _, members = saved
    path = tmp_path / "hostile.npz"
    write_zip(path, hostile_members(kind, members))
    error, seconds, peak = measured(lambda: xpann.load_model(path))
    cost = f"{os.path.getsize(path) / 1e6:.2f} MB file: {seconds * 1e3:.0f} ms, peak {peak / 2**20:.1f} MiB traced"
    assert isinstance(error, ValueError), repr(error)
    assert str(error).startswith(str(path)), str(error)
    assert re.search(message, str(error)), str(error)
    assert seconds < SECONDS and peak < PEAK_BYTES, cost


def test_a_five_megabyte_file_with_a_bomb_member_loads_without_inflating_it(saved, tmp_path):
    model, _, members = saved
    path = tmp_path / "bombed.npz"
    write_zip(path, hostile_members("junk member", members))
    assert os.path.getsize(path) > 5 * 10**6
    loaded, seconds, peak = measured(lambda: xpann.load_model(path))
    cost = f"{os.path.getsize(path) / 1e6:.2f} MB file: {seconds * 1e3:.0f} ms, peak {peak / 2**20:.1f} MiB traced"
    assert isinstance(loaded, xpann.Sequential), repr(loaded)
    for got, want in zip(loaded.get_weights(), model.get_weights()):
        numpy.testing.assert_array_equal(got, want)
    assert seconds < SECONDS and peak < PEAK_BYTES, cost


def test_a_member_that_is_not_npy_is_a_value_error(saved, tmp_path):
    _, _, members = saved
    for name in ("config.npy", "tensor:hidden/kernel.npy"):
        path = tmp_path / f"raw_{name[:6]}.npz"
        write_zip(path, {**members, name: stored(b"\x93NUMPY not really" + bytes(200))})
        with pytest.raises(ValueError, match=rf"^{re.escape(str(path))}.*{name[:-4]}"):
            xpann.load_model(path)


@pytest.mark.parametrize("change, message", [
    (lambda c: c["model"]["layers"].insert(1, {"class_name": "Dropout", "config": {"rate": 1.0}}),
     r": rate must be in \[0, 1\), got 1\.0\.$"),
    (lambda c: c["model"]["layers"].insert(1, {"class_name": "Conv2D"}), r": Unknown layer class 'Conv2D'"),
    (lambda c: c["model"]["layers"][0]["config"].update(units=[16]), r": units must be a whole number"),
    (lambda c: c.update(tensors=["hidden/kernel"]), r"stored tensors .* do not match"),
])
def test_a_damaged_config_is_one_value_error_naming_the_file(saved, tmp_path, change, message):
    _, _, members = saved
    path = tmp_path / "damaged.npz"
    write_zip(path, with_config(members, change))
    with pytest.raises(ValueError, match=rf"^{re.escape(str(path))}.*{message}"):
        xpann.load_model(path)


def test_json_numbers_beyond_a_float_are_a_value_error(saved, tmp_path):
    _, _, members = saved
    config = str(numpy.load(io.BytesIO(members["config.npy"][0])))
    config = config.replace('"iterations": ', '"iterations": 1e400, "was": ')
    path = tmp_path / "overflow.npz"
    write_zip(path, {**members, "config.npy": stored(npy(numpy.array(config)))})
    message = r": the optimizer's iterations must be a whole number >= 0, got inf\.$"
    with pytest.raises(ValueError, match=rf"^{re.escape(str(path))}{message}"):
        xpann.load_model(path)


def test_nesting_deeper_than_python_recurses_is_a_value_error(saved, tmp_path):
    _, _, members = saved
    config = str(numpy.load(io.BytesIO(members["config.npy"][0])))
    config = config.replace('"metadata": {}', '"metadata": {"a": ' + "[" * 100000 + "]" * 100000 + "}")
    path = tmp_path / "nested.npz"
    write_zip(path, {**members, "config.npy": stored(npy(numpy.array(config)))})
    with pytest.raises(ValueError, match=rf"^{re.escape(str(path))} .*nested deeper than"):
        xpann.load_model(path)


@pytest.mark.parametrize("tensor", ["hidden/kernel", "batch_normalization_2/moving_variance"])
@pytest.mark.parametrize("value", [numpy.nan, numpy.inf])
def test_non_finite_weights_are_refused_naming_the_tensor(saved, tmp_path, tensor, value):
    _, _, members = saved
    name = f"tensor:{tensor}.npy"
    array = numpy.load(io.BytesIO(members[name][0])).copy()
    array.flat[3] = value
    path = tmp_path / "nan.npz"
    write_zip(path, {**members, name: stored(npy(array))})
    message = rf": member 'tensor:{tensor}' holds NaN or infinite values\.$"
    with pytest.raises(ValueError, match=rf"^{re.escape(str(path))}{message}"):
        xpann.load_model(path)


def test_a_stored_tensor_of_another_dtype_kind_is_refused(saved, tmp_path):
    _, _, members = saved
    name = "tensor:hidden/kernel.npy"
    array = numpy.load(io.BytesIO(members[name][0]))
    path = tmp_path / "complex.npz"
    write_zip(path, {**members, name: stored(npy(array.astype("complex64")))})
    with pytest.raises(ValueError, match=rf"^{re.escape(str(path))}: .*'tensor:hidden/kernel'.*complex64"):
        xpann.load_model(path)


# ----- saving ---------------------------------------------------------------------------------

_KILLED_SAVE = """
import os, signal, sys
import xpann, xpann.io
def killed(stream, **arrays):
    stream.write(b"half a model")
    stream.flush()
    os.kill(os.getpid(), signal.SIGKILL)
model = xpann.Sequential([xpann.layers.Dense(2)], input_dim=3)
xpann.io.numpy.savez = killed
model.save(sys.argv[1])
"""


def temporaries(folder):
    return sorted(p.name for p in pathlib.Path(folder).iterdir() if p.name.endswith(".tmp"))


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_a_save_killed_half_way_leaves_a_file_the_next_save_of_that_target_removes(tmp_path):
    path = tmp_path / "model.npz"
    run = subprocess.Popen([sys.executable, "-c", _KILLED_SAVE, str(path)], stderr=subprocess.PIPE, text=True)
    assert run.wait() == -signal.SIGKILL, run.stderr.read()
    left = temporaries(tmp_path)
    assert len(left) == 1 and left[0].startswith(".model.npz.xpann-"), left
    dead = tmp_path / left[0]
    live = tmp_path / f".model.npz.xpann-{os.getpid()}-11111111.tmp"  # a writer still running (this process)
    fresh = tmp_path / f".model.npz.xpann-{run.pid}-22222222.tmp"  # its writer is gone, but it was just written
    other = tmp_path / f".other.npz.xpann-{run.pid}-33333333.tmp"  # another target's
    for file in (live, fresh, other):
        file.write_bytes(b"x")
    old = time.time() - 2 * xpann.io.STALE_SECONDS
    for file in (dead, live, other):
        os.utime(file, (old, old))
    xpann.Sequential([Dense(2)], input_dim=3).save(path)
    assert temporaries(tmp_path) == sorted([live.name, fresh.name, other.name])
    assert xpann.load_model(path).input_dim == 3


def test_a_save_into_a_missing_folder_names_the_target(tmp_path):
    path = tmp_path / "no" / "such" / "model.npz"
    with pytest.raises(FileNotFoundError) as caught:
        xpann.Sequential([Dense(2)], input_dim=3).save(path)
    assert str(path) in str(caught.value) and ".tmp" not in str(caught.value) and ".xpann-" not in str(caught.value)


def test_a_full_disk_names_the_target_and_leaves_nothing(tmp_path, monkeypatch):
    def full(descriptor):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(xpann.io.os, "fsync", full)
    path = tmp_path / "model.npz"
    with pytest.raises(OSError, match=rf"\[Errno 28\] .*{re.escape(str(path))}.*No space left on device") as caught:
        xpann.Sequential([Dense(2)], input_dim=3).save(path)
    assert caught.value.errno == 28 and ".tmp" not in str(caught.value)
    assert os.listdir(tmp_path) == []


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX file modes")
def test_writes_from_many_threads_keep_the_umask_for_every_file(tmp_path, monkeypatch):
    monkeypatch.setattr(xpann.io.os, "fsync", lambda descriptor: None)  # many writes, quickly
    umask = os.umask

    def slow_umask(mask):  # a umask set for a moment lasts long enough for the other threads to see it
        previous = umask(mask)
        time.sleep(0.001)
        return previous

    monkeypatch.setattr(os, "umask", slow_umask)
    model = xpann.Sequential([Dense(2)], input_dim=3)
    wrong = []

    def made(path):  # each file is new, checked, then removed, so that the next one is new as well
        mode = stat.S_IMODE(os.stat(path).st_mode)
        if mode != 0o640:
            wrong.append((path.name, oct(mode)))
        os.unlink(path)

    def saver(k):
        model.save(tmp_path / f"model_{k}.npz")
        made(tmp_path / f"model_{k}.npz")
        for _ in range(300):
            with xpann.io.atomic_write(tmp_path / f"saved_{k}.txt", text=True) as stream:
                stream.write("x")
            made(tmp_path / f"saved_{k}.txt")

    def creator(k):
        for _ in range(1000):
            (tmp_path / f"plain_{k}").write_bytes(b"")
            made(tmp_path / f"plain_{k}")

    threads = [threading.Thread(target=saver, args=(k,)) for k in range(4)]
    threads += [threading.Thread(target=creator, args=(k,)) for k in range(2)]
    previous = os.umask(0o027)
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        os.umask(previous)
    assert wrong == [] and os.listdir(tmp_path) == []


def test_no_code_in_xpann_changes_the_process_umask():
    package = pathlib.Path(xpann.__file__).parent
    calls = [f"{file.relative_to(package)}:{number}" for file in sorted(package.rglob("*.py"))
             for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), 1) if "umask(" in line]
    assert calls == []


def test_a_config_nested_deeper_than_a_load_reads_is_refused_at_save(tmp_path):
    model = xpann.Sequential([Dense(2)], input_dim=3)
    model.metadata = {"a": json.loads("[" * 150 + "]" * 150)}
    with pytest.raises(ValueError, match=r"cannot be saved: .*deeper than the 100 levels load_model reads"):
        model.save(tmp_path / "model.npz")
    assert os.listdir(tmp_path) == []


def test_a_list_as_a_column_name_is_a_damaged_file(tmp_path):
    from cli_runner import run

    model_path = tmp_path / "m.npz"
    run("train", "--dataset", "iris", "--epochs", 1, "--out", model_path)
    model = xpann.load_model(model_path)
    model.metadata["tabular"]["features"]["columns"][0]["name"] = ["a", "b"]
    model.save(tmp_path / "hostile.npz")
    with pytest.raises(ValueError, match="a column name must be text or a number"):
        xpann.tabular.load(tmp_path / "hostile.npz")
