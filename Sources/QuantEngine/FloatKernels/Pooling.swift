import FloatMicrokernels

/// 2x2 max-pool, stride 2 (PyTorch `MaxPool2d(2)`): output pixel (y, x) = the channel-wise maximum of
/// input pixels (2y, 2x), (2y, 2x + 1), (2y + 1, 2x), (2y + 1, 2x + 1). An odd last row or column is
/// dropped (floor), as PyTorch does.
///
/// NHWC makes the four pixels four runs of `channels` floats: eight channels at a time, three vector
/// maxima per output vector.
public func maxPool2x2(_ input: FeatureMap, output: FeatureMap, threads: Int) {
    precondition(output.height == input.height / 2 && output.width == input.width / 2 && output.channels == input.channels
                 && output.images == input.images, "maxPool2x2: output is not half the input")
    let channels = input.channels
    let vectorChannels = channels & ~7
    parallelChunks(output.images * output.height, threads: threads) { rows in
        for row in rows {
            let n = row / output.height, y = row % output.height
            let top = UnsafePointer(input.pointer + input.offset(n, 2 * y, 0))
            let bottom = UnsafePointer(input.pointer + input.offset(n, 2 * y + 1, 0))
            let out = output.pointer + output.offset(n, y, 0)
            for x in 0..<output.width {
                let a = top + 2 * x * channels, b = bottom + 2 * x * channels
                let o = out + x * channels
                var c = 0
                while c < vectorChannels {
                    let m0 = maximum(loadVector(a + c), loadVector(a + channels + c))
                    let m1 = maximum(loadVector(b + c), loadVector(b + channels + c))
                    storeVector(maximum(m0, m1), o + c)
                    c += 8
                }
                while c < channels {
                    o[c] = Swift.max(Swift.max(a[c], a[channels + c]), Swift.max(b[c], b[channels + c]))
                    c += 1
                }
            }
        }
    }
}

/// Lane-wise maximum with compare + blend (`vmaxps` on AVX2, `fmax` on NEON); the standard library's
/// `pointwiseMax` is generic and may stay an out-of-line call in the loop.
@inline(__always)
func maximum(_ a: FloatVector, _ b: FloatVector) -> FloatVector {
    a.replacing(with: b, where: b .> a)
}

/// Plain-Swift reference.
public func maxPool2x2Reference(_ input: FeatureMap, output: FeatureMap) {
    for n in 0..<output.images { for y in 0..<output.height { for x in 0..<output.width { for c in 0..<output.channels {
        var m = input[n, 2 * y, 2 * x, c]
        for (dy, dx) in [(0, 1), (1, 0), (1, 1)] { m = Swift.max(m, input[n, 2 * y + dy, 2 * x + dx, c]) }
        output[n, y, x, c] = m
    } } } }
}
