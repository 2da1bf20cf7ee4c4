"""Image files -> model input tensors (Pillow): resize the shorter side,
centre-crop, scale to [0, 1], normalise, and lay out as NCHW or NHWC."""
from __future__ import annotations

import os

import numpy as np

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")


def list_images(path: str) -> list:
    if os.path.isdir(path):
        files = sorted(os.path.join(path, f) for f in os.listdir(path)
                       if f.lower().endswith(IMAGE_EXTS))
        if not files:
            raise ValueError(f"no image files ({', '.join(IMAGE_EXTS)}) in directory {path}")
        return files
    if not os.path.isfile(path):
        raise FileNotFoundError(f"image not found: {path}")
    return [path]


def load_image(path: str, size: int, resize: int | None = None, channels: int = 3,
               mean=IMAGENET_MEAN, std=IMAGENET_STD, order: str = "rgb",
               layout: str = "nchw", scale: float = 255.0) -> np.ndarray:
    """One image -> float32 (C, size, size) or (size, size, C)."""
    from PIL import Image
    try:
        img = Image.open(path)
        img = img.convert("L" if channels == 1 else "RGB")
    except Exception as e:
        raise ValueError(f"cannot read image {path}: {e}") from None
    resize = resize or int(round(size * 256 / 224))
    w, h = img.size
    k = resize / min(w, h)
    img = img.resize((max(size, round(w * k)), max(size, round(h * k))), Image.BILINEAR)
    w, h = img.size
    left, top = (w - size) // 2, (h - size) // 2
    img = img.crop((left, top, left + size, top + size))
    a = np.asarray(img, dtype=np.float32) / np.float32(scale)
    if a.ndim == 2:
        a = a[:, :, None]
    if order == "bgr" and a.shape[2] == 3:
        a = a[:, :, ::-1]
    mean = np.asarray(mean, np.float32)[: a.shape[2]]
    std = np.asarray(std, np.float32)[: a.shape[2]]
    a = (a - mean) / std
    if layout == "nchw":
        a = a.transpose(2, 0, 1)
    return np.ascontiguousarray(a, dtype=np.float32)
