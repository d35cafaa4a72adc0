/// int8 nearest-neighbour 2x upsample (NHWC). Quantization is unchanged: it only copies values.
/// output[y][x] = input[y / 2][x / 2]; each input pixel's channels are copied to two output pixels,
/// and each finished output row is copied once more for the odd row below it.
public func int8Upsample2x(_ input: UnsafePointer<Int8>, height: Int, width: Int, channels: Int,
                           output: UnsafeMutablePointer<Int8>, threads: Int) {
    let outRow = 2 * width * channels
    parallelChunks(height, threads: threads) { rows in
        for y in rows {
            let src = input + y * width * channels
            let even = output + (2 * y) * outRow
            for x in 0..<width {
                (even + 2 * x * channels).update(from: src + x * channels, count: channels)
                (even + (2 * x + 1) * channels).update(from: src + x * channels, count: channels)
            }
            (even + outRow).update(from: even, count: outRow)
        }
    }
}

/// Scalar reference.
public func referenceUpsample2x(_ input: [Int8], height: Int, width: Int, channels: Int) -> [Int8] {
    var out = [Int8](repeating: 0, count: 4 * input.count)
    for y in 0..<(2 * height) {
        for x in 0..<(2 * width) {
            for c in 0..<channels { out[(y * 2 * width + x) * channels + c] = input[((y / 2) * width + x / 2) * channels + c] }
        }
    }
    return out
}
