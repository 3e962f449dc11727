"""Same weights, same clip: vfx vs the reference code for slowfast_r50, csn_r101, i3d_r50, i3d_nl_r50, videomae_b.

For each model the reference network is built by the reference code, every tensor of its state dict is
replaced by a deterministic one generated from the reference's own key name and shape, and the result is
saved in the reference's own container:
- pytorchvideo hub models (slowfast_r50, csn_r101, i3d_r50): `torch.save({"model_state": sd}, "X.pyth")`,
  what `torch.hub` downloads and `pytorchvideo.models.hub` reads (`checkpoint["model_state"]`);
- PySlowFast (i3d_nl_r50, configs/Kinetics/c2/I3D_NLN_8x8_R50.yaml): `{"epoch", "model_state",
  "optimizer_state", "cfg"}` as slowfast/utils/checkpoint.py `save_checkpoint` writes it;
- transformers (videomae_b): `save_pretrained` (model.safetensors + config.json; transformers 5 writes the
  files' own `q_bias` / `v_bias` names back), and the same tensors as `pytorch_model.bin`.
vfx loads that file with `create_model(name, weights=path)`; both run the same random clip, fp32, CPU,
eval mode. Printed: max |ours - ref| / max |ref| of the logits and of the features.

Reference features / logits (hooks, nothing in the reference code is changed):
- pytorchvideo: features = input of the head's `proj` (pool -> dropout, identity in eval), logits = model output;
- PySlowFast: features = `head.pathway0_avgpool` output, logits = `head.projection` output (the model
  returns the eval-mode softmax of it; that is compared too);
- transformers: features = `fc_norm` output, logits = `outputs.logits`.

The references are NOT dependencies of vfx and are not in this repository. Set them up outside it:
    python -m pip install --no-deps --target /work/refenv/site pytorchvideo fvcore iopath yacs tabulate \
        termcolor portalocker simplejson transformers huggingface_hub tokenizers regex safetensors ...
    a checkout of facebookresearch/SlowFast (only its python package is imported). `torchvision.ops.RoIAlign`
    (pytorchvideo) and `detectron2.layers.ROIAlign` (PySlowFast) are imported by their detection heads only;
    where those packages are absent they are stubbed with a class that refuses to be built.
and run:
    python scripts/parity_pytorchvideo_pyslowfast_hf.py --site /work/refenv/site --models slowfast_r50 csn_r101 \
        i3d_r50 videomae_b
    python scripts/parity_pytorchvideo_pyslowfast_hf.py --site /work/refenv/pytorchvideo-main --site /work/refenv/site \
        --slowfast /work/refenv/SlowFast --models i3d_nl_r50
PySlowFast's main branch imports pytorchvideo functions newer than the 0.1.5 release on PyPI
(`pytorchvideo.layers.distributed.cat_all_gather`): give it a pytorchvideo main checkout first.
Without them the script says what is missing for which model and skips it (exit 0). `--frames` also runs
each model at another clip length against a reference built for that length.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import tempfile
import time
import types
import zlib

import torch

import vfx.models

TABLE_FRAMES = {"slowfast_r50": 32, "csn_r101": 32, "i3d_r50": 8, "i3d_nl_r50": 8, "videomae_b": 16}
OTHER_FRAMES = {"slowfast_r50": 16, "csn_r101": 16, "i3d_r50": 16, "i3d_nl_r50": 16, "videomae_b": 8}


def deterministic_state(reference_sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A tensor per key from crc32(key): weights ~ N(0, 1/fan_in), norms near 1, biases and means small,
    variances in [0.5, 1.5]; integer counters kept. Scaled so that a 100-layer net stays finite."""
    out = {}
    for key, ref in reference_sd.items():
        if not ref.is_floating_point():
            out[key] = ref.clone()
            continue
        g = torch.Generator().manual_seed(zlib.crc32(key.encode()))
        n = torch.randn(ref.shape, generator=g, dtype=torch.float64)
        u = torch.rand(ref.shape, generator=g, dtype=torch.float64)
        leaf = key.rsplit(".", 1)[-1]
        if leaf == "running_var":
            t = 0.5 + u
        elif leaf == "running_mean" or leaf.endswith("bias"):
            t = 0.1 * n
        elif ref.dim() == 1:  # BN / LayerNorm weight
            t = 1.0 + 0.1 * n
        else:
            fan_in = ref[0].numel()
            t = n / fan_in**0.5
        out[key] = t.to(ref.dtype)
    return out


def rel(ours: torch.Tensor, ref: torch.Tensor) -> float:
    ours, ref = ours.double().flatten(1), ref.double().flatten(1)
    assert ours.shape == ref.shape, (ours.shape, ref.shape)
    return float((ours - ref).abs().max() / ref.abs().max())


class Capture:
    """Forward hook keeping the input or the output of a module."""

    def __init__(self, module: torch.nn.Module, what: str):
        self.value = None
        self.what = what
        module.register_forward_hook(self)

    def __call__(self, module, inputs, output):
        self.value = (inputs[0] if self.what == "input" else output).detach().clone()


# ---------------------------------------------------------------------------------------------- references


def pytorchvideo_model(name: str, frames: int):
    stub_module("torchvision.ops", "RoIAlign")  # pytorchvideo/models/head.py imports it for its detection head
    from pytorchvideo.models import hub

    if name == "slowfast_r50":
        return hub.slowfast_r50(pretrained=False, head_pool_kernel_sizes=((frames // 4, 7, 7), (frames, 7, 7)))
    if name == "csn_r101":
        if frames == 32:
            return hub.csn_r101(pretrained=False)
        # hub.csn_r101 fixes head_pool_kernel_size=(4, 7, 7); build it the same way for another length.
        from pytorchvideo.models.csn import create_csn

        return create_csn(model_depth=101, stem_pool=torch.nn.MaxPool3d, head_pool_kernel_size=(frames // 8, 7, 7))
    return hub.i3d_r50(pretrained=False, head_pool_kernel_size=(frames // 2, 7, 7))


def pyslowfast_model(slowfast_dir: str, frames: int):
    stub_module("detectron2.layers", "ROIAlign")  # head_helper.py imports it for its detection head
    sys.path.insert(0, slowfast_dir)
    # Import the model modules without slowfast/models/__init__.py, which pulls in MViT / contrastive models.
    pkg = types.ModuleType("slowfast.models")
    pkg.__path__ = [os.path.join(slowfast_dir, "slowfast", "models")]
    sys.modules["slowfast.models"] = pkg
    from slowfast.config.defaults import get_cfg

    vmb = importlib.import_module("slowfast.models.video_model_builder")
    cfg = get_cfg()
    cfg.merge_from_file(os.path.join(slowfast_dir, "configs", "Kinetics", "c2", "I3D_NLN_8x8_R50.yaml"))
    cfg.NUM_GPUS = 0
    cfg.DATA.NUM_FRAMES = frames
    return vmb.ResNet(cfg), cfg


def stub_module(dotted: str, attr: str) -> None:
    """Put `dotted.attr` in sys.modules (if the real package is absent) as a class that refuses to be built:
    only detection heads use these ROI-align ops, and the classification models never build one."""
    try:
        importlib.import_module(dotted)
        return
    except ImportError:
        pass

    class Unavailable:
        def __init__(self, *a, **k):
            raise RuntimeError(f"{dotted}.{attr} is a stub (detection heads are not compared)")

    parts = dotted.split(".")
    for i in range(1, len(parts) + 1):
        name = ".".join(parts[:i])
        if name not in sys.modules:
            mod = types.ModuleType(name)
            mod.__path__ = []
            sys.modules[name] = mod
            if i > 1:
                setattr(sys.modules[".".join(parts[: i - 1])], parts[i - 1], mod)
    setattr(sys.modules[dotted], attr, Unavailable)


def videomae_model(frames: int):
    from transformers import VideoMAEConfig, VideoMAEForVideoClassification

    # MCG-NJU/videomae-base-finetuned-kinetics config.json: the VideoMAEConfig defaults (ViT-B, 16 frames,
    # tubelet 2, qkv_bias, mean pooling) with 400 labels.
    config = VideoMAEConfig(num_frames=frames, num_labels=400, use_mean_pooling=True)
    return VideoMAEForVideoClassification(config).eval()


# ---------------------------------------------------------------------------------------------- one model


def run_one(name: str, frames: int, args, workdir: str) -> dict[str, float]:
    torch.manual_seed(0)
    x = torch.randn(1, 3, frames, 224, 224, generator=torch.Generator().manual_seed(frames))
    out: dict[str, float] = {}
    if name in ("slowfast_r50", "csn_r101", "i3d_r50"):
        ref = pytorchvideo_model(name, frames).eval()
        sd = deterministic_state(ref.state_dict())
        path = os.path.join(workdir, f"{name}.pyth")
        torch.save({"model_state": sd}, path)
        ref.load_state_dict(torch.load(path, map_location="cpu", weights_only=True)["model_state"])
        feats = Capture(ref.blocks[-1].proj, "input")
        if name == "slowfast_r50":
            # PackPathway of the pytorchvideo hub tutorial / PySlowFast: slow = linspace(0, T-1, T // 4).
            slow = torch.index_select(x, 2, torch.linspace(0, frames - 1, frames // 4).long())
            ref_in = [slow, x]
        else:
            ref_in = x
        t0 = time.perf_counter()
        with torch.no_grad():
            ref_logits = ref(ref_in)
        out["ref_s"] = time.perf_counter() - t0
        ref_feats = feats.value
        weights = path
    elif name == "i3d_nl_r50":
        ref, cfg = pyslowfast_model(args.slowfast, frames)
        ref.eval()
        sd = deterministic_state(ref.state_dict())
        path = os.path.join(workdir, "I3D_NLN_8x8_R50.pyth")
        optimizer = torch.optim.SGD(ref.parameters(), lr=0.1, momentum=0.9)
        torch.save({"epoch": 196, "model_state": sd, "optimizer_state": optimizer.state_dict(), "cfg": cfg.dump()}, path)
        ref.load_state_dict(torch.load(path, map_location="cpu", weights_only=True)["model_state"])
        feats = Capture(ref.head.pathway0_avgpool, "output")
        logits = Capture(ref.head.projection, "output")
        t0 = time.perf_counter()
        with torch.no_grad():
            ref_soft = ref([x])
        out["ref_s"] = time.perf_counter() - t0
        ref_feats, ref_logits = feats.value, logits.value
        weights = path
    else:
        ref = videomae_model(frames)
        sd = deterministic_state(ref.state_dict())
        ref.load_state_dict(sd)
        hub_dir = os.path.join(workdir, f"videomae_{frames}")
        ref.save_pretrained(hub_dir)  # model.safetensors + config.json, the Hub layout
        from transformers import VideoMAEForVideoClassification

        ref = VideoMAEForVideoClassification.from_pretrained(hub_dir).eval()
        feats = Capture(ref.fc_norm, "output")
        t0 = time.perf_counter()
        with torch.no_grad():
            ref_logits = ref(pixel_values=x.permute(0, 2, 1, 3, 4)).logits  # HF takes [B, T, C, H, W]
        out["ref_s"] = time.perf_counter() - t0
        ref_feats = feats.value
        weights = os.path.join(hub_dir, "model.safetensors")
        # pytorch_model.bin: the same state dict as a pickled dict of tensors (transformers 5 writes only
        # safetensors; the Hub's older .bin files hold exactly these keys).
        from safetensors.torch import load_file

        bin_dir = os.path.join(workdir, f"videomae_bin_{frames}")
        os.makedirs(bin_dir)
        torch.save(load_file(weights), os.path.join(bin_dir, "pytorch_model.bin"))
        out["bin_file"] = os.path.join(bin_dir, "pytorch_model.bin")

    ours = vfx.models.create_model(name, weights=weights, num_frames=frames)
    t0 = time.perf_counter()
    with torch.no_grad():
        logits = ours(x)
        features = ours.forward_features(x)
    out["ours_s"] = (time.perf_counter() - t0) / 2
    out["logits"] = rel(logits, ref_logits)
    out["features"] = rel(features, ref_feats)
    if name == "i3d_nl_r50":
        out["softmax"] = rel(torch.softmax(logits, 1), ref_soft)
    if name == "videomae_b":
        bin_model = vfx.models.create_model(name, weights=out.pop("bin_file"), num_frames=frames)
        with torch.no_grad():
            out["logits_bin"] = rel(bin_model(x), ref_logits)
    return out


def missing(name: str, args) -> str | None:
    need = {"slowfast_r50": "pytorchvideo", "csn_r101": "pytorchvideo", "i3d_r50": "pytorchvideo",
            "i3d_nl_r50": "fvcore", "videomae_b": "transformers"}[name]  # fmt: skip
    try:
        importlib.import_module(need)
    except ImportError as exc:
        return f"{need} is not importable ({exc})"
    if name == "i3d_nl_r50" and not (args.slowfast and os.path.isdir(os.path.join(args.slowfast, "slowfast"))):
        return "no SlowFast checkout (--slowfast DIR with slowfast/ and configs/)"
    return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--site", action="append", default=[],
                    help="directory with reference packages, prepended to sys.path (repeatable, first wins)")
    ap.add_argument("--slowfast", help="facebookresearch/SlowFast checkout (for i3d_nl_r50)")
    ap.add_argument("--models", nargs="*", default=list(TABLE_FRAMES))
    ap.add_argument("--frames", action="store_true", help="also run each model at another clip length")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    sys.path[:0] = args.site
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, load {os.getloadavg()[0]:.1f}")
    print(f"{'model':<13} {'input':<16} {'logits':>9} {'features':>9}  other")
    with tempfile.TemporaryDirectory() as workdir:
        for name in args.models:
            why = missing(name, args)
            if why:
                print(f"{name:<13} skipped: {why}")
                continue
            lengths = [TABLE_FRAMES[name]] + ([OTHER_FRAMES[name]] if args.frames else [])
            for frames in lengths:
                r = run_one(name, frames, args, workdir)
                other = ", ".join(f"{k} {v:.1e}" for k, v in r.items() if k not in ("logits", "features", "ref_s", "ours_s"))
                print(f"{name:<13} 1x3x{frames}x224^2{'':<3} {r['logits']:9.1e} {r['features']:9.1e}  {other}"
                      f"  (ref {r['ref_s']:.1f} s, vfx {r['ours_s']:.1f} s)", flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
