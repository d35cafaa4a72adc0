/// int8 channel concatenation [a, b] (NHWC: per pixel, a's channels then b's), each input rescaled to
/// the output's quantization with `Int8Rescale` (a plain copy when they already match).
public func int8Concat(_ a: UnsafePointer<Int8>, channelsA: Int, _ b: UnsafePointer<Int8>, channelsB: Int, pixels: Int,
                       output: UnsafeMutablePointer<Int8>, rescaleA: Int8Rescale, rescaleB: Int8Rescale, threads: Int,
                       path: KernelPath = .current) {
    let channels = channelsA + channelsB
    let kernels = Int8KernelTable.of(path)
    parallelChunks(pixels, threads: threads) { range in
        for p in range {
            rescaleA.run(a + p * channelsA, output + p * channels, count: channelsA, kernels)
            rescaleB.run(b + p * channelsB, output + p * channels + channelsA, count: channelsB, kernels)
        }
    }
}

/// Scalar reference.
public func referenceConcat(_ a: [Int8], channelsA: Int, _ b: [Int8], channelsB: Int, rescaleA: Int8Rescale, rescaleB: Int8Rescale) -> [Int8] {
    let pixels = a.count / channelsA
    precondition(a.count == pixels * channelsA && b.count == pixels * channelsB)
    var out: [Int8] = []
    out.reserveCapacity(a.count + b.count)
    for p in 0..<pixels {
        for c in 0..<channelsA { out.append(rescaleA.apply(a[p * channelsA + c])) }
        for c in 0..<channelsB { out.append(rescaleB.apply(b[p * channelsB + c])) }
    }
    return out
}
