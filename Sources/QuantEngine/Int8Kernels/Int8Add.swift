/// int8 residual add with TFLite's fixed-point semantics: both inputs are rescaled to a common
/// intermediate scale 2 * max(s_a, s_b) / 2^20 (each with its own multiplier < 1), summed in int32, and the
/// sum rescaled to the output scale; the output zero point is added and the result clamped.
public struct Int8AddParameters: Equatable, Sendable {
    public static let leftShift: Int32 = 20
    public let aZeroPoint, bZeroPoint, outputZeroPoint: Int32
    public let aMultiplier, bMultiplier, outputMultiplier: QuantizedMultiplier
    public let outputMin, outputMax: Int32

    public init(aScale: Float, aZeroPoint: Int32, bScale: Float, bZeroPoint: Int32, outputScale: Float, outputZeroPoint: Int32,
                outputMin: Int32 = -128, outputMax: Int32 = 127) {
        let twiceMax = 2 * Double(max(aScale, bScale))
        aMultiplier = QuantizedMultiplier(Double(aScale) / twiceMax)
        bMultiplier = QuantizedMultiplier(Double(bScale) / twiceMax)
        outputMultiplier = QuantizedMultiplier(twiceMax / (pow2(Int(Self.leftShift)) * Double(outputScale)))
        self.aZeroPoint = aZeroPoint; self.bZeroPoint = bZeroPoint; self.outputZeroPoint = outputZeroPoint
        self.outputMin = outputMin; self.outputMax = outputMax
    }

    /// The scalar reference for one element.
    @inline(__always)
    public func add(_ a: Int8, _ b: Int8) -> Int8 {
        let a1 = multiplyByQuantizedMultiplier((Int32(a) - aZeroPoint) << Self.leftShift, aMultiplier)
        let b1 = multiplyByQuantizedMultiplier((Int32(b) - bZeroPoint) << Self.leftShift, bMultiplier)
        return requantize(a1 + b1, multiplier: outputMultiplier.multiplier, shift: outputMultiplier.shift,
                          zeroPoint: outputZeroPoint, min: outputMin, max: outputMax)
    }
}

/// Scalar reference over whole tensors.
public func referenceAdd(_ a: [Int8], _ b: [Int8], _ p: Int8AddParameters) -> [Int8] {
    precondition(a.count == b.count)
    return (0..<a.count).map { p.add(a[$0], b[$0]) }
}

/// output[i] = p.add(a[i], b[i]), split across threads, on the given path's kernel.
public func int8Add(_ a: UnsafePointer<Int8>, _ b: UnsafePointer<Int8>, count: Int, output: UnsafeMutablePointer<Int8>,
                    _ p: Int8AddParameters, threads: Int, path: KernelPath = .current) {
    let addRun = Int8KernelTable.of(path).addRun
    // Chunks of whole vectors, so the split does not change which values take the ragged end.
    let vectors = (count + 7) / 8
    parallelChunks(vectors, threads: threads) { range in
        let start = range.lowerBound * 8, end = min(range.upperBound * 8, count)
        addRun(a + start, b + start, end - start, output + start, p.aZeroPoint, p.aMultiplier.multiplier, p.aMultiplier.shift,
               p.bZeroPoint, p.bMultiplier.multiplier, p.bMultiplier.shift, p.outputZeroPoint, p.outputMultiplier.multiplier,
               p.outputMultiplier.shift, p.outputMin, p.outputMax)
    }
}
