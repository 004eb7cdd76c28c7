"""The networks: every arch builds at full and reduced width, the paper's layer layout, the data path."""

import numpy as np
import pytest
import torch
from torch import nn

from fnpgrade.clips import WindowedClip
from fnpgrade.nn import ARCHITECTURES, FaceBranch, RegionBranch, build_network
from fnpgrade.nn.data import WindowDataset, WindowLoader
from fnpgrade.nn.layers import frames_to_images
from fnpgrade.nn.networks import mean_frame_logits
from fnpgrade.nn.split import ClipValidSplit

PAPER_INPUTS = {"face": (128, 128), "brow": (40, 120), "mouth": (40, 120)}


# tiny models run faster on one torch thread (fixture in conftest.py)
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _batch(b=2, length=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {name: torch.randint(0, 256, (b, length, h, w, 3), dtype=torch.uint8, generator=g)
            for name, (h, w) in PAPER_INPUTS.items()}


def _conv_channels(module):
    return [m.out_channels for m in module.modules() if isinstance(m, nn.Conv2d)]


def _linear_sizes(module):
    return [(m.in_features, m.out_features) for m in module.modules() if isinstance(m, nn.Linear)]


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_every_arch_at_reduced_width_gives_logits_per_window(arch):
    net = build_network(arch, n_classes=3, width=0.125).eval()
    with torch.no_grad():
        out = net(**_batch(b=3, length=4))
    assert out.shape == (3, 3) and out.dtype == torch.float32
    assert torch.isfinite(out).all()
    assert set(net.inputs) <= set(PAPER_INPUTS)


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_every_arch_at_paper_width_builds_and_runs(arch):
    net = build_network(arch, n_classes=3, width=1.0).eval()
    with torch.no_grad():
        out = net(**_batch(b=1, length=2))
    assert out.shape == (1, 3)
    assert sum(p.numel() for p in net.parameters()) > 1_000_000


def test_face_branch_is_the_papers_n1():
    branch = FaceBranch()
    assert _conv_channels(branch) == [16, 16, 32, 32, 64, 64]
    assert sum(isinstance(m, nn.MaxPool2d) for m in branch.modules()) == 3
    # one FC: 64 channels x 16 x 16 after three 2x2 pools of 128x128 -> 1024 features
    assert _linear_sizes(branch) == [(64 * 16 * 16, 1024)]
    assert all(m.p == 0.5 for m in branch.modules() if isinstance(m, nn.Dropout))


def test_region_branch_is_the_papers_n2_n3():
    branch = RegionBranch()
    assert _conv_channels(branch) == [8, 8, 32, 32, 128, 128]
    # three FC, 1024 features; 40x120 -> 5x15 after three pools
    assert _linear_sizes(branch) == [(128 * 5 * 15, 1024), (1024, 1024), (1024, 1024)]
    # batch norm before every hidden layer's activation: one per conv and per FC
    n_bn = sum(isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) for m in branch.modules())
    assert n_bn == 6 + 3


def test_width_scales_channels_and_fc_sizes():
    branch = RegionBranch(width=0.25, out_features=256)
    assert _conv_channels(branch) == [2, 2, 8, 8, 32, 32]
    assert _linear_sizes(branch)[-1] == (256, 256)
    small, full = build_network("phcnn-lstm", width=0.25), build_network("phcnn-lstm", width=1.0)
    assert sum(p.numel() for p in small.parameters()) < sum(p.numel() for p in full.parameters()) / 8


def test_sum_fusion_adds_branch_features():
    total = build_network("phcnn-lstm", width=0.125)
    assert total.features.out_features == 128 and total.head.lstm.input_size == 128
    assert total.inputs == ("face", "brow", "mouth") and total.features.measures is None
    features = total.features.eval()
    x = {k: frames_to_images(v) for k, v in _batch(b=1, length=2).items()}
    with torch.no_grad():
        fused = features(**x)
        parts = features.face(x["face"]) + features.brow(x["brow"]) + features.mouth(x["mouth"])
    torch.testing.assert_close(fused, parts)


@pytest.mark.parametrize("arch", ["phcnn-lstm", "phcnn"])
def test_measures_branch_adds_scaled_measures_features_to_the_fused_frame_features(arch):
    net = build_network(arch, width=0.125, n_measures=5).eval()
    assert net.inputs == ("face", "brow", "mouth", "measures")
    branch = net.features.measures
    assert _linear_sizes(branch) == [(5, 128), (128, 128)]
    branch.set_scaling(center=[0, 0, 0, 0, 1], scale=[0.1, 0.1, 0.1, 0.1, 0.5])
    batch = _batch(b=2, length=2)
    measures = torch.rand(2, 2, 5, generator=torch.Generator().manual_seed(0)) * 0.3
    x = {k: frames_to_images(v) for k, v in batch.items()}
    with torch.no_grad():
        fused = net.features(**x, measures=measures)
        images_only = net.features.face(x["face"]) + net.features.brow(x["brow"]) + net.features.mouth(x["mouth"])
        scaled = ((measures.reshape(4, 5) - torch.tensor([0, 0, 0, 0, 1.0])) / torch.tensor([0.1] * 4 + [0.5]))
        torch.testing.assert_close(fused, images_only + branch.body(scaled.clamp(-5, 5)))
        logits = net(**batch, measures=measures)
        # the measures change the output; an outlier is clipped (x 100 reads as x 5 scale units), NaN as typical
        assert not torch.allclose(logits, net(**batch, measures=torch.zeros_like(measures)))
        huge, clipped = measures.clone(), measures.clone()
        huge[..., 0], clipped[..., 0] = 100.0, 0.5
        torch.testing.assert_close(net(**batch, measures=huge), net(**batch, measures=clipped))
        assert torch.isfinite(net(**batch, measures=torch.full_like(measures, float("nan")))).all()
    with pytest.raises(ValueError, match=r"needs the input\(s\) \['measures'\]"):
        net(**batch)


def test_image_dropout_drops_whole_windows_image_features_in_training_only():
    net = build_network("phcnn-lstm", width=0.125, n_measures=3)
    assert net.features.image_dropout == 0.75 and build_network("phcnn", width=0.125).features.image_dropout == 0
    features = net.features
    batch = _batch(b=64, length=2)
    x = {k: frames_to_images(v) for k, v in batch.items()}
    measures = torch.rand(64, 2, 3, generator=torch.Generator().manual_seed(1))
    features.eval()  # batch norms with fixed statistics: the same features in every call
    with torch.no_grad():
        images = (features.face(x["face"]) + features.brow(x["brow"]) + features.mouth(x["mouth"])).reshape(64, 2, -1)
        branch = features.measures(measures.reshape(-1, 3)).reshape(64, 2, -1)
        torch.testing.assert_close(features(**x, measures=measures).reshape(64, 2, -1), images + branch)
        # training mode for the dropout decision only (the branches stay in eval mode)
        features.training = True
        torch.manual_seed(0)
        trained = features(**x, measures=measures).reshape(64, 2, -1) - branch
    dropped = trained.abs().amax(dim=(1, 2)) == 0
    # a window loses its image features in all its frames or keeps them all, scaled by 1 / (1 - 0.75)
    torch.testing.assert_close(trained[~dropped], 4 * images[~dropped], rtol=1e-4, atol=1e-5)
    assert 36 <= int(dropped.sum()) <= 60  # 48 expected of 64
    with pytest.raises(ValueError, match="image_dropout needs a measures branch"):
        build_network("phcnn-lstm", width=0.125, image_dropout=0.5)
    with pytest.raises(ValueError, match=r"image_dropout must be in \[0, 1\)"):
        build_network("phcnn", width=0.125, n_measures=3, image_dropout=1.0)


def test_robust_scaling_ignores_outliers_and_never_divides_by_zero():
    from fnpgrade.nn.branches import robust_scaling

    rng = np.random.default_rng(0)
    m = np.column_stack([rng.normal(0.1, 0.02, 1000), np.zeros(1000), np.full(1000, 3.0), np.zeros(1000)])
    m[:5, 0] = 50.0          # a few failed flow fields
    m[:3, 3] = 0.2           # a measure that is almost always 0
    m[7, 1] = np.nan
    center, scale = robust_scaling(m)
    np.testing.assert_allclose(center, [0.1, 0, 3, 0], atol=0.005)
    assert abs(scale[0] - 0.02) < 0.003           # the outliers do not widen it
    assert scale[1] == 1 and scale[2] == 1         # constant columns are left unscaled
    assert scale[3] == pytest.approx(0.2)          # the deviation where the quantile range is 0


def test_face_only_networks_read_only_the_face():
    for arch in ("face-n1-lstm", "vgg16-lstm", "senet", "lstm"):
        net = build_network(arch, width=0.125).eval()
        assert net.inputs == ("face",)
        with torch.no_grad():
            net(face=_batch(b=1)["face"])  # no ROIs needed


def test_lstm_networks_depend_on_frame_order_frame_mean_networks_do_not():
    batch = _batch(b=2, length=4)
    reversed_batch = {k: v.flip(1) for k, v in batch.items()}
    with torch.no_grad():
        lstm = build_network("phcnn-lstm", width=0.125).eval()
        assert not torch.allclose(lstm(**batch), lstm(**reversed_batch))
        per_frame = build_network("phcnn", width=0.125).eval()
        torch.testing.assert_close(per_frame(**batch), per_frame(**reversed_batch), rtol=1e-4, atol=1e-5)


def test_frames_to_images_normalises_uint8_on_the_device():
    frames = torch.tensor([0, 255], dtype=torch.uint8).repeat_interleave(6).reshape(1, 2, 1, 2, 3)
    images = frames_to_images(frames)
    assert images.shape == (2, 3, 1, 2) and images.dtype == torch.float32
    assert images.min() == -1 and images.max() == 1
    nhwc = frames_to_images(_batch(b=1)["face"], channels_last=True)
    assert nhwc.is_contiguous(memory_format=torch.channels_last)


def test_channels_last_and_bf16_give_the_same_predictions():
    net = build_network("phcnn-lstm", width=0.125).eval()
    batch = _batch(b=2)
    with torch.no_grad():
        reference = torch.softmax(net(**batch), dim=1)
        net.set_channels_last(True)
        torch.testing.assert_close(torch.softmax(net(**batch), dim=1), reference, rtol=1e-4, atol=1e-5)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = torch.softmax(net(**batch).float(), dim=1)
    assert torch.allclose(low, reference, atol=0.05)


def test_mean_frame_logits_softmax_is_the_mean_of_frame_probabilities():
    frame_logits = torch.randn(3, 4, 5)
    window = mean_frame_logits(frame_logits)
    torch.testing.assert_close(torch.softmax(window, dim=1), torch.softmax(frame_logits, dim=2).mean(dim=1))


def test_build_network_rejects_unknown_arch_and_options():
    with pytest.raises(ValueError, match="Unknown arch 'resnet'"):
        build_network("resnet")
    with pytest.raises(ValueError, match="does not take the option n_measures=29"):
        build_network("senet", n_measures=29)
    with pytest.raises(ValueError, match="does not take the option fusion='concat'"):
        build_network("phcnn-lstm", fusion="concat")  # removed: the paper's sum is the only fusion
    with pytest.raises(ValueError, match="width"):
        build_network("phcnn", width=0)
    build_network("senet", n_measures=None, fc_features=None)  # neutral values are fine for every arch


def _clips(n_windows=(1, 3, 2), length=4):
    out = []
    for i, w in enumerate(n_windows):
        face = np.full((w, length, 128, 128, 3), i, np.uint8)
        face[:, :, 0, 0, 0] = np.arange(w)[:, None]  # window number, to check the gather
        roi = np.full((w, length, 40, 120, 3), 10 + i, np.uint8)
        out.append(WindowedClip(face, roi, roi.copy(), source=f"clip{i}"))
    return out


def test_window_dataset_flattens_clips_and_gathers_batches_without_copying_the_data():
    clips = _clips()
    dataset = WindowDataset(clips, y=[0, 1, 2], groups=["a", "a", "b"])
    assert len(dataset) == 6
    assert dataset.clip_of_window.tolist() == [0, 1, 1, 1, 2, 2]
    assert dataset.window_y.tolist() == [0, 1, 1, 1, 2, 2]
    X, y = dataset.gather(np.array([3, 0, 5]))
    assert X["face"].dtype == torch.uint8 and X["face"].shape == (3, 4, 128, 128, 3)
    assert X["face"][:, 0, 1, 1, 0].tolist() == [1, 0, 2]  # clip number
    assert X["face"][:, 0, 0, 0, 0].tolist() == [2, 0, 1]  # window number within the clip
    assert y.tolist() == [1, 0, 2]
    assert dataset.subset([1, 2]).clips is dataset.clips


def test_window_loader_covers_every_window_once_per_pass():
    dataset = WindowDataset(_clips(), y=[0, 1, 2])
    loader = WindowLoader(dataset, batch_size=4, shuffle=True, inputs=("face",), seed=0)
    batches = list(loader)
    assert len(batches) == len(loader) == 2
    assert set(batches[0][0]) == {"face"}
    seen = torch.cat([b[1] for b in batches])
    assert sorted(seen.tolist()) == [0, 1, 1, 1, 2, 2]
    # a last batch of a single window is dropped when shuffling (batch norm cannot train on one)
    shuffled, ordered = WindowLoader(dataset, batch_size=5, shuffle=True), WindowLoader(dataset, batch_size=5)
    assert sum(len(b[1]) for b in shuffled) == 5 and len(shuffled) == 1
    assert sum(len(b[1]) for b in ordered) == 6 and len(ordered) == 2


def test_window_dataset_errors_name_the_clip():
    clips = _clips()
    with pytest.raises(TypeError, match=r"X\[1\]"):
        WindowDataset([clips[0], "not a clip"])
    short = WindowedClip(np.zeros((1, 2, 128, 128, 3), np.uint8), np.zeros((1, 2, 40, 120, 3), np.uint8),
                         np.zeros((1, 2, 40, 120, 3), np.uint8), source="short.mp4")
    with pytest.raises(ValueError, match=r"X\[1\] \(short.mp4\)"):
        WindowDataset([clips[0], short])
    with pytest.raises(ValueError, match="y has 2 entries but X has 3 clips"):
        WindowDataset(clips, y=[0, 1])


def _with_measures(clips, k=3):
    import dataclasses

    return [dataclasses.replace(c, measures=np.full((c.n_windows, c.length, k), i, np.float32))
            for i, c in enumerate(clips)]


def test_window_dataset_carries_measures_as_float_and_names_clips_without():
    clips = _with_measures(_clips())
    dataset = WindowDataset(clips, y=[0, 1, 2])
    assert dataset.n_measures == 3 and WindowDataset(_clips()).n_measures is None
    X, _ = dataset.gather(np.array([3, 0]), inputs=("face", "measures"))
    assert X["measures"].dtype == torch.float32 and X["measures"].shape == (2, 4, 3)
    assert X["measures"][:, 0, 0].tolist() == [1, 0]  # clip number
    assert dataset.subset([1]).n_measures == 3
    with pytest.raises(ValueError, match=r"X\[0\] \(clip0\) carries no per-frame measures"):
        WindowDataset(_clips()).gather(np.array([0]), inputs=("face", "measures"))
    mixed = [clips[0], _clips()[1], clips[2]]
    with pytest.raises(ValueError, match=r"X\[1\] \(clip1\) carries no per-frame measures but X\[0\]"):
        WindowDataset(mixed)
    with pytest.raises(ValueError, match=r"X\[0\] \(clip0\) carries no per-frame measures but X\[2\]"):
        WindowDataset([_clips()[0], *clips[1:]][:1] + [_clips()[1], clips[2]])
    with pytest.raises(ValueError, match=r"X\[2\] \(clip2\) has 5 measures per frame but X\[0\] has 3"):
        WindowDataset(clips[:2] + _with_measures(_clips(), k=5)[2:])


def test_clip_valid_split_keeps_clips_and_subjects_whole():
    n = 40
    y = np.arange(n) % 3
    groups = np.arange(n) // 4  # 10 subjects of 4 clips
    split = ClipValidSplit(0.2, random_state=0)
    train, valid = split.split_clips(y, groups)
    assert len(valid) and len(train) and not set(train) & set(valid)
    assert not set(groups[train]) & set(groups[valid])
    assert 2 <= len(set(groups[valid])) <= 3

    clips = [WindowedClip(np.zeros((1 + i % 3, 4, 128, 128, 3), np.uint8), np.zeros((1 + i % 3, 4, 40, 120, 3),
             np.uint8), np.zeros((1 + i % 3, 4, 40, 120, 3), np.uint8)) for i in range(n)]
    dataset = WindowDataset(clips, y=y, groups=groups)
    train_ds, valid_ds = split(dataset)
    assert len(train_ds) + len(valid_ds) == len(dataset)
    assert not set(train_ds.clip_of_window) & set(valid_ds.clip_of_window)
    assert not set(groups[train_ds.clip_of_window]) & set(groups[valid_ds.clip_of_window])
    # without groups the unit is the clip
    train_ds, valid_ds = split(WindowDataset(clips, y=y))
    assert not set(train_ds.clip_of_window) & set(valid_ds.clip_of_window)


def test_clip_valid_split_with_one_subject_trains_without_validation():
    clips = _clips()
    dataset = WindowDataset(clips, y=[0, 1, 0], groups=["s", "s", "s"])
    with pytest.warns(UserWarning, match="without a validation set"):
        train, valid = ClipValidSplit()(dataset)
    assert train is dataset and valid is None
    assert repr(ClipValidSplit(0.25)) == "ClipValidSplit(valid_size=0.25, stratified=True, random_state=None)"
    with pytest.raises(ValueError, match="valid_size"):
        ClipValidSplit(1.5)


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
@pytest.mark.parametrize("channels_last", [False, True])
def test_fuse_batchnorm_keeps_the_outputs_and_removes_every_batch_norm(arch, channels_last):
    from fnpgrade.nn.layers import fuse_batchnorm

    torch.manual_seed(0)
    net = build_network(arch, width=0.125)
    if channels_last:
        net.set_channels_last(True)
    net.train()
    with torch.no_grad():  # move the running statistics away from 0 / 1
        for seed in range(2):
            net(**_batch(b=3, seed=seed))
    net.eval()
    batch = _batch(b=2, seed=5)
    with torch.no_grad():
        reference = net(**batch)
        with pytest.raises(ValueError, match="eval mode"):
            fuse_batchnorm(build_network(arch, width=0.125).train())
        fused = fuse_batchnorm(net)
        assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in fused.modules())
        torch.testing.assert_close(fused(**batch), reference, rtol=1e-4, atol=1e-4)


def test_build_network_ignores_the_roi_size_where_the_network_reads_no_roi():
    net = build_network("senet", width=0.125, face_size=(32, 32), roi_size=(8, 24))  # sizes of the data
    assert net.inputs == ("face",)
    with pytest.raises(ValueError, match="does not take the option n_measures=3"):
        build_network("face-n1-lstm", n_measures=3, roi_size=(8, 24))


def test_recalibrate_batchnorm_averages_batch_statistics_without_randomness_and_restores_modes():
    from fnpgrade.nn.layers import recalibrate_batchnorm

    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.Dropout(0.5), nn.Linear(3, 3), nn.BatchNorm1d(3))
    module.train()
    module[4].eval()  # a mode of one's own is kept too
    batches = [torch.randn(6, 4, generator=torch.Generator().manual_seed(s)) * 3 + 1 for s in range(3)]
    state = torch.get_rng_state()
    assert recalibrate_batchnorm(module, batches) == 3
    assert torch.equal(torch.get_rng_state(), state)  # dropout was off: no random number drawn
    assert [m.training for m in module] == [True, True, True, True, False]
    assert module[1].momentum == 0.1
    with torch.no_grad():
        first = [module[0](b) for b in batches]
        # the second batch norm saw the first one's batch-normalised output with dropout off
        second = [module[3](nn.functional.batch_norm(f, None, None, module[1].weight, module[1].bias, training=True))
                  for f in first]
    torch.testing.assert_close(module[1].running_mean, torch.stack([f.mean(0) for f in first]).mean(0))
    torch.testing.assert_close(module[1].running_var, torch.stack([f.var(0) for f in first]).mean(0))
    torch.testing.assert_close(module[4].running_mean, torch.stack([s.mean(0) for s in second]).mean(0))
    before = {k: v.clone() for k, v in module.state_dict().items()}
    assert recalibrate_batchnorm(module, []) == 0  # nothing seen: the statistics stay
    for k, v in module.state_dict().items():
        assert torch.equal(v, before[k]), k


@pytest.mark.parametrize("arch", ["phcnn-lstm", "phcnn"])
def test_measures_head_trains_beside_the_network_and_evaluation_averages_the_two_heads(arch):
    torch.manual_seed(0)
    net = build_network(arch, width=0.125, n_measures=4)
    batch = _batch(b=3, length=2)
    measures = torch.rand(3, 2, 4, generator=torch.Generator().manual_seed(2))
    net.train()
    out = net(**batch, measures=measures)
    # training: (the network's logits, the measures head's), so the classifier can add both losses
    assert isinstance(out, tuple) and [o.shape for o in out] == [(3, 3), (3, 3)]
    net.eval()
    with torch.no_grad():
        evaluated = net(**batch, measures=measures)
        b, l = 3, 2
        x = {k: frames_to_images(v) for k, v in batch.items()}
        f, m = net.features(**x, measures=measures, return_measures=True)
        own = net.head(f.reshape(b, l, -1)) if arch == "phcnn-lstm" else mean_frame_logits(net.fc(f).reshape(b, l, -1))
        head = net.measures_head(m.reshape(b, l, -1).mean(dim=1))
    expected = (torch.softmax(own, -1) + torch.softmax(head, -1)) / 2
    torch.testing.assert_close(evaluated.exp(), expected)
    # the paper's network (no measures) has one head and returns plain logits in training too
    plain = build_network(arch, width=0.125).train()
    assert plain.measures_head is None and torch.is_tensor(plain(**batch))
