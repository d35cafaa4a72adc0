#!/usr/bin/env python3
"""Writes DICOM test files from HC18 frames with their known pixel sizes (pydicom; see make-dicom-fixtures.sh).

  make-dicom-fixtures.py fixtures OUT   small files for the tests (committed in fixtures/dicom/): one HC18 test
                                        frame, shrunk 4x (its pixel size 4x), in every layout segment reads, plus
                                        malformed files that must give a one-line error
  make-dicom-fixtures.py seeds OUT      tiny files of each layout: the DICOM fuzzer's seeds (fuzz/corpus/dicom)
  make-dicom-fixtures.py testset OUT --data DIR --split CSV
                                        every test frame of a split at full size, uncompressed, one ultrasound
                                        region with the CSV's pixel size (not committed: 200 x 430 KB)

Nothing identifying is written: no patient, study or date values, only what an image needs.
"""
import argparse
import csv
import io
import os
import sys

import numpy as np
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import (ExplicitVRLittleEndian, ImplicitVRLittleEndian, JPEGBaseline8Bit, RLELossless,
                         UltrasoundImageStorage, UltrasoundMultiFrameImageStorage, generate_uid)

FIXTURE_FRAME = "020_HC.png"  # on the test side of the bundled split and of the paper's


def region(x0, y0, x1, y1, delta_cm, units=3):
    item = Dataset()
    item.RegionSpatialFormat = 1  # 2D
    item.RegionDataType = 1  # tissue
    item.RegionLocationMinX0, item.RegionLocationMinY0 = x0, y0
    item.RegionLocationMaxX1, item.RegionLocationMaxY1 = x1, y1
    item.PhysicalUnitsXDirection, item.PhysicalUnitsYDirection = units, units
    item.PhysicalDeltaX, item.PhysicalDeltaY = delta_cm, delta_cm
    return item


def image_dataset(frames, photometric="MONOCHROME2", multiframe=False):
    """An ultrasound image data set holding `frames` (list of HxW or HxWx3 uint8 arrays), uncompressed."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UltrasoundMultiFrameImageStorage if multiframe else UltrasoundImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "US"
    first = frames[0]
    ds.Rows, ds.Columns = first.shape[0], first.shape[1]
    ds.SamplesPerPixel = 1 if first.ndim == 2 else 3
    ds.PhotometricInterpretation = photometric
    if ds.SamplesPerPixel == 3:
        ds.PlanarConfiguration = 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    if multiframe:
        ds.NumberOfFrames = len(frames)
    ds.PixelData = np.stack(frames).tobytes()
    return ds


def save(ds, path, syntax=None):
    if syntax is not None:
        ds.file_meta.TransferSyntaxUID = syntax
    ds.save_as(path, enforce_file_format=True)


def jpeg_bytes(array, mode):
    out = io.BytesIO()
    Image.fromarray(array, mode).save(out, format="JPEG", quality=95, subsampling=2 if mode == "RGB" else 0)
    return out.getvalue()


def write_fixtures(out):
    here = os.path.dirname(os.path.abspath(__file__))
    data = os.path.join(here, "..", "fixtures", "hc18", "training_set")
    sizes = {row[0]: float(row[1]) for row in csv.reader(open(os.path.join(data, "training_set_pixel_size_and_HC.csv"))) if row[0].endswith(".png")}
    big = Image.open(os.path.join(data, FIXTURE_FRAME)).convert("L")
    small = big.resize((big.width // 4, big.height // 4), Image.BILINEAR)
    gray = np.asarray(small, dtype=np.uint8)
    pixel_mm = sizes[FIXTURE_FRAME] * 4
    h, w = gray.shape
    os.makedirs(out, exist_ok=True)
    small.save(os.path.join(out, "frame.png"))
    with open(os.path.join(out, "frame_pixel_size.csv"), "w") as f:
        f.write("filename,pixel size(mm)\nframe.png,%r\n" % pixel_mm)
    full = region(0, 0, w - 1, h - 1, pixel_mm / 10)

    ds = image_dataset([gray]); ds.SequenceOfUltrasoundRegions = [full]; save(ds, os.path.join(out, "one_region.dcm"))
    # B-mode above a strip with another scale (as a Doppler or M-mode strip would be): the head is in region 1.
    strip = h - 12
    ds = image_dataset([gray])
    ds.SequenceOfUltrasoundRegions = [region(0, strip, w - 1, h - 1, pixel_mm / 5), region(0, 0, w - 1, strip - 1, pixel_mm / 10)]
    save(ds, os.path.join(out, "two_regions.dcm"))
    ds = image_dataset([gray]); ds.SequenceOfUltrasoundRegions = [full]; save(ds, os.path.join(out, "implicit_vr.dcm"), ImplicitVRLittleEndian)
    loop = [gray, np.roll(gray, 3, axis=1), np.roll(gray, -2, axis=0)]
    ds = image_dataset(loop, multiframe=True); ds.SequenceOfUltrasoundRegions = [full]; save(ds, os.path.join(out, "cine_loop.dcm"))
    ds = image_dataset([gray]); ds.SequenceOfUltrasoundRegions = [full]
    ds.compress(RLELossless); save(ds, os.path.join(out, "rle.dcm"))
    ds = image_dataset(loop, multiframe=True); ds.SequenceOfUltrasoundRegions = [full]
    ds.compress(RLELossless); save(ds, os.path.join(out, "rle_loop.dcm"))
    ds = image_dataset([gray]); ds.SequenceOfUltrasoundRegions = [full]
    ds.PixelData = encapsulate([jpeg_bytes(gray, "L")]); ds["PixelData"].VR = "OB"
    save(ds, os.path.join(out, "jpeg_baseline.dcm"), JPEGBaseline8Bit)
    rgb = np.stack([gray] * 3, axis=-1)
    ds = image_dataset([rgb], photometric="RGB"); ds.SequenceOfUltrasoundRegions = [full]; save(ds, os.path.join(out, "rgb.dcm"))
    # Gray in YBR_FULL is Y = gray, Cb = Cr = 128.
    ybr = np.stack([gray, np.full_like(gray, 128), np.full_like(gray, 128)], axis=-1)
    ds = image_dataset([ybr], photometric="YBR_FULL"); ds.SequenceOfUltrasoundRegions = [full]; save(ds, os.path.join(out, "ybr_full.dcm"))
    ds = image_dataset([rgb], photometric="YBR_FULL_422"); ds.SequenceOfUltrasoundRegions = [full]
    ds.PixelData = encapsulate([jpeg_bytes(rgb, "RGB")]); ds["PixelData"].VR = "OB"
    save(ds, os.path.join(out, "jpeg_color.dcm"), JPEGBaseline8Bit)
    ds = image_dataset([gray]); ds.PixelSpacing = [pixel_mm, pixel_mm]; save(ds, os.path.join(out, "pixel_spacing_only.dcm"))
    ds = image_dataset([gray]); save(ds, os.path.join(out, "no_spacing.dcm"))
    # Units 0 (none): the region gives no length, so no pixel size.
    ds = image_dataset([gray]); ds.SequenceOfUltrasoundRegions = [region(0, 0, w - 1, h - 1, pixel_mm / 10, units=0)]
    save(ds, os.path.join(out, "non_cm_units.dcm"))

    bad = os.path.join(out, "malformed")
    os.makedirs(bad, exist_ok=True)
    whole = open(os.path.join(out, "one_region.dcm"), "rb").read()
    open(os.path.join(bad, "truncated.dcm"), "wb").write(whole[: len(whole) // 2])
    rows = bytes([0x28, 0x00, 0x10, 0x00]) + b"US" + bytes([0x02, 0x00])
    assert whole.count(rows) == 1
    open(os.path.join(bad, "wrong_vr.dcm"), "wb").write(whole.replace(rows, rows[:4] + b"DS" + rows[6:]))
    ds = image_dataset([gray]); ds.SequenceOfUltrasoundRegions = [full]; del ds.PixelData
    save(ds, os.path.join(bad, "missing_pixel_data.dcm"))
    ds = image_dataset([gray]); ds.SequenceOfUltrasoundRegions = [full]
    ds.PixelData = encapsulate([b"\xff\x4f\xff\x51" + bytes(60)]); ds["PixelData"].VR = "OB"
    save(ds, os.path.join(bad, "jpeg2000.dcm"), "1.2.840.10008.1.2.4.90")
    open(os.path.join(bad, "not_dicom.dcm"), "wb").write(open(os.path.join(out, "frame.png"), "rb").read())
    print("wrote", len(os.listdir(out)) - 1, "files and", len(os.listdir(bad)), "malformed files to", out)


def write_seeds(out):
    """Tiny files (32x24) of each layout, as seeds for the DICOM fuzzer (fuzz/corpus/dicom)."""
    os.makedirs(out, exist_ok=True)
    gray = (np.arange(32 * 24, dtype=np.uint32).reshape(24, 32) * 7 % 256).astype(np.uint8)
    full = region(0, 0, 31, 23, 0.01)
    layouts = {
        "explicit": (lambda: image_dataset([gray]), None),
        "implicit": (lambda: image_dataset([gray]), ImplicitVRLittleEndian),
        "loop": (lambda: image_dataset([gray, gray[::-1].copy()], multiframe=True), None),
        "rgb": (lambda: image_dataset([np.stack([gray] * 3, axis=-1)], photometric="RGB"), None),
    }
    for name, (make, syntax) in layouts.items():
        ds = make(); ds.SequenceOfUltrasoundRegions = [full, region(0, 20, 31, 23, 0.02)]; ds.PixelSpacing = [0.1, 0.1]
        save(ds, os.path.join(out, name + ".dcm"), syntax)
    ds = image_dataset([gray, gray], multiframe=True); ds.SequenceOfUltrasoundRegions = [full]; ds.compress(RLELossless)
    save(ds, os.path.join(out, "rle_loop.dcm"))
    ds = image_dataset([gray]); ds.SequenceOfUltrasoundRegions = [full]
    ds.PixelData = encapsulate([jpeg_bytes(gray, "L")]); ds["PixelData"].VR = "OB"
    save(ds, os.path.join(out, "jpeg.dcm"), JPEGBaseline8Bit)
    print("wrote", len(os.listdir(out)), "seeds to", out)


def write_testset(out, data, split):
    sizes = {}
    with open(os.path.join(data, "training_set_pixel_size_and_HC.csv")) as f:
        for row in csv.reader(f):
            if row and row[0].endswith(".png"):
                sizes[row[0]] = float(row[1])
    names = [row[0] for row in csv.reader(open(split)) if len(row) == 2 and row[1].strip() == "test"]
    os.makedirs(out, exist_ok=True)
    for name in names:
        gray = np.asarray(Image.open(os.path.join(data, name)).convert("L"), dtype=np.uint8)
        h, w = gray.shape
        ds = image_dataset([gray])
        ds.SequenceOfUltrasoundRegions = [region(0, 0, w - 1, h - 1, sizes[name] / 10)]
        save(ds, os.path.join(out, name[:-4] + ".dcm"))
    print("wrote", len(names), "DICOM frames (one ultrasound region each, pixel size from the CSV) to", out)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["fixtures", "testset", "seeds"])
    parser.add_argument("out")
    parser.add_argument("--data")
    parser.add_argument("--split")
    args = parser.parse_args()
    if args.what == "fixtures":
        write_fixtures(args.out)
    elif args.what == "seeds":
        write_seeds(args.out)
    else:
        if not args.data or not args.split:
            sys.exit("testset needs --data and --split")
        write_testset(args.out, args.data, args.split)


if __name__ == "__main__":
    main()
