"""ONNX Runtime int8 peer of our int8 engine: static post-training quantization of the D-all ONNX model.

    /work/peer/venv/bin/python scripts/peers/quantize_onnx.py \
        --fp32 .build/peers/dall_fp32_192x128.onnx --out .build/peers/dall_int8_192x128.onnx \
        --data ../shared/hc18/training_set --split fixtures/hc18/paper_split.csv --images 64

What `sonoquant calibrate` does, as ONNX Runtime does it: QDQ format, weights int8 symmetric per output
channel, activations int8 asymmetric per tensor (QInt8), MinMax calibration over the same 64
train-split frames our calibrator uses (evenly spaced over the train side of the split file, in file order),
each squashed to WxH with PIL bilinear, gray replicated to 3 channels, scaled to [0, 1].
Prints the int8 file size and the float file size.
"""
import argparse, csv, os
import numpy as np
from PIL import Image


def calibration_frames(data, split, images, width, height):
    with open(split) as f:
        rows = [r for r in csv.reader(f) if r and r[0] != "filename"]
    train = [r[0] for r in rows if r[1].strip() == "train"]
    count = min(images, len(train))
    chosen = [train[i * len(train) // count] for i in range(count)]
    for name in chosen:
        im = Image.open(os.path.join(data, name)).convert("L").resize((width, height), Image.BILINEAR)
        x = np.asarray(im, dtype=np.float32) / 255.0
        yield np.repeat(x[None, None], 3, axis=1)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fp32", default=".build/peers/dall_fp32_192x128.onnx")
    parser.add_argument("--out", default=".build/peers/dall_int8_192x128.onnx")
    parser.add_argument("--data", default="../shared/hc18/training_set")
    parser.add_argument("--split", default="fixtures/hc18/paper_split.csv")
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--width", type=int, default=192)
    parser.add_argument("--height", type=int, default=128)
    args = parser.parse_args()

    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.frames = iter(list(calibration_frames(args.data, args.split, args.images, args.width, args.height)))

        def get_next(self):
            x = next(self.frames, None)
            return None if x is None else {"input": x}

    prepared = args.out + ".pre.onnx"
    quant_pre_process(args.fp32, prepared)
    quantize_static(prepared, args.out, Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                    calibrate_method=CalibrationMethod.MinMax)
    os.remove(prepared)
    print(f"wrote {args.out}: {os.path.getsize(args.out) / 1e6:.2f} MB int8 (fp32 {os.path.getsize(args.fp32) / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
