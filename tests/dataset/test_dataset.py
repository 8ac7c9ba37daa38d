"""attribute_dataset / load_attributions: results against per-batch ``attribute`` calls,
resumption after a kill, two processes under torchrun, the on-disk format read with numpy
alone, and clear errors that leave what is on disk as it was."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.data.distributed import DistributedSampler

import attrkit
from attrkit.dataset import ShardedArray
from tests import dataset_fixtures as fixtures
from tests.helpers import ROOT, assert_same_run
from tests.models import MixedArgsNet
from tests.tester import methods, quick_call, quick_callable


def attribute(out: Path, method: str = "guided_backprop", data: object = None, **kwargs):
    kwargs.setdefault("target", "label")
    kwargs.setdefault("progress", False)
    if data is None:
        data = fixtures.dataset()
        kwargs.setdefault("batch_size", 4)
    model = kwargs.pop("model", fixtures.model())
    return attrkit.attribute_dataset(method, data, model=model, out=out, **kwargs)


def per_batch(method, model, images, targets, batch_size, init=None, **attribute_kwargs):
    """The expectation: ``attribute`` on each batch, concatenated."""
    explainer = attrkit.create(method, model, **(init or {}))
    parts = []
    for start in range(0, len(images), batch_size):
        stop = start + batch_size
        target = targets[start:stop] if isinstance(targets, torch.Tensor) else targets
        parts.append(explainer.attribute(images[start:stop], target=target, **attribute_kwargs))
    return parts


def cat(parts):
    return np.concatenate([p.detach().numpy() for p in parts])


def snapshot(folder: Path) -> dict[str, tuple[str, int, int]]:
    """Every file's content digest, inode and modification time."""
    return {
        str(path.relative_to(folder)): (
            hashlib.sha256(path.read_bytes()).hexdigest(),
            path.stat().st_ino,
            path.stat().st_mtime_ns,
        )
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def read_with_numpy(folder: Path) -> dict[str, np.ndarray]:
    """The run's arrays, read in a subprocess that imports numpy and json only."""
    code = f"""
import json, os, sys
import numpy as np
folder = {str(folder)!r}
manifest = json.load(open(os.path.join(folder, "manifest.json")))
arrays = {{name: np.concatenate([np.load(os.path.join(folder, f), mmap_mode="r")
                                  for f in spec["shards"]])
          for name, spec in manifest["arrays"].items()}}
arrays["indices"] = np.load(os.path.join(folder, manifest["indices"]))
if manifest["targets"]:
    arrays["targets"] = np.load(os.path.join(folder, manifest["targets"]))
assert not any(m.split(".")[0] in ("torch", "attrkit") for m in sys.modules), "imported torch"
np.savez(os.path.join(folder, "..", "read.npz"), **arrays)
"""
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    with np.load(folder.parent / "read.npz") as read:
        return dict(read)


# ----------------------------------------------------------------------------- results


def _method_case(name: str) -> object:
    """A quick call of registered method ``name`` on the fixtures' model: its constructor
    arguments (the layer ``features.4`` where it takes one), its options, a neuron of that
    layer where it takes a neuron selector (neuron conductance takes a target too), and
    for a perturbation method 2 x 2 patches of the image (exact Shapley values: 4 features)."""
    call = quick_call(
        name,
        layer="features.4",
        neuron_selector=(1, 0, 1),
        options={"n_steps": 5},
        image_shape=tuple(fixtures.dataset().images.shape[1:]),
    )
    options = {key: value for key, value in call.kwargs.items() if key != "target"}
    return pytest.param(name, call.init, options, id=name)


#: The registered methods that take a target, that a quick call can build (not LimeBase,
#: whose interpretable model and transforms are the caller's, nor DataLoaderAttribution)
#: and that draw no random numbers: the runner attributes each batch under its own seed,
#: which a per-batch call does not reproduce (a method that draws them:
#: test_stochastic_method_is_reproducible_from_the_seed).
METHOD_CASES = [
    _method_case(name)
    for name in methods(
        lambda m: m.takes_target and quick_callable(m) and not m.draws_random_numbers
    )
]


@pytest.mark.parametrize(("method", "init", "options"), METHOD_CASES)
def test_single_process_equals_per_batch_attribute(tmp_path, method, init, options):
    data = fixtures.dataset()
    result = attribute(tmp_path / "out", method, batches_per_shard=3, **init, **options)
    model = fixtures.model()
    expected = cat(per_batch(method, model, data.images, data.labels, 4, init, **options))
    assert isinstance(result, attrkit.AttributionSet)
    assert len(result) == fixtures.NUM_SAMPLES
    assert result.shape == expected.shape
    np.testing.assert_allclose(np.asarray(result), expected, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(result.indices, np.arange(fixtures.NUM_SAMPLES))
    np.testing.assert_array_equal(result.targets, data.labels.numpy())
    assert result.manifest["run"]["method"]["name"] == method


@pytest.mark.parametrize(
    "target",
    [
        pytest.param("label", id="label"),
        pytest.param("predicted", id="predicted"),
        pytest.param(3, id="fixed-class"),
    ],
)
def test_target_forms(tmp_path, target):
    data, model = fixtures.dataset(), fixtures.model()
    with torch.no_grad():
        predicted = model(data.images).argmax(dim=1)
    chosen = {"label": data.labels, "predicted": predicted, 3: torch.full_like(predicted, 3)}
    expected = cat(per_batch("guided_backprop", model, data.images, chosen[target], 4))
    result = attribute(tmp_path / "out", target=target)
    np.testing.assert_allclose(result[:], expected, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(result.targets, chosen[target].numpy())


def test_neuron_method_takes_no_target(tmp_path):
    data, model = fixtures.dataset(), fixtures.model()
    selector = (1, 0, 1)
    explainer = attrkit.create("neuron_guided_backprop", model, layer="features.4")
    expected = np.concatenate(
        [
            explainer.attribute(data.images[s : s + 4], neuron_selector=selector).numpy()
            for s in range(0, len(data), 4)
        ]
    )
    result = attribute(
        tmp_path / "out",
        "neuron_guided_backprop",
        target=None,
        layer="features.4",
        neuron_selector=selector,
    )
    np.testing.assert_allclose(result[:], expected, rtol=1e-6, atol=1e-7)
    assert result.targets is None
    with pytest.raises(TypeError, match="`target` must be None"):
        attribute(
            tmp_path / "other",
            "neuron_guided_backprop",
            layer="features.4",
            neuron_selector=selector,
        )


def test_tuple_inputs_and_additional_args_from_batch_fn(tmp_path):
    torch.manual_seed(0)
    model = MixedArgsNet().eval()
    generator = torch.Generator().manual_seed(2)
    images = torch.randn(10, 1, 4, 4, generator=generator)
    meta = torch.randn(10, 4, generator=generator)
    mask = (torch.rand(10, 6, generator=generator) > 0.3).float()
    labels = torch.randint(0, 4, (10,), generator=generator)
    records = [
        {
            "image": images[s : s + 3],
            "meta": meta[s : s + 3],
            "mask": mask[s : s + 3],
            "y": labels[s : s + 3],
        }
        for s in range(0, 10, 3)
    ]

    def batch_fn(batch):
        return (batch["image"], batch["meta"]), batch["y"], (batch["mask"], 2.0, "sum")

    result = attribute(tmp_path / "out", data=records, model=model, batch_fn=batch_fn)
    explainer = attrkit.GuidedBackprop(model)
    expected = [
        explainer.attribute(
            (r["image"], r["meta"]), target=r["y"], additional_forward_args=(r["mask"], 2.0, "sum")
        )
        for r in records
    ]
    assert result.is_tuple
    assert len(result.arrays) == 2
    assert result.shape == ((10, 1, 4, 4), (10, 4))
    for position in range(2):
        np.testing.assert_allclose(
            result.arrays[position][:], cat([e[position] for e in expected]), rtol=1e-6
        )
    first = result[0]
    assert isinstance(first, tuple)
    assert first[0].shape == (1, 4, 4)
    assert first[1].shape == (4,)
    assert [i["shape"] for i in result.manifest["inputs"]] == [[1, 4, 4], [4]]


def test_dict_batches_use_the_default_keys(tmp_path):
    data = fixtures.dataset()

    def collate(items):
        return {
            "inputs": torch.stack([i[0] for i in items]),
            "labels": torch.stack([i[1] for i in items]),
        }

    loader = DataLoader(data, batch_size=5, collate_fn=collate)
    result = attribute(tmp_path / "out", data=loader)
    expected = cat(per_batch("guided_backprop", fixtures.model(), data.images, data.labels, 5))
    np.testing.assert_allclose(result[:], expected, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(
    "kind",
    [
        pytest.param("dataset", id="dataset"),
        pytest.param("loader", id="dataloader"),
        pytest.param("iterable", id="generator"),
    ],
)
def test_every_source_gives_the_same_files(tmp_path, kind):
    reference = attribute(tmp_path / "reference", batch_size=6, batches_per_shard=2)
    data, options = fixtures.source(kind, 6)
    result = attribute(tmp_path / kind, data=data, batches_per_shard=2, **options)
    assert_same_run(tmp_path / "reference", tmp_path / kind, same_source=kind != "iterable")
    np.testing.assert_array_equal(result[:], reference[:])


def test_sampler_order_is_kept_with_the_dataset_indices(tmp_path):
    data = fixtures.dataset()
    order = [9, 3, 4, 0, 7, 21, 2]
    result = attribute(tmp_path / "out", data=DataLoader(data, batch_size=3, sampler=order))
    np.testing.assert_array_equal(result.indices, order)
    single = attrkit.GuidedBackprop(fixtures.model())
    for row, index in enumerate(order):
        expected = single.attribute(data.images[index : index + 1], target=int(data.labels[index]))
        np.testing.assert_allclose(result[row], expected[0].numpy(), rtol=1e-6, atol=1e-7)


def test_convergence_delta_is_stored(tmp_path):
    data = fixtures.dataset()
    result = attribute(
        tmp_path / "out", "integrated_gradients", n_steps=4, return_convergence_delta=True
    )
    parts = per_batch(
        "integrated_gradients",
        fixtures.model(),
        data.images,
        data.labels,
        4,
        n_steps=4,
        return_convergence_delta=True,
    )
    np.testing.assert_allclose(result[:], cat([p[0] for p in parts]), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(
        result.convergence_delta[:], cat([p[1] for p in parts]), rtol=1e-5, atol=1e-6
    )


def test_stochastic_method_is_reproducible_from_the_seed(tmp_path):
    options = {"base_method": "input_x_gradient", "nt_samples": 3, "stdevs": 0.5}
    model, data = fixtures.model(), fixtures.dataset()
    state = torch.get_rng_state()
    first = attribute(
        tmp_path / "a", "noise_tunnel", model=model, data=data, batch_size=4, **options
    )
    assert torch.equal(torch.get_rng_state(), state), "the caller's random state changed"
    again = attribute(tmp_path / "b", "noise_tunnel", **options)
    other = attribute(tmp_path / "c", "noise_tunnel", seed=1, **options)
    np.testing.assert_array_equal(first[:], again[:])
    assert not np.allclose(first[:], other[:])
    method = first.manifest["run"]["method"]
    assert method["init_arguments"] == {"base_method": "input_x_gradient"}
    assert method["attribute_arguments"] == {"nt_samples": 3, "stdevs": 0.5}


def test_method_object_instead_of_a_name(tmp_path):
    model = fixtures.model()
    by_name = attribute(tmp_path / "name", "layer_grad_cam", model=model, layer="features.4")
    explainer = attrkit.LayerGradCam(model, model.features[4])
    by_object = attrkit.attribute_dataset(
        explainer,
        fixtures.dataset(),
        target="label",
        out=tmp_path / "object",
        batch_size=4,
        progress=False,
    )
    np.testing.assert_array_equal(by_object[:], by_name[:])
    assert by_object.manifest["run"]["method"] == by_name.manifest["run"]["method"]


def test_readable_with_numpy_alone(tmp_path):
    data = fixtures.dataset()
    result = attribute(tmp_path / "out", batch_size=5, batches_per_shard=2)
    read = read_with_numpy(tmp_path / "out")
    np.testing.assert_array_equal(read["attributions"], np.asarray(result))
    np.testing.assert_array_equal(read["indices"], np.arange(fixtures.NUM_SAMPLES))
    np.testing.assert_array_equal(read["targets"], data.labels.numpy())
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    model = fixtures.model()
    assert manifest["run"]["model"]["sha256"] == attrkit.dataset.model_fingerprint(model)["sha256"]
    assert manifest["versions"]["torch"] == torch.__version__
    assert manifest["inputs"] == [{"shape": [3, 8, 8], "dtype": "torch.float32"}]


def test_progress_bar_shows_samples_per_second(tmp_path, capsys):
    attribute(tmp_path / "out", progress=True)
    captured = capsys.readouterr()
    assert "samples/s" in captured.err
    assert f"{fixtures.NUM_SAMPLES}/{fixtures.NUM_SAMPLES}" in captured.err
    assert captured.out == ""


def test_model_fingerprint_follows_the_weights():
    a, b = fixtures.model(), fixtures.model()
    assert attrkit.dataset.model_fingerprint(a) == attrkit.dataset.model_fingerprint(b)
    with torch.no_grad():
        b.head[1].bias[0] += 1e-6
    assert attrkit.dataset.model_fingerprint(a) != attrkit.dataset.model_fingerprint(b)


# ----------------------------------------------------------------------------- reading


@pytest.fixture
def sharded(tmp_path):
    whole = np.arange(7 * 2 * 3, dtype=np.float32).reshape(7, 2, 3)
    sizes = [3, 1, 3]
    files = []
    for number, part in enumerate(np.split(whole, np.cumsum(sizes)[:-1])):
        files.append(tmp_path / f"{number}.npy")
        np.save(files[-1], part)
    return ShardedArray(files, sizes, (2, 3), "<f4"), whole


@pytest.mark.parametrize(
    "key",
    [
        pytest.param(0, id="first"),
        pytest.param(3, id="shard-boundary"),
        pytest.param(-1, id="negative"),
        pytest.param(np.int64(5), id="numpy-int"),
        pytest.param(slice(None), id="all"),
        pytest.param(slice(2, 6), id="across-shards"),
        pytest.param(slice(None, None, -2), id="reversed-step"),
        pytest.param([6, 0, 3, 3], id="int-list"),
        pytest.param([], id="empty-list"),
        pytest.param(np.array([True, False, True, False, False, True, True]), id="mask"),
        pytest.param((slice(1, 5), 1), id="rows-then-column"),
        pytest.param((4, slice(None), 2), id="row-then-slices"),
        pytest.param((Ellipsis, 0), id="ellipsis"),
    ],
)
def test_sharded_array_indexes_like_numpy(sharded, key):
    array, whole = sharded
    np.testing.assert_array_equal(array[key], whole[key])


def test_sharded_array_len_shape_iteration(sharded):
    array, whole = sharded
    assert len(array) == 7
    assert array.shape == whole.shape
    assert array.ndim == 3
    np.testing.assert_array_equal(np.stack(list(array)), whole)
    np.testing.assert_array_equal(np.asarray(array), whole)
    with pytest.raises(IndexError, match="out of range"):
        array[7]
    assert isinstance(array.shard(0), np.memmap)


# ----------------------------------------------------------------------------- resumption


def test_killed_run_resumes_to_the_same_result(tmp_path):
    out = tmp_path / "killed"
    config = tmp_path / "config.json"
    config.write_text(json.dumps([{"out": str(out), "batch_size": 4}]))
    env = dict(os.environ, **{fixtures.STALL_VARIABLE: "20"})  # batch 5 hangs
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.dataset_fixtures", str(config)], cwd=ROOT, env=env
    )
    try:
        deadline = time.monotonic() + 120
        while not (out / "shards" / "000004.json").exists():
            assert process.poll() is None, "the run ended before it was killed"
            assert time.monotonic() < deadline, "no shard appeared"
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    finally:
        process.kill()
    assert process.returncode == -signal.SIGTERM
    with pytest.raises(ValueError, match="incomplete run"):
        attrkit.load_attributions(out)
    done = {k: v for k, v in snapshot(out).items() if k.startswith("shards/")}
    assert sorted(done) == [
        f"shards/00000{i}.{s}" for i in range(5) for s in ("attributions.npy", "json")
    ]
    # What a kill in the middle of writing shard 5 could leave: a temporary file, and an
    # array file without its record.
    (out / "shards" / "000005.attributions.npy.tmp-12345").write_bytes(b"\x93NUMPY half")
    (out / "shards" / "000005.attributions.npy").write_bytes(b"\x93NUMPY half")

    resumed = attribute(out, resume=True)
    complete = attribute(tmp_path / "complete")
    assert_same_run(out, tmp_path / "complete")
    np.testing.assert_array_equal(resumed[:], complete[:])
    after = snapshot(out)
    assert all(after[name] == state for name, state in done.items()), "a finished shard was redone"
    assert not list(out.rglob("*.tmp-*"))


def test_failed_batch_keeps_earlier_shards_and_resumes(tmp_path):
    good = list(fixtures.batches(4))
    bad = [*good[:3], "not a batch", *good[4:]]
    with pytest.raises(TypeError, match="batch 3 of `data` is a str"):
        attribute(tmp_path / "out", data=iter(bad))
    before = snapshot(tmp_path / "out")
    assert {f"shards/00000{i}.json" for i in range(3)} <= set(before)
    attribute(tmp_path / "out", data=iter(good), resume=True)
    attribute(tmp_path / "reference", data=iter(good))
    assert_same_run(tmp_path / "out", tmp_path / "reference")
    after = snapshot(tmp_path / "out")
    assert all(after[k] == v for k, v in before.items() if k.startswith("shards/"))


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda b: b[: len(b) // 2], id="truncated"),
        pytest.param(lambda b: b"", id="empty"),
    ],
)
def test_shard_that_did_not_reach_the_disk_is_redone(tmp_path, damage):
    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="disk failure"):
        attribute(out, data=FailingImages(fail_at=20), batch_size=4)
    # After a power failure, a renamed file can hold less than was written.
    array = out / "shards" / "000002.attributions.npy"
    array.write_bytes(damage(array.read_bytes()))
    before = snapshot(out)
    attribute(out, resume=True)
    attribute(tmp_path / "complete")
    assert_same_run(out, tmp_path / "complete")
    after = snapshot(out)
    redone = sorted(k for k in before if k.startswith("shards/") and after[k] != before[k])
    assert redone == ["shards/000002.attributions.npy", "shards/000002.json"]


def test_resume_of_a_complete_run_does_nothing(tmp_path):
    first = attribute(tmp_path / "out")
    before = snapshot(tmp_path / "out")
    again = attribute(tmp_path / "out", resume=True)
    assert snapshot(tmp_path / "out") == before
    np.testing.assert_array_equal(again[:], first[:])


class FailingImages(fixtures.SyntheticImages):
    """The fixture dataset, whose item ``fail_at`` cannot be read."""

    def __init__(self, fail_at: int) -> None:
        super().__init__()
        self.fail_at = fail_at

    def __getitem__(self, index):
        if index == self.fail_at:
            raise RuntimeError("disk failure")
        return super().__getitem__(index)


def _other_weights():
    model = fixtures.model()
    with torch.no_grad():
        model.features[0].weight.mul_(1.01)
    return model


@pytest.mark.parametrize(
    ("change", "message"),
    [
        pytest.param({"method": "deconvolution"}, "method.name", id="method"),
        pytest.param({"target": "predicted"}, "target.mode", id="target"),
        pytest.param({"model": "other weights"}, "model.sha256", id="weights"),
        pytest.param({"batch_size": 5}, "data.num_batches", id="batching"),
        pytest.param({"batches_per_shard": 2}, "batches_per_shard", id="shards"),
        pytest.param({"seed": 3}, "seed", id="seed"),
        pytest.param({"abs": False}, "method.attribute_arguments.abs", id="argument"),
    ],
)
@pytest.mark.parametrize(
    "complete", [pytest.param(True, id="complete"), pytest.param(False, id="incomplete")]
)
def test_mismatched_run_is_refused_and_kept(tmp_path, change, message, complete):
    out = tmp_path / "out"
    base = {"method": "saliency"}
    if complete:
        attribute(out, **base)
    else:  # an interrupted run: shards 0-4 written, then loading fails
        with pytest.raises(RuntimeError, match="disk failure"):
            attribute(out, data=FailingImages(fail_at=20), batch_size=4, **base)
        assert (out / "shards" / "000004.json").exists()
    before = snapshot(out)
    change = dict(change)
    if change.get("model") == "other weights":
        change["model"] = _other_weights()
    arguments = {**base, **change}
    with pytest.raises(ValueError, match=f"cannot be resumed.*{message}") as error:
        attribute(out, resume=True, **arguments)
    assert "nothing was changed" in str(error.value)
    assert snapshot(out) == before


def test_existing_run_needs_resume(tmp_path):
    attribute(tmp_path / "out")
    before = snapshot(tmp_path / "out")
    with pytest.raises(FileExistsError, match="already holds a complete run; pass resume=True"):
        attribute(tmp_path / "out")
    assert snapshot(tmp_path / "out") == before


def test_folder_with_other_files_is_refused(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not an empty folder"):
        attribute(tmp_path / "out", resume=True)
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["notes.txt"]


def _writable(folder: Path) -> bool:
    probe = folder / "probe"
    try:
        probe.write_bytes(b"")
    except OSError:
        return False
    probe.unlink()
    return True


@pytest.fixture
def read_only_folder(tmp_path):
    """An empty folder this process cannot write: mode 0o555, and for root (which ignores
    the mode) the immutable attribute."""
    folder = tmp_path / "readonly"
    folder.mkdir(mode=0o555)
    immutable = False
    if _writable(folder):
        immutable = (
            subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode == 0
        )
    try:
        if _writable(folder):
            pytest.skip("cannot make a folder read-only for root on this file system")
        yield folder
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
        folder.chmod(0o755)


def test_read_only_folder_fails_before_any_work(read_only_folder):
    # The only batch is malformed: getting past the folder check would raise a TypeError.
    with pytest.raises(PermissionError, match=r"`out` .*readonly' is not writable"):
        attribute(read_only_folder, data=["malformed batch"])
    assert list(read_only_folder.iterdir()) == []


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("batches", "error", "message"),
    [
        pytest.param(["text"], TypeError, "batch 0 of `data` is a str", id="not-a-batch"),
        pytest.param([(torch.ones(2, 3, 8, 8),) * 3], ValueError, "3 entries", id="triple"),
        pytest.param(
            [{"x": torch.ones(2, 3, 8, 8)}], ValueError, "without an 'inputs' key", id="dict-keys"
        ),
        pytest.param(
            [(torch.ones(2, 3, 8, 8, dtype=torch.long), torch.zeros(2, dtype=torch.long))],
            TypeError,
            "batch 0 of `data`: `inputs` has dtype torch.int64",
            id="int-inputs",
        ),
        pytest.param([torch.ones(2, 3, 8, 8)], ValueError, r"has no labels", id="no-labels"),
        pytest.param(
            [(torch.ones(2, 3, 8, 8), torch.zeros(2))],
            TypeError,
            "labels must be integers",
            id="float-labels",
        ),
        pytest.param(
            [(torch.ones(2, 3, 8, 8), torch.zeros(3, dtype=torch.long))],
            ValueError,
            r"labels have shape \(3,\)",
            id="label-count",
        ),
        pytest.param(
            [
                (torch.ones(2, 3, 8, 8), torch.zeros(2, dtype=torch.long)),
                (torch.ones(2, 3, 9, 9), torch.zeros(2, dtype=torch.long)),
            ],
            ValueError,
            "every batch must give the same per-example shapes",
            id="shape-change",
        ),
        pytest.param(
            [(torch.ones(2, 3, 8, 8), torch.full((2,), 7))],
            IndexError,
            "batch 0 of `data`: `target",
            id="label-out-of-range",
        ),
        pytest.param([], ValueError, "yielded no batches", id="empty"),
    ],
)
def test_malformed_batches(tmp_path, batches, error, message):
    with pytest.raises(error, match=message):
        attribute(tmp_path / "out", data=batches, batches_per_shard=2)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        pytest.param(
            {"target": "labels!"}, ValueError, "`target` must be None, an int", id="target-str"
        ),
        pytest.param({"target": [1, 2]}, TypeError, "target='label'", id="target-list"),
        pytest.param({"method": "no_such"}, KeyError, "no attribution method named", id="method"),
        pytest.param({"model": None}, TypeError, "`model` is required", id="no-model"),
        pytest.param(
            {"method": 3}, TypeError, "`method` must be a registered method name", id="method-type"
        ),
        pytest.param({"n_step": 3}, TypeError, "does not take", id="unknown-option"),
        pytest.param(
            {"additional_forward_args": 1}, TypeError, "come from each batch", id="per-batch-option"
        ),
        pytest.param({"data": torch.ones(4, 3, 8, 8)}, TypeError, "TensorDataset", id="tensor"),
        pytest.param(
            {"data": DataLoader(TensorDataset(torch.ones(4, 3, 8, 8)), shuffle=True)},
            ValueError,
            "use shuffle=False",
            id="shuffled",
        ),
        pytest.param(
            {
                "data": DataLoader(
                    TensorDataset(torch.ones(4, 1)),
                    sampler=DistributedSampler(
                        TensorDataset(torch.ones(4, 1)), num_replicas=2, rank=0
                    ),
                )
            },
            ValueError,
            "DistributedSampler",
            id="pre-sharded",
        ),
        pytest.param(
            {"data": DataLoader(TensorDataset(torch.ones(4, 1))), "batch_size": 2},
            TypeError,
            "`batch_size` applies when `data` is a Dataset",
            id="batch-size",
        ),
        pytest.param(
            {"batches_per_shard": 0},
            ValueError,
            "`batches_per_shard` must be >= 1",
            id="shard-size",
        ),
        pytest.param({"out": 3}, TypeError, "`out` must be a folder path", id="out-type"),
        pytest.param({"distributed": True}, ValueError, "launch with torchrun", id="distributed"),
        pytest.param(
            {"device": "gpu9"}, ValueError, "`device` 'gpu9' is not a device", id="device"
        ),
    ],
)
def test_bad_arguments(tmp_path, kwargs, error, message):
    kwargs = dict(kwargs)
    method = kwargs.pop("method", "saliency")
    out = kwargs.pop("out", tmp_path / "out")
    with pytest.raises(error, match=message):
        attribute(out, method, **kwargs)
    assert not (tmp_path / "out").exists()


def test_load_attributions_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"holds no attrkit manifest\.json"):
        attrkit.load_attributions(tmp_path)
    (tmp_path / "manifest.json").write_text('{"format": "something else"}')
    with pytest.raises(ValueError, match="not an attrkit attribution manifest"):
        attrkit.load_attributions(tmp_path)


# ----------------------------------------------------------------------------- torchrun


def test_two_processes_under_torchrun_equal_one_process(tmp_path):
    configs = [
        {"method": "guided_backprop", "batch_size": 4, "batches_per_shard": 2},
        {"method": "saliency", "source": "iterable", "batch_size": 5, "target": "predicted"},
        {
            "method": "noise_tunnel",
            "batch_size": 6,
            "source": "loader",
            "options": {"base_method": "saliency", "nt_samples": 2, "stdevs": 0.3},
        },
    ]
    for number, config in enumerate(configs):
        config["out"] = str(tmp_path / f"two-{number}")
    (tmp_path / "config.json").write_text(json.dumps(configs))
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
        "-m",
        "tests.dataset_fixtures",
        str(tmp_path / "config.json"),
    ]
    result = subprocess.run(
        command,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, OMP_NUM_THREADS="1"),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for number, config in enumerate(configs):
        one = tmp_path / f"one-{number}"
        fixtures.run({**config, "out": str(one)})
        assert_same_run(one, tmp_path / f"two-{number}")
        manifest = json.loads((tmp_path / f"two-{number}" / "manifest.json").read_text())
        assert manifest["world_size"] == 2
        assert manifest["complete"]
