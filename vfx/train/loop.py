"""The training loop: optimiser and schedule, checkpoints and resume, held-out evaluation, outputs.

A run directory holds `last.pt` (after every epoch: model, optimiser, epoch, all parameters, class names,
history), `best.pt` (the same, from the evaluated epoch with the best held-out top-1), `params.json`, `metrics.json` (per-epoch history and the final held-out metrics) and
`confusion.png`. Determinism on CPU: every epoch reseeds the global torch generator (dropout) and the
DataLoader's shuffling generator from (seed, epoch), and the datasets derive their augmentation from
(seed, epoch, video), so an epoch's computation does not depend on what ran before it in the same process:
a run resumed from the checkpoint of epoch e continues exactly as the uninterrupted run did.
"""

from __future__ import annotations

import io
import json
import math
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from vfx.device import resolve_device
from vfx.errors import CheckpointError, UsageError
from vfx.models.checkpoint import check_and_load
from vfx.store.layout import write_json_atomic
from vfx.train.data import Datasets, build_feature_datasets, build_video_datasets
from vfx.train.fusion import loss as fusion_loss
from vfx.train.fusion import scores as fusion_scores
from vfx.train.metrics import classification_metrics, write_confusion_png
from vfx.train.model import TwoStreamNet, count_parameters, load_rgb_weights
from vfx.train.params import TrainParams, differences

CHECKPOINT = "last.pt"
#: The checkpoint of the epoch with the best held-out top-1 so far (written when an evaluation improves it).
BEST_CHECKPOINT = "best.pt"


@dataclass
class TrainState:
    """What a callback sees after every optimiser step."""

    epoch: int
    step_in_epoch: int
    global_step: int
    loss: float


@dataclass
class TrainResult:
    run_dir: Path
    metrics: dict
    history: list[dict]
    num_parameters: int
    classes: tuple[str, ...]
    model: TwoStreamNet


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    # warn_only: a CPU op without a deterministic variant warns instead of stopping the run.
    torch.use_deterministic_algorithms(True, warn_only=True)


def _epoch_seed(seed: int, epoch: int) -> int:
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0])


def _worker_init(worker_id: int) -> None:
    s = torch.initial_seed() % 2**32
    np.random.seed(s)
    random.seed(s)


def build_datasets(params: TrainParams) -> Datasets:
    streams = params.model.streams
    if params.features:
        return build_feature_datasets(list(params.features), streams, params.data, params.seed)
    return build_video_datasets(params.frames, params.flow, streams, params.data, params.seed)


def build_model(params: TrainParams, datasets: Datasets, initialise: bool = True) -> tuple[TwoStreamNet, TrainParams]:
    """The model for these datasets; in feature mode the parameters gain the stores' feature sizes.

    `initialise`: load `rgb_weights` and `init_from` (skipped when a checkpoint will overwrite everything)."""
    if params.features:
        channels = tuple(sorted(datasets.feature_channels.items()))
        params = replace(params, model=replace(params.model, feature_channels=channels))
    torch.manual_seed(params.seed)
    model = TwoStreamNet(params.model, len(datasets.classes))
    if initialise and params.rgb_weights:
        load_rgb_weights(model, params.rgb_weights)
    if initialise and params.init_from:
        init_from_runs(model, params.init_from, datasets.classes)
    return model, params


def init_from_runs(model: TwoStreamNet, checkpoints, classes) -> dict[str, str]:
    """Copy backbones (and matching per-stream classifiers) from earlier runs' checkpoints.

    For each stream the first checkpoint that has its backbone wins, loaded strictly. A per-stream classifier
    (late fusion, single streams) is copied only when it has exactly this model's layers and shapes (same
    temporal fusion); otherwise it keeps its fresh initialisation. Returns {module: checkpoint} of what was
    loaded; a checkpoint that contributes nothing, or was trained on other classes, is an error.
    """
    loaded: dict[str, str] = {}
    targets = {f"backbones.{s}.": m for s, m in model.backbones.items()}
    for name, module in model.head.temporal.items():
        if name != "fused":
            targets[f"head.temporal.{name}."] = module
    for path in checkpoints:
        state = load_checkpoint(path)
        if state["classes"] != tuple(classes):
            raise UsageError(f"{path}: trained on classes {list(state['classes'])}, the stores hold {list(classes)}")
        used = False
        for prefix, module in targets.items():
            if prefix in loaded:
                continue
            sub = {k[len(prefix):]: v for k, v in state["model"].items() if k.startswith(prefix)}
            if prefix.startswith("head.") and not _same_layout(module, sub):
                continue
            if sub:
                check_and_load(module, sub, f"{path} ({prefix.rstrip('.')})")
                loaded[prefix] = str(path)
                used = True
        if not used:
            raise UsageError(f"{path}: has no backbone or classifier this model can take (streams {list(model.cfg.streams)})")
    return {k.rstrip("."): v for k, v in loaded.items()}


def _same_layout(module: torch.nn.Module, state: dict) -> bool:
    own = module.state_dict()
    return set(own) == set(state) and all(own[k].shape == state[k].shape for k in own)


def make_optimizer(params: TrainParams, model: torch.nn.Module) -> torch.optim.Optimizer:
    # No weight decay on biases and BatchNorm parameters (1-D tensors), the usual ResNet practice.
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": params.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if params.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=params.lr, momentum=params.momentum)
    return torch.optim.AdamW(groups, lr=params.lr)


def learning_rate(params: TrainParams, step: int, steps_per_epoch: int) -> float:
    """The rate at a global step: linear warm-up, then cosine decay to 0, steps of 0.1, or constant."""
    total = params.epochs * steps_per_epoch
    warm = int(round(params.warmup_epochs * steps_per_epoch))
    if step < warm:
        return params.lr * (step + 1) / warm
    if params.schedule == "cosine":
        progress = (step - warm) / max(1, total - warm)
        return params.lr * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
    if params.schedule == "step":
        epoch = step // steps_per_epoch
        return params.lr * 0.1 ** sum(1 for e in params.step_epochs if epoch >= e)
    return params.lr


def _loader(dataset, params: TrainParams, *, shuffle: bool, epoch: int) -> DataLoader:
    generator = torch.Generator()
    generator.manual_seed(_epoch_seed(params.seed, epoch))
    return DataLoader(
        dataset,
        batch_size=params.batch_size,
        shuffle=shuffle,
        num_workers=params.num_workers,
        generator=generator,
        worker_init_fn=_worker_init,
        drop_last=False,
    )


def _inputs(batch: dict, streams, device: torch.device) -> dict[str, torch.Tensor]:
    return {s: batch[s].to(device) for s in streams}


@torch.no_grad()
def evaluate(model: TwoStreamNet, dataset, classes, params: TrainParams, progress: bool = False) -> dict:
    """Held-out metrics over `dataset` (centre segments and crops): one prediction per video."""
    model.eval()
    device = next(model.parameters()).device
    all_scores, all_labels, total_loss = [], [], 0.0
    per_head: list[list[np.ndarray]] = []
    loader = _loader(dataset, params, shuffle=False, epoch=0)
    for batch in tqdm(loader, desc="evaluate", unit="batch", disable=not progress, leave=False):
        logits = model(_inputs(batch, model.cfg.streams, device))
        total_loss += float(fusion_loss(logits, batch["label"].to(device))) * len(batch["label"])
        all_scores.append(fusion_scores(logits).cpu().numpy())
        all_labels.append(batch["label"].numpy())
        if not per_head:
            per_head = [[] for _ in logits]
        for store, z in zip(per_head, logits):
            store.append(fusion_scores([z]).cpu().numpy())
    scores_nc = np.concatenate(all_scores) if all_scores else np.zeros((0, len(classes)))
    labels_n = np.concatenate(all_labels) if all_labels else np.zeros(0, np.int64)
    metrics = classification_metrics(scores_nc, labels_n, classes)
    metrics["loss"] = total_loss / max(1, len(labels_n))
    if len(per_head) > 1:
        # Late fusion: one classifier per stream, so each stream's accuracy is measured on its own as well
        # (spatially fused models have a single classifier: only the fused figure exists).
        metrics["streams"] = {}
        for stream, chunks in zip(model.cfg.streams, per_head):
            m = classification_metrics(np.concatenate(chunks), labels_n, classes)
            metrics["streams"][stream] = {k: m[k] for k in ("top1", "top5", "mean_class_accuracy")}
    return metrics


def save_checkpoint(path: Path, model, optimizer, epoch: int, params: TrainParams, classes, history) -> None:
    """Write atomically: a killed run leaves the previous checkpoint, never a truncated one."""
    state = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "epoch": epoch,
        "params": params.to_json(),
        "classes": list(classes),
        "history": json.dumps(history),
        "format": "vfx-train-fusion-1",
    }
    tmp = path.with_name(path.name + ".tmp")
    buffer = io.BytesIO()
    torch.save(state, buffer)
    with open(tmp, "wb") as f:
        f.write(buffer.getvalue())
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Read a train-fusion checkpoint (weights_only) and decode its parameters and history."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError, ... for bad files
        raise CheckpointError(f"{path}: not a loadable checkpoint ({type(exc).__name__}: {exc})".splitlines()[0]) from None
    if not isinstance(state, dict) or state.get("format") != "vfx-train-fusion-1":
        raise CheckpointError(f"{path}: not a vfx train-fusion checkpoint")
    state["params"] = TrainParams.from_dict(json.loads(state["params"]))
    state["history"] = json.loads(state["history"])
    state["classes"] = tuple(state["classes"])
    return state


def train_fusion(
    params: TrainParams,
    run_dir: str | os.PathLike,
    *,
    resume: bool = False,
    progress: bool = True,
    metrics_json: str | os.PathLike | None = None,
    callback: Callable[[TrainState], None] | None = None,
    log: Callable[[str], None] = print,
) -> TrainResult:
    """Train, evaluating on the held-out videos; returns the final held-out metrics and the model."""
    run_dir = Path(run_dir)
    ckpt_path = run_dir / CHECKPOINT
    if ckpt_path.exists() and not resume:
        raise UsageError(f"{run_dir}: already holds a checkpoint ({CHECKPOINT}); pass --resume or pick another -o")

    if params.threads is not None:
        torch.set_num_threads(params.threads)
    seed_everything(params.seed)
    datasets = build_datasets(params)
    datasets.train.repeats = params.epoch_repeats
    resuming = resume and ckpt_path.exists()
    model, params = build_model(params, datasets, initialise=not resuming)
    device = torch.device(resolve_device(params.device))
    # Created only now: a usage error above (stores, classes, device) leaves no empty run directory behind.
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"{run_dir}: cannot create the run directory ({exc.strerror})") from None
    model.to(device)
    optimizer = make_optimizer(params, model)
    classes = datasets.classes
    history: list[dict] = []
    start_epoch = 0
    if resuming:
        state = load_checkpoint(ckpt_path)
        diff = differences(state["params"], params, ignore=TrainParams.RESUMABLE_CHANGES)
        if diff:
            raise UsageError(f"{ckpt_path}: cannot resume with other parameters ({'; '.join(diff)})")
        if state["classes"] != classes:
            raise UsageError(f"{ckpt_path}: the stores' classes differ from the checkpoint's")
        check_and_load(model, state["model"], str(ckpt_path))
        optimizer.load_state_dict(state["optimizer"])
        start_epoch, history = int(state["epoch"]), state["history"]
        log(f"resuming {run_dir} after epoch {start_epoch}")
    (run_dir / "params.json").write_text(json.dumps(params.to_dict(), indent=1, sort_keys=True))
    n_params = count_parameters(model)
    log(
        f"{len(datasets.train.records)} train / {len(datasets.val.records)} held-out videos, {len(classes)} classes "
        f"({datasets.split_how}); {datasets.overlap}; {n_params:,} parameters"
        + (f"; {len(datasets.dropped)} videos unusable" if datasets.dropped else "")
    )

    for note in datasets.notes:
        log(note)
    steps_per_epoch = math.ceil(len(datasets.train) / params.batch_size)
    metrics: dict | None = history[-1].get("val") if history else None
    best_top1 = max((r["val"]["top1"] for r in history if "val" in r), default=-1.0)
    for epoch in range(start_epoch, params.epochs):
        torch.manual_seed(_epoch_seed(params.seed, epoch) + 1)
        datasets.train.set_epoch(epoch)
        model.train()
        loader = _loader(datasets.train, params, shuffle=True, epoch=epoch)
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{params.epochs}", unit="batch", disable=not progress)
        t0 = time.perf_counter()
        seen, loss_sum, correct = 0, 0.0, 0
        for i, batch in enumerate(bar):
            step = epoch * steps_per_epoch + i
            lr = learning_rate(params, step, steps_per_epoch)
            for group in optimizer.param_groups:
                group["lr"] = lr
            labels = batch["label"].to(device)
            logits = model(_inputs(batch, params.model.streams, device))
            loss = fusion_loss(logits, labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if params.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), params.grad_clip)
            optimizer.step()
            n = len(batch["label"])
            seen += n
            loss_sum += float(loss.detach()) * n
            correct += int((fusion_scores(logits).argmax(1) == labels).sum())
            elapsed = time.perf_counter() - t0
            bar.set_postfix(loss=f"{loss_sum / seen:.3f}", lr=f"{lr:.2g}", videos_s=f"{seen / max(elapsed, 1e-9):.1f}")
            if callback is not None:
                callback(TrainState(epoch, i, step, float(loss.detach())))
        epoch_sec = time.perf_counter() - t0
        record = {
            "epoch": epoch + 1,
            "train_loss": loss_sum / max(1, seen),
            "train_top1": correct / max(1, seen),
            "epoch_sec": epoch_sec,
            "lr": lr,
        }
        last = epoch + 1 == params.epochs
        if last or (params.eval_every and (epoch + 1) % params.eval_every == 0):
            metrics = evaluate(model, datasets.val, classes, params, progress=progress)
            record["val"] = metrics
            log(
                f"epoch {epoch + 1}: train loss {record['train_loss']:.3f}, held-out top-1 "
                f"{100 * metrics['top1']:.1f} % ({epoch_sec:.1f} s)"
            )
        history.append(record)
        save_checkpoint(ckpt_path, model, optimizer, epoch + 1, params, classes, history)
        if "val" in record and record["val"]["top1"] > best_top1:
            best_top1 = record["val"]["top1"]
            save_checkpoint(run_dir / BEST_CHECKPOINT, model, optimizer, epoch + 1, params, classes, history)

    if metrics is None:
        metrics = evaluate(model, datasets.val, classes, params, progress=progress)
    write_confusion_png(
        run_dir / "confusion.png", np.asarray(metrics["confusion"]), classes,
        title=f"held-out top-1 {100 * metrics['top1']:.1f} % ({metrics['num_videos']} videos)",
    )
    summary = {"final": metrics, "history": history, "num_parameters": n_params, "params": params.to_dict()}
    write_json_atomic(run_dir / "metrics.json", summary)
    if metrics_json is not None:
        write_json_atomic(Path(metrics_json), metrics)
    return TrainResult(run_dir, metrics, history, n_params, classes, model)


def evaluate_checkpoint(
    checkpoint: str | os.PathLike,
    *,
    frames: str | None = None,
    flow: str | None = None,
    features: tuple[str, ...] = (),
    progress: bool = True,
    device: str | None = None,
) -> dict:
    """Held-out metrics of a saved run, on its own stores or on others given here (same classes)."""
    state = load_checkpoint(checkpoint)
    params: TrainParams = state["params"]
    if params.threads is not None:
        torch.set_num_threads(params.threads)
    if features:
        params = replace(params, features=tuple(features), frames=None, flow=None)
    elif frames or flow:
        params = replace(params, frames=frames or params.frames, flow=flow or params.flow, features=())
    datasets = build_datasets(params)
    if datasets.classes != state["classes"]:
        raise UsageError(
            f"{checkpoint}: trained on classes {list(state['classes'])}, the stores hold {list(datasets.classes)}"
        )
    model = TwoStreamNet(params.model, len(state["classes"]))
    check_and_load(model, state["model"], str(checkpoint))
    model.to(torch.device(resolve_device(device or params.device)))
    return evaluate(model, datasets.val, datasets.classes, params, progress=progress)
