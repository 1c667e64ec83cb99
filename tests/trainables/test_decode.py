"""Where images are decoded (trainables/_decode.py), on real PNG and JPEG bytes made with Pillow.

tests/trainables/test_input.py checks ``resolve_decode`` on a CPU device and the GPU path end to end on CUDA;
tests/trainables/test_stream.py the streamed GPU path with a Pillow stand-in for nvJPEG. Here: the module's own
functions, on the CPU (and, where there is a GPU, its decode against Pillow's)."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from tailsweep.trainables import _decode
from tailsweep.trainables._decode import (
    decode_blobs_on_device,
    decode_on_device,
    is_jpeg,
    pillow_decode,
    resolve_decode,
)

CPU = torch.device("cpu")
NO_GPU_DECODE = not torch.cuda.is_available() or not _decode.gpu_decode_works(torch.device("cuda"))


def encode(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


def stripes(w: int, h: int, mode: str = "RGB") -> Image.Image:
    """Left half red, right half blue (``mode`` converted after): a picture whose orientation shows."""
    a = np.zeros((h, w, 3), np.uint8)
    a[:, : w // 2] = (255, 0, 0)
    a[:, w // 2 :] = (0, 0, 255)
    return Image.fromarray(a).convert(mode)


def test_is_jpeg_reads_the_magic_bytes_only():
    jpeg, png = encode(stripes(8, 8), "JPEG"), encode(stripes(8, 8), "PNG")
    assert is_jpeg(jpeg) and is_jpeg(memoryview(jpeg)) and is_jpeg(jpeg[:3])
    assert not is_jpeg(png) and not is_jpeg(b"") and not is_jpeg(b"\xff\xd8")


def test_pillow_decode_keeps_the_native_size_and_orientation():
    out = pillow_decode(encode(stripes(10, 6), "PNG"))
    assert out.shape == (6, 10, 3) and out.dtype == np.uint8  # HWC: height first
    assert tuple(out[0, 0]) == (255, 0, 0) and tuple(out[0, -1]) == (0, 0, 255)


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "CMYK"])
def test_pillow_decode_gives_three_channels_whatever_the_mode(mode):
    fmt = "JPEG" if mode == "CMYK" else "PNG"
    out = pillow_decode(encode(stripes(8, 8, mode), fmt), size=4)
    assert out.shape == (4, 4, 3) and out.dtype == np.uint8


def test_pillow_decode_resizes_to_a_square_and_a_jpeg_keeps_its_colours():
    out = pillow_decode(encode(stripes(16, 8), "JPEG", quality=95), size=12)
    assert out.shape == (12, 12, 3)
    left, right = out[:, :4].reshape(-1, 3).mean(0), out[:, -4:].reshape(-1, 3).mean(0)
    assert left[0] > 200 and left[2] < 60 and right[2] > 200 and right[0] < 60  # lossy, still red | blue


def test_auto_on_a_gpu_that_cannot_decode_falls_back_to_the_cpu_and_gpu_is_refused_with_the_fix():
    if not NO_GPU_DECODE:
        pytest.skip("this machine's GPU decodes JPEGs: the fallback cannot be seen here")
    cuda = torch.device("cuda")  # a CUDA device whether or not one exists: the trial decode fails either way
    assert not _decode.gpu_decode_works(cuda)
    assert resolve_decode("auto", cuda) == "cpu"
    with pytest.raises(ValueError, match="does not decode on this worker's GPU") as err:
        resolve_decode("gpu", cuda)
    assert "train.decode: cpu (or auto)" in str(err.value)


def test_no_trial_decode_is_made_off_cuda(monkeypatch):
    tried = []
    monkeypatch.setattr(_decode, "decode_jpegs", lambda *a: tried.append(a) or [])
    assert not _decode.gpu_decode_works(torch.device("meta"))  # not cached for this device: computed now
    assert tried == []  # a CPU-only worker never imports torchvision.io for it


def test_decoded_items_are_moved_in_place_and_in_order():
    items = [torch.full((3, 2, 2), i, dtype=torch.uint8) for i in range(4)]
    out = decode_on_device(items, CPU)
    assert [int(t[0, 0, 0]) for t in out] == [0, 1, 2, 3]
    assert all(torch.equal(a, b) for a, b in zip(out, items, strict=True))


def test_non_jpeg_blobs_are_decoded_with_pillow_and_stacked_across_chunks():
    colours = [(i * 40, 255 - i * 40, 7) for i in range(5)]
    blobs = [encode(Image.new("RGB", (6 + i, 9), c), "PNG") for i, c in enumerate(colours)]
    out = decode_blobs_on_device(blobs, 4, CPU, chunk=2)  # chunks of 2, 2, 1
    assert out.shape == (5, 3, 4, 4) and out.dtype == torch.uint8 and out.device == CPU
    assert [tuple(int(v) for v in out[i, :, 0, 0]) for i in range(5)] == colours  # each image in its place
    for i, b in enumerate(blobs):
        assert torch.equal(out[i], torch.from_numpy(pillow_decode(b, 4)).permute(2, 0, 1))


# --- on a GPU that decodes ----------------------------------------------------------------------------------------
@pytest.mark.gpu
@pytest.mark.skipif(NO_GPU_DECODE, reason="needs CUDA with torchvision's compiled ops")
def test_jpegs_and_pngs_decoded_on_the_gpu_are_close_to_pillow():
    cuda = torch.device("cuda")
    assert resolve_decode("auto", cuda) == "gpu" and resolve_decode("gpu", cuda) == "gpu"
    blobs = [encode(stripes(20, 14), "JPEG", quality=95), encode(stripes(12, 12), "PNG")] * 3
    out = decode_blobs_on_device(blobs, 8, cuda, chunk=4)
    ref = torch.stack([torch.from_numpy(pillow_decode(b, 8)).permute(2, 0, 1) for b in blobs])
    assert out.shape == ref.shape == (6, 3, 8, 8) and out.device == CPU
    assert torch.equal(out[1::2], ref[1::2])  # PNGs: Pillow's own decode, moved
    assert (out[::2].float() - ref[::2].float()).abs().mean() < 8  # JPEGs: nvJPEG + antialiased resize
