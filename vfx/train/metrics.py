"""Video-level classification metrics, the printed table and the confusion-matrix picture."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from vfx.errors import UsageError


def top_k_accuracy(scores_nc: np.ndarray, labels_n: np.ndarray, k: int) -> float:
    """Fraction of videos whose label is among the k highest scores (ties broken by class order)."""
    if len(labels_n) == 0:
        return float("nan")
    k = min(k, scores_nc.shape[1])
    top = np.argsort(-scores_nc, axis=1, kind="stable")[:, :k]
    return float(np.mean(np.any(top == labels_n[:, None], axis=1)))


def confusion_matrix(pred_n: np.ndarray, labels_n: np.ndarray, num_classes: int) -> np.ndarray:
    """`[true, predicted]` counts."""
    cm = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(cm, (labels_n, pred_n), 1)
    return cm


def classification_metrics(scores_nc: np.ndarray, labels_n: np.ndarray, classes: tuple[str, ...] | list[str]) -> dict:
    """top1, top5, per-class accuracy (recall; None for a class without held-out videos), its mean over the
    classes that have videos, the confusion matrix and the number of videos."""
    scores_nc = np.asarray(scores_nc, np.float64)
    labels_n = np.asarray(labels_n, np.int64)
    pred = np.argmax(scores_nc, axis=1) if len(labels_n) else np.zeros(0, np.int64)
    cm = confusion_matrix(pred, labels_n, len(classes))
    per_class = {}
    for i, name in enumerate(classes):
        total = int(cm[i].sum())
        per_class[name] = float(cm[i, i] / total) if total else None
    present = [v for v in per_class.values() if v is not None]
    return {
        "top1": top_k_accuracy(scores_nc, labels_n, 1),
        "top5": top_k_accuracy(scores_nc, labels_n, 5),
        "mean_class_accuracy": float(np.mean(present)) if present else float("nan"),
        "per_class": per_class,
        "num_videos": int(len(labels_n)),
        "classes": list(classes),
        "confusion": cm.tolist(),
    }


def format_metrics(metrics: dict) -> str:
    """A plain-text table: the summary line, then one row per class."""
    lines = [
        f"videos {metrics['num_videos']}   top-1 {100 * metrics['top1']:.1f} %   top-5 {100 * metrics['top5']:.1f} %"
        f"   mean class accuracy {100 * metrics['mean_class_accuracy']:.1f} %",
    ]
    if "loss" in metrics:
        lines[0] += f"   loss {metrics['loss']:.4f}"
    if metrics.get("streams"):
        parts = [f"{s} top-1 {100 * m['top1']:.1f} %" for s, m in metrics["streams"].items()]
        lines.append("   ".join(parts) + f"   fused top-1 {100 * metrics['top1']:.1f} %")
    classes = metrics["classes"]
    cm = np.asarray(metrics["confusion"])
    width = max([len("class")] + [len(c) for c in classes])
    lines.append(f"{'class':<{width}}  videos  accuracy")
    for i, name in enumerate(classes):
        acc = metrics["per_class"][name]
        shown = "     -" if acc is None else f"{100 * acc:6.1f} %"
        lines.append(f"{name:<{width}}  {int(cm[i].sum()):6d}  {shown}")
    return "\n".join(lines)


def write_confusion_png(path: str | os.PathLike, confusion: np.ndarray, classes, title: str = "") -> Path:
    """Draw the confusion matrix with OpenCV: rows true, columns predicted, cells coloured by the row-
    normalised rate (viridis) and labelled with counts. Returns the path written."""
    cm = np.asarray(confusion, np.int64)
    n = len(classes)
    cell = int(np.clip(480 // max(n, 1), 18, 48))
    font = cv2.FONT_HERSHEY_SIMPLEX
    scale = cell / 80.0
    label_w = max(cv2.getTextSize(f"{i} {c}", font, scale, 1)[0][0] for i, c in enumerate(classes)) + 12
    top = cell + 28
    width, height = label_w + n * cell + 10, top + n * cell + 26
    img = np.full((height, width, 3), 255, np.uint8)
    rows = cm.sum(axis=1, keepdims=True)
    rate = np.divide(cm, rows, out=np.zeros(cm.shape, np.float64), where=rows > 0)
    colours = cv2.applyColorMap(np.round(rate * 255).astype(np.uint8), cv2.COLORMAP_VIRIDIS)  # [n, n, 3] BGR
    for i in range(n):
        y = top + i * cell
        cv2.putText(img, f"{i} {classes[i]}", (4, y + cell // 2 + 4), font, scale, (0, 0, 0), 1, cv2.LINE_AA)
        for j in range(n):
            x = label_w + j * cell
            colour = tuple(int(c) for c in colours[i, j])
            cv2.rectangle(img, (x, y), (x + cell - 1, y + cell - 1), colour, -1)
            if cm[i, j]:
                ink = (0, 0, 0) if rate[i, j] > 0.6 else (255, 255, 255)
                text = str(cm[i, j])
                tw, th = cv2.getTextSize(text, font, scale, 1)[0]
                cv2.putText(img, text, (x + (cell - tw) // 2, y + (cell + th) // 2), font, scale, ink, 1, cv2.LINE_AA)
    for j in range(n):
        text = str(j)
        tw = cv2.getTextSize(text, font, scale, 1)[0][0]
        cv2.putText(img, text, (label_w + j * cell + (cell - tw) // 2, top - 6), font, scale, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, title or "confusion (rows: true, columns: predicted)", (4, 18), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, "rows: true class, columns: predicted", (4, height - 8), font, 0.4, (80, 80, 80), 1, cv2.LINE_AA)
    path = Path(path)
    if not cv2.imwrite(str(path), img):
        raise UsageError(f"{path}: cannot write the confusion picture")
    return path
