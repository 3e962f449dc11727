"""`vfx train-fusion` and `vfx evaluate`: two-stream fusion training on stores, and held-out metrics."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from vfx.cli.app import app, handle_errors
from vfx.errors import UsageError


def _streams(text: str) -> tuple[str, ...]:
    return tuple(s.strip() for s in text.split(",") if s.strip())


def _ints(text: str | None) -> tuple[int, ...]:
    if not text:
        return ()
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise UsageError(f"--step-epochs {text!r} is not a comma-separated list of epochs") from None


@app.command("train-fusion")
@handle_errors
def train_fusion_cmd(
    output: Annotated[Path, typer.Option("--output", "-o", help="Run directory: checkpoints, metrics, confusion.png.")],
    frames: Annotated[Optional[Path], typer.Option("--frames", help="Frames store (the rgb stream).")] = None,
    flow: Annotated[Optional[Path], typer.Option("--flow", help="Flow store (the flow stream).")] = None,
    features: Annotated[
        Optional[list[Path]],
        typer.Option("--features", help="Feature store, once per stream in --streams order (feature mode)."),
    ] = None,
    feature_maps: Annotated[
        bool, typer.Option("--feature-maps", help="Feature mode: use the stored spatial maps (vfx features --keep-spatial).")
    ] = False,
    streams: Annotated[str, typer.Option("--streams", help="rgb, flow or rgb,flow.")] = "rgb,flow",
    fusion: Annotated[str, typer.Option("--fusion", help="sum, max, concat, conv, bilinear or late.")] = "conv",
    temporal_fusion: Annotated[str, typer.Option("--temporal-fusion", help="avg, pool3d or conv3d.")] = "avg",
    arch: Annotated[str, typer.Option("--arch", help="resnet18 or resnet50.")] = "resnet18",
    width: Annotated[int, typer.Option("--width", help="ResNet base width (64 = standard).")] = 64,
    segments: Annotated[int, typer.Option("--segments", help="K segments per video (TSN).")] = 3,
    flow_length: Annotated[int, typer.Option("--flow-length", help="L flow fields per stack (2L channels).")] = 5,
    crop_size: Annotated[int, typer.Option("--crop-size", help="Network input side in pixels.")] = 112,
    dropout: Annotated[float, typer.Option("--dropout", help="Dropout before the classifier.")] = 0.5,
    epochs: Annotated[int, typer.Option("--epochs")] = 10,
    epoch_repeats: Annotated[
        int, typer.Option("--epoch-repeats", help="Passes over the training videos per epoch (new segments each).")
    ] = 1,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Videos per batch.")] = 8,
    optimizer: Annotated[str, typer.Option("--optimizer", help="sgd or adamw.")] = "sgd",
    lr: Annotated[float, typer.Option("--lr", help="Peak learning rate.")] = 0.01,
    momentum: Annotated[float, typer.Option("--momentum", help="SGD momentum.")] = 0.9,
    weight_decay: Annotated[float, typer.Option("--weight-decay")] = 5e-4,
    schedule: Annotated[str, typer.Option("--schedule", help="cosine, step or constant.")] = "cosine",
    warmup_epochs: Annotated[float, typer.Option("--warmup-epochs")] = 0.0,
    step_epochs: Annotated[Optional[str], typer.Option("--step-epochs", help="Epochs where 'step' divides the rate by 10, e.g. 30,60.")] = None,
    grad_clip: Annotated[float, typer.Option("--grad-clip", help="Max gradient norm; 0 disables.")] = 20.0,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    workers: Annotated[int, typer.Option("--workers", help="DataLoader worker processes.")] = 0,
    device: Annotated[str, typer.Option("--device", help="cpu, cuda or auto (cuda when present).")] = "cpu",
    threads: Annotated[
        Optional[int], typer.Option("--threads", help="Torch CPU threads (default: torch's choice; 1 is fastest on a busy machine).")
    ] = None,
    val_fraction: Annotated[
        Optional[float], typer.Option("--val-fraction", help="Hold out this fraction of each class instead of the stores' split.")
    ] = None,
    split_seed: Annotated[int, typer.Option("--split-seed", help="Seed of the --val-fraction split.")] = 0,
    flip: Annotated[bool, typer.Option("--flip/--no-flip", help="Random horizontal flips (flow x negated).")] = True,
    flip_label_map: Annotated[
        Optional[str],
        typer.Option("--flip-label-map", help="Classes a flip turns into each other: 'A=B;C=D' (swapped on flipped samples)."),
    ] = None,
    recipe: Annotated[
        Optional[str], typer.Option("--recipe", help="Recipe whose [train-fusion] table sets flip_label_map (e.g. ssv2).")
    ] = None,
    rgb_weights: Annotated[
        Optional[Path], typer.Option("--rgb-weights", help="RGB ResNet weights (torchvision names) for both backbones.")
    ] = None,
    init_from: Annotated[
        Optional[list[Path]],
        typer.Option("--init-from", help="Start from the backbones of earlier runs (RUN/last.pt), e.g. the single-stream ones."),
    ] = None,
    eval_every: Annotated[int, typer.Option("--eval-every", help="Epochs between held-out evaluations (0: last only).")] = 1,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in --output from its last checkpoint.")] = False,
    metrics_json: Annotated[Optional[Path], typer.Option("--metrics-json", help="Write the final held-out metrics here.")] = None,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show progress bars.")] = True,
) -> None:
    """Train a two-stream fusion network (Feichtenhofer et al., CVPR 2016) on frames/flow or feature stores."""
    from vfx.train.data import DataConfig
    from vfx.train.loop import train_fusion
    from vfx.train.metrics import format_metrics
    from vfx.train.model import ModelConfig
    from vfx.train.params import TrainParams

    from vfx.recipes import load_recipe
    from vfx.train.labels import parse_flip_label_map

    pairs = parse_flip_label_map(flip_label_map)
    if recipe:
        table = load_recipe(recipe, "train-fusion")
        unknown = sorted(set(table) - {"flip_label_map"})
        if unknown:
            raise UsageError(f"recipe {recipe}: train-fusion reads only flip_label_map from a recipe, not {', '.join(unknown)}")
        if not pairs:
            pairs = tuple(tuple(p) for p in table.get("flip_label_map", ()))
    stream_names = _streams(streams)
    model = ModelConfig(
        streams=stream_names,
        fusion=fusion,
        temporal_fusion=temporal_fusion,
        arch=arch,
        width=width,
        num_segments=segments,
        flow_length=flow_length,
        dropout=dropout,
    )
    data = DataConfig(
        num_segments=segments,
        flow_length=flow_length,
        crop_size=crop_size,
        flip=flip,
        flip_label_map=pairs,
        val_fraction=val_fraction,
        split_seed=split_seed,
        feature_key="spatial" if feature_maps else "features",
    )
    if not features and frames is None and flow is None:
        raise UsageError("give --frames and/or --flow stores, or --features stores")
    params = TrainParams(
        model=model,
        data=data,
        frames=str(frames) if frames else None,
        flow=str(flow) if flow else None,
        features=tuple(str(p) for p in features or ()),
        rgb_weights=str(rgb_weights) if rgb_weights else None,
        init_from=tuple(str(p) for p in init_from or ()),
        epochs=epochs,
        epoch_repeats=epoch_repeats,
        batch_size=batch_size,
        optimizer=optimizer,
        lr=lr,
        momentum=momentum,
        weight_decay=weight_decay,
        schedule=schedule,
        warmup_epochs=warmup_epochs,
        step_epochs=_ints(step_epochs),
        grad_clip=grad_clip if grad_clip > 0 else None,
        seed=seed,
        num_workers=workers,
        threads=threads,
        device=device,
        eval_every=eval_every,
    )
    try:
        result = train_fusion(
            params, output, resume=resume, progress=progress, metrics_json=metrics_json, log=typer.echo
        )
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
