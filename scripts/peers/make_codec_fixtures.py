"""Make fixtures/codecs/: tiny PNG/JPEG files in the formats the decoder must handle.

    /work/peer/venv/bin/python scripts/peers/make_codec_fixtures.py

Every image is 4x3 with known pixel values (see Tests/HC18Tests/ImageCodecsTests.swift).
"""
import numpy as np
from PIL import Image

out = "fixtures/codecs/"
gray = np.array([[0, 50, 100, 150], [200, 250, 255, 1], [17, 34, 68, 136]], dtype=np.uint8)
Image.fromarray(gray, "L").save(out + "gray8.png")
# 16-bit gray: value v * 257 so that scaling to 8 bits gives v back exactly, plus odd values.
g16 = gray.astype(np.uint16) * 257
g16[0, 0] = 128  # 128 / 257 = 0.498 -> 0
g16[0, 1] = 129  # 129 / 257 = 0.502 -> 1 (rounded, not truncated)
Image.fromarray(g16.astype(np.uint16)).save(out + "gray16.png")
rgb = np.zeros((3, 4, 3), dtype=np.uint8)
rgb[..., 0] = gray; rgb[..., 1] = gray[::-1]; rgb[..., 2] = 255 - gray
Image.fromarray(rgb, "RGB").save(out + "rgb8.png")
rgba = np.concatenate([rgb, np.full((3, 4, 1), 7, dtype=np.uint8)], axis=2)  # nearly transparent
Image.fromarray(rgba, "RGBA").save(out + "rgba8.png")
la = np.stack([gray, np.full_like(gray, 3)], axis=2)
Image.fromarray(la, "LA").save(out + "gray_alpha.png")
Image.fromarray(rgb, "RGB").convert("P", palette=Image.ADAPTIVE, colors=16).save(out + "palette.png")
Image.fromarray((gray > 100).astype(np.uint8) * 255, "L").convert("1").save(out + "bilevel.png")
Image.fromarray(gray, "L").save(out + "gray.jpg", quality=100)
Image.fromarray(rgb, "RGB").save(out + "rgb.jpg", quality=100)
Image.fromarray(rgb, "RGB").save(out + "progressive.jpg", quality=95, progressive=True)
for name in ["gray8.png", "gray16.png", "rgb8.png", "rgba8.png", "gray_alpha.png", "palette.png", "bilevel.png",
             "gray.jpg", "rgb.jpg", "progressive.jpg"]:
    im = Image.open(out + name)
    print(name, im.mode, np.asarray(im.convert("L")).tolist() if im.mode != "I;16" else np.asarray(im).tolist())
print("rgb->L", np.asarray(Image.open(out + "rgb8.png").convert("L")).tolist())
print("palette->RGB->L", np.asarray(Image.open(out + "palette.png").convert("RGB").convert("L")).tolist())
# CMYK (Adobe APP14 marker, inverted ink, as Photoshop and Pillow write it): the gray frame as black ink only.
Image.fromarray(gray, "L").convert("CMYK").save(out + "cmyk.jpg", quality=100)
