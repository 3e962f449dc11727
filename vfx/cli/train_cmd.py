"""`vfx train-fusion` and `vfx evaluate`: two-stream fusion training on stores, and held-out metrics."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from vfx import api
from vfx.cli.app import app, handle_errors
from vfx.train.params import OPTION_DEFAULTS as D


def _opt(*flags: str, help: str, default=None):
    """An option whose help says the library's default (None when the library has no single default)."""
    return typer.Option(*flags, help=help if default is None else f"{help} (default {default})")


@app.command("train-fusion")
@handle_errors
def train_fusion_cmd(
    output: Annotated[Path, typer.Option("--output", "-o", help="Run directory: checkpoints, metrics, confusion.png.")],
    recipe: Annotated[Optional[str], typer.Option("--recipe", help="Recipe name (recipes/NAME.toml, its [train-fusion] table) or path; flags override it.")] = None,
    frames: Annotated[Optional[Path], _opt("--frames", help="Frames store (the rgb stream).")] = None,
    flow: Annotated[Optional[Path], _opt("--flow", help="Flow store (the flow stream).")] = None,
    features: Annotated[Optional[list[Path]], _opt("--features", help="Feature store, once per stream in --streams order (feature mode).")] = None,
    feature_maps: Annotated[Optional[bool], _opt("--feature-maps", help="Feature mode: use the stored spatial maps (vfx features --keep-spatial).")] = None,
    streams: Annotated[Optional[str], _opt("--streams", help="rgb, flow or rgb,flow", default=D["streams"])] = None,
    fusion: Annotated[Optional[str], _opt("--fusion", help="sum, max, concat, conv, bilinear or late", default=D["fusion"])] = None,
    temporal_fusion: Annotated[Optional[str], _opt("--temporal-fusion", help="avg, pool3d or conv3d", default=D["temporal_fusion"])] = None,
    arch: Annotated[Optional[str], _opt("--arch", help="resnet18 or resnet50", default=D["arch"])] = None,
    width: Annotated[Optional[int], _opt("--width", help="ResNet base width (64 = standard)", default=D["width"])] = None,
    segments: Annotated[Optional[int], _opt("--segments", help="K segments per video (TSN)", default=D["segments"])] = None,
    flow_length: Annotated[Optional[int], _opt("--flow-length", help="L flow fields per stack (2L channels)", default=D["flow_length"])] = None,
    crop_size: Annotated[Optional[int], _opt("--crop-size", help="Network input side in pixels", default=D["crop_size"])] = None,
    dropout: Annotated[Optional[float], _opt("--dropout", help="Dropout before the classifier", default=D["dropout"])] = None,
    epochs: Annotated[Optional[int], _opt("--epochs", help="Epochs", default=D["epochs"])] = None,
    epoch_repeats: Annotated[Optional[int], _opt("--epoch-repeats", help="Passes over the training videos per epoch (new segments each)", default=D["epoch_repeats"])] = None,
    batch_size: Annotated[Optional[int], _opt("--batch-size", help="Videos per batch", default=D["batch_size"])] = None,
    optimizer: Annotated[Optional[str], _opt("--optimizer", help="sgd or adamw", default=D["optimizer"])] = None,
    lr: Annotated[Optional[float], _opt("--lr", help="Peak learning rate", default=D["lr"])] = None,
    momentum: Annotated[Optional[float], _opt("--momentum", help="SGD momentum", default=D["momentum"])] = None,
    weight_decay: Annotated[Optional[float], _opt("--weight-decay", help="Weight decay", default=D["weight_decay"])] = None,
    schedule: Annotated[Optional[str], _opt("--schedule", help="cosine, step or constant", default=D["schedule"])] = None,
    warmup_epochs: Annotated[Optional[float], _opt("--warmup-epochs", help="Epochs of linear warm-up", default=D["warmup_epochs"])] = None,
    step_epochs: Annotated[Optional[str], _opt("--step-epochs", help="Epochs where 'step' divides the rate by 10, e.g. 30,60.")] = None,
    grad_clip: Annotated[Optional[float], _opt("--grad-clip", help="Max gradient norm; 0 disables", default=D["grad_clip"])] = None,
    seed: Annotated[Optional[int], _opt("--seed", help="Seed of initialisation, sampling and augmentation", default=D["seed"])] = None,
    workers: Annotated[Optional[int], _opt("--workers", help="DataLoader worker processes", default=D["workers"])] = None,
    device: Annotated[Optional[str], _opt("--device", help="cpu, cuda or auto (cuda when present)", default=D["device"])] = None,
    threads: Annotated[Optional[int], _opt("--threads", help="Torch CPU threads (default: torch's choice; 1 is fastest on a busy machine).")] = None,
    val_fraction: Annotated[Optional[float], _opt("--val-fraction", help="Hold out this fraction of each class instead of the stores' split.")] = None,
    split_seed: Annotated[Optional[int], _opt("--split-seed", help="Seed of the --val-fraction split", default=D["split_seed"])] = None,
    flip: Annotated[Optional[bool], _opt("--flip/--no-flip", help="Random horizontal flips (flow x negated); default on.")] = None,
    flip_label_map: Annotated[Optional[str], _opt("--flip-label-map", help="Classes a flip turns into each other: 'A=B;C=D' (swapped on flipped samples; the ssv2 recipe sets them).")] = None,
    rgb_weights: Annotated[Optional[Path], _opt("--rgb-weights", help="RGB ResNet weights (torchvision names) for both backbones.")] = None,
    init_from: Annotated[Optional[list[Path]], _opt("--init-from", help="Start from the backbones of earlier runs (RUN/last.pt), e.g. the single-stream ones.")] = None,
    eval_every: Annotated[Optional[int], _opt("--eval-every", help="Epochs between held-out evaluations (0: last only)", default=D["eval_every"])] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in --output from its last checkpoint.")] = False,
    metrics_json: Annotated[Optional[Path], typer.Option("--metrics-json", help="Write the final held-out metrics here.")] = None,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show progress bars.")] = True,
) -> None:
    """Train a two-stream fusion network (Feichtenhofer et al., CVPR 2016) on frames/flow or feature stores."""
    arguments = locals()
    from vfx.train.metrics import format_metrics

    try:
        result = api.train_fusion(**arguments, log=typer.echo)
    except KeyboardInterrupt:
        typer.echo(f"interrupted; continue with the same command and --resume ({output})", err=True)
        raise typer.Exit(130) from None
    typer.echo(format_metrics(result.metrics))
    typer.echo(f"run saved in {output} (last.pt, best.pt: best held-out top-1, metrics.json, confusion.png)")


@app.command("evaluate")
@handle_errors
def evaluate_cmd(
    checkpoint: Annotated[Path, typer.Argument(help="A train-fusion checkpoint (RUN_DIR/last.pt).")],
    frames: Annotated[Optional[Path], typer.Option("--frames", help="Frames store (default: the one trained on).")] = None,
    flow: Annotated[Optional[Path], typer.Option("--flow", help="Flow store (default: the one trained on).")] = None,
    features: Annotated[Optional[list[Path]], typer.Option("--features", help="Feature stores (feature mode).")] = None,
    metrics_json: Annotated[Optional[Path], typer.Option("--metrics-json", help="Also write the metrics as JSON.")] = None,
    device: Annotated[Optional[str], typer.Option("--device", help="cpu, cuda or auto (default: the run's).")] = None,
    progress: Annotated[bool, typer.Option("--progress/--no-progress")] = True,
) -> None:
    """Print the held-out metrics of a trained fusion model."""
    from vfx.train.loop import evaluate_checkpoint
    from vfx.train.metrics import format_metrics

    metrics = evaluate_checkpoint(
        checkpoint,
        frames=str(frames) if frames else None,
        flow=str(flow) if flow else None,
        features=tuple(str(p) for p in features or ()),
        progress=progress,
        device=device,
    )
    typer.echo(format_metrics(metrics))
    if metrics_json is not None:
        metrics_json.write_text(json.dumps(metrics, indent=1, sort_keys=True))
