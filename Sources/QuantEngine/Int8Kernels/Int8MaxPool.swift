/// int8 2x2 max-pool, stride 2 (NHWC; an odd last row or column is dropped, as PyTorch's MaxPool2d(2)).
///
/// The output keeps the input's scale and zero point (the model file ties them, as for upsample): the
/// maximum of the quantized values is then the quantized maximum, since dequantization is monotonic.
/// Sixteen channels at a time, scalar tail.
public func int8MaxPool2x2(_ input: UnsafePointer<Int8>, height: Int, width: Int, channels: Int,
                           output: UnsafeMutablePointer<Int8>, threads: Int) {
    let outH = height / 2, outW = width / 2
    let inRow = width * channels
    let vectorChannels = channels & ~15
    parallelChunks(outH, threads: threads) { rows in
        for y in rows {
            let top = input + 2 * y * inRow, bottom = top + inRow
            let out = output + y * outW * channels
            for x in 0..<outW {
                let a = top + 2 * x * channels, b = bottom + 2 * x * channels, o = out + x * channels
                var c = 0
                while c < vectorChannels {
                    let m = maximum(maximum(load16(a + c), load16(a + channels + c)), maximum(load16(b + c), load16(b + channels + c)))
                    UnsafeMutableRawPointer(o + c).storeBytes(of: m, as: SIMD16<Int8>.self)
                    c += 16
                }
                while c < channels {
                    o[c] = max(max(a[c], a[channels + c]), max(b[c], b[channels + c]))
                    c += 1
                }
            }
        }
    }
}

@inline(__always)
private func load16(_ p: UnsafePointer<Int8>) -> SIMD16<Int8> { UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Int8>.self) }

/// Lane-wise maximum with compare + blend (`vpmaxsb` / `smax`), not the generic `pointwiseMax`.
@inline(__always)
private func maximum(_ a: SIMD16<Int8>, _ b: SIMD16<Int8>) -> SIMD16<Int8> { a.replacing(with: b, where: b .> a) }

/// Scalar reference.
public func referenceMaxPool2x2(_ input: [Int8], height: Int, width: Int, channels: Int) -> [Int8] {
    precondition(input.count == height * width * channels)
    let outH = height / 2, outW = width / 2
    var out = [Int8](repeating: 0, count: outH * outW * channels)
    for y in 0..<outH {
        for x in 0..<outW {
            for c in 0..<channels {
                var m = Int8.min
                for dy in 0..<2 { for dx in 0..<2 { m = max(m, input[((2 * y + dy) * width + 2 * x + dx) * channels + c]) } }
                out[(y * outW + x) * channels + c] = m
            }
        }
    }
    return out
}
