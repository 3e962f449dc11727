"""Same weights, same clip: vfx's backbones against their reference code, fp32 on CPU.

For each model, deterministic random tensors are generated for every key of the REFERENCE model's own
state dict (BN statistics included), saved in the reference's own checkpoint container, loaded into the
reference the reference's way and into vfx through `create_model(name, weights=path)`; both run on the
same random clip at the model's default input. Printed: max relative difference
`max|vfx - ref| / max|ref|` of the logits and of the features. Target: <= 1e-5.

The reference code is not part of vfx and is never imported by it. Run this where it is installed:

    python3 -m venv /tmp/refenv && /tmp/refenv/bin/pip install torch torchvision   # torchvision 0.29.1 was used
    /tmp/refenv/bin/pip install -e .  (or PYTHONPATH=.)                            # vfx itself
    git clone https://github.com/moabitcoin/ig65m-pytorch /tmp/ig65m
    git clone https://github.com/xhl-video/SmallBigNet /tmp/smallbignet
    VFX_REF_IG65M=/tmp/ig65m VFX_REF_SMALLBIGNET=/tmp/smallbignet /tmp/refenv/bin/python scripts/parity_models.py

A model whose reference is missing is reported as skipped with the reason, and the script exits 0 only if
every model that ran is within the target. Models: r3d_18, mc3_18, r2plus1d_18, s3d (torchvision),
r2plus1d_34 (ig65m models.py, which itself builds on torchvision), tsn_r50 (torchvision resnet50 per
segment with the avg consensus; both a torchvision state dict and the same weights renamed to an mmaction2
TSN checkpoint, `{"meta", "state_dict"}` with mmcv ConvModule names, the renaming mmaction2's
`ResNet._load_torchvision_checkpoint` undoes), smallbignet_r50 (SmallBigNet models/SmallBig.py
`smallbig50_no_extra`, t_length 8, `{"epoch", "state_dict": {"module.*"}, ...}` as its main.py saves).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import tempfile

import torch

TARGET = 1e-5


def fill_deterministic(state: dict[str, torch.Tensor], seed: int = 0) -> dict[str, torch.Tensor]:
    """Random tensors with the names and shapes of `state`, scaled so that activations stay O(1)."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for key in sorted(state):
        ref = state[key]
        if not ref.is_floating_point():
            out[key] = ref.clone()  # num_batches_tracked
            continue
        shape = ref.shape
        if key.endswith("running_var"):
            t = torch.rand(shape, generator=g) + 0.5
        elif key.endswith("running_mean") or key.endswith("bias"):
            t = torch.randn(shape, generator=g) * 0.1
        elif ref.dim() == 1:  # BN weight
            t = torch.rand(shape, generator=g) + 0.5
        else:  # conv / linear weight: He-normal on the fan-in
            fan_in = ref[0].numel()
            t = torch.randn(shape, generator=g) * (2.0 / fan_in) ** 0.5
        out[key] = t
    return out


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


def run_vfx(name: str, weights: str, x: torch.Tensor, **kw) -> tuple[torch.Tensor, torch.Tensor]:
    import vfx.models as M

    model = M.create_model(name, weights=weights, **kw)
    with torch.no_grad():
        return model(x), model.forward_features(x)


def clip(spec_name: str, **kw) -> torch.Tensor:
    import vfx.models as M

    spec = M.input_spec(spec_name, **kw)
    g = torch.Generator().manual_seed(1)
    return torch.randn(2, spec.channels, spec.num_frames, spec.size, spec.size, generator=g)


def save(obj, tmp: str, name: str) -> str:
    path = os.path.join(tmp, name)
    torch.save(obj, path)
    return path


# --- references -------------------------------------------------------------------------------------


def ref_torchvision_video(name: str, tmp: str):
    tv = importlib.import_module("torchvision.models.video")
    ref = getattr(tv, name)(num_classes=400).eval()
    sd = fill_deterministic(ref.state_dict())
    path = save(sd, tmp, f"{name}.pth")  # torchvision's weights files are plain state dicts
    ref.load_state_dict(torch.load(path, weights_only=True))
    x = clip(name)
    feats = {}
    pool = ref.avgpool
    pool.register_forward_hook(lambda m, i, o: feats.__setitem__("f", o))
    with torch.no_grad():
        logits = ref(x)
    f = feats["f"]
    # VideoResNet: avgpool output [B, 512, 1, 1, 1] is what fc takes; S3D: the (2, 7, 7) pool's output, which
    # its classifier takes, averaged over the time and space it has left.
    return path, x, logits, f.mean(dim=(2, 3, 4)), {}


def ref_ig65m(tmp: str):
    root = os.environ.get("VFX_REF_IG65M")
    if not root or not os.path.isdir(root):
        raise LookupError("set VFX_REF_IG65M to a checkout of moabitcoin/ig65m-pytorch")
    sys.path.insert(0, root)
    try:
        models = importlib.import_module("ig65m.models")
    finally:
        sys.path.pop(0)
    ref = models.r2plus1d_34(num_classes=400).eval()
    sd = fill_deterministic(ref.state_dict())
    path = save(sd, tmp, "r2plus1d_34_32.pth")  # the release files are plain state dicts
    ref.load_state_dict(torch.load(path, weights_only=True))
    x = clip("r2plus1d_34")
    with torch.no_grad():
        logits = ref(x)
        # ig65m cli/extract.py VideoModel: stem, layer1..4, mean over space then time.
        m = ref.layer4(ref.layer3(ref.layer2(ref.layer1(ref.stem(x)))))
        feats = m.mean(dim=(3, 4)).mean(dim=2)
    return path, x, logits, feats, {}


def tv_to_mmaction(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """torchvision resnet keys -> mmaction2 TSN keys: the inverse of `ResNet._load_torchvision_checkpoint`
    (`layerX.Y.convN` <- `.convN.conv`, `layerX.Y.bnN` <- `.convN.bn`, `downsample.0/.1` <- `.conv/.bn`)."""
    import re

    out = {}
    for k, v in sd.items():
        if k.startswith("fc."):
            out["cls_head.fc_cls." + k[3:]] = v
            continue
        k2 = k.replace("downsample.0.", "downsample.conv.").replace("downsample.1.", "downsample.bn.")
        k2 = re.sub(r"(^|\.)conv(\d)\.", r"\1conv\2.conv.", k2)
        k2 = re.sub(r"(^|\.)bn(\d)\.", r"\1conv\2.bn.", k2)
        out["backbone." + k2] = v
    return out


def ref_tsn(tmp: str):
    tvm = importlib.import_module("torchvision.models")
    ref = tvm.resnet50(num_classes=400).eval()
    sd = fill_deterministic(ref.state_dict())
    path_tv = save(sd, tmp, "resnet50.pth")
    ref.load_state_dict(torch.load(path_tv, weights_only=True))
    mm = tv_to_mmaction(sd)
    path_mm = save({"meta": {"mmaction2_version": "1.2.0", "epoch": 100}, "state_dict": mm}, tmp, "tsn_mmaction2.pth")
    x = clip("tsn_r50", num_segments=8)  # 8 segments (the 1x1x8 config) keep the run short; 25 is the default
    b, c, t, h, w = x.shape
    frames = x.transpose(1, 2).reshape(b * t, c, h, w)
    feats = {}
    ref.avgpool.register_forward_hook(lambda m, i, o: feats.__setitem__("f", o))
    with torch.no_grad():
        per_frame_logits = ref(frames)
    # TSNHead: spatial avg pool, AvgConsensus over segments, (dropout), fc_cls.
    f = feats["f"].flatten(1).view(b, t, -1).mean(dim=1)
    logits = per_frame_logits.view(b, t, -1).mean(dim=1)
    return path_tv, x, logits, f, {"num_segments": 8, "_extra": [("mmaction2 container", path_mm)]}


def ref_smallbig(tmp: str):
    root = os.environ.get("VFX_REF_SMALLBIGNET")
    if not root or not os.path.isdir(root):
        raise LookupError("set VFX_REF_SMALLBIGNET to a checkout of xhl-video/SmallBigNet")
    sys.path.insert(0, root)
    try:
        sb = importlib.import_module("models.SmallBig")
        blocks = importlib.import_module("models.blocks")
    finally:
        sys.path.pop(0)
    kind = [blocks.Bottleneck3D_000, blocks.SmallBig_module, blocks.SmallBig_module, blocks.SmallBig_module]
    # smallbig50_no_extra(args) with --num_classes 400 --t_length 8, not --test, not --imagenet.
    ref = sb.SmallBigNet(False, kind, [3, 4, 6, 3], False, num_classes=400, feat=False, t_length=8).eval()
    sd = fill_deterministic(ref.state_dict())
    container = {"epoch": 100, "state_dict": {"module." + k: v for k, v in sd.items()}, "best_metric": 0.5,
                 "optimizer": {"state": {}, "param_groups": []}}  # fmt: skip
    path = save(container, tmp, "smallbig50_no_extra.pth")
    loaded = torch.load(path, weights_only=True)["state_dict"]
    ref.load_state_dict({k[len("module."):]: v for k, v in loaded.items()})
    x = clip("smallbignet_r50")
    feats = {}
    ref.avgpool.register_forward_hook(lambda m, i, o: feats.__setitem__("f", o))
    with torch.no_grad():
        logits = ref(x)
    return path, x, logits, feats["f"].flatten(1), {}


REFERENCES = {
    "r3d_18": lambda tmp: ref_torchvision_video("r3d_18", tmp),
    "mc3_18": lambda tmp: ref_torchvision_video("mc3_18", tmp),
    "r2plus1d_18": lambda tmp: ref_torchvision_video("r2plus1d_18", tmp),
    "s3d": lambda tmp: ref_torchvision_video("s3d", tmp),
    "r2plus1d_34": ref_ig65m,
    "tsn_r50": ref_tsn,
    "smallbignet_r50": ref_smallbig,
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=list(REFERENCES), choices=list(REFERENCES))
    args = ap.parse_args()
    torch.set_grad_enabled(False)
    import vfx.models  # noqa: F401 - fail early if vfx is not importable

    versions = []
    for mod in ("torch", "torchvision"):
        try:
            versions.append(f"{mod} {importlib.import_module(mod).__version__}")
        except ImportError:
            versions.append(f"{mod} missing")
    print(", ".join(versions) + ", fp32, CPU; max|vfx - ref| / max|ref|, target <= 1e-5")
    print(f"{'model':<16} {'input':<18} {'checkpoint':<22} {'logits':>9} {'features':>9}")
    worst = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            try:
                path, x, logits, feats, kw = REFERENCES[name](tmp)
            except (ImportError, LookupError) as exc:
                print(f"{name:<16} skipped: {exc}")
                continue
            extra = kw.pop("_extra", [])
            shape = "x".join(map(str, x.shape))
            for label, p in [("reference's own", path), *extra]:
                ours_logits, ours_feats = run_vfx(name, p, x, **kw)
                dl, df = rel(ours_logits, logits), rel(ours_feats, feats)
                worst = max(worst, dl, df)
                print(f"{name:<16} {shape:<18} {label:<22} {dl:>9.2e} {df:>9.2e}")
    print(f"worst {worst:.2e}: {'within' if worst <= TARGET else 'ABOVE'} the 1e-5 target")
    return 0 if worst <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
