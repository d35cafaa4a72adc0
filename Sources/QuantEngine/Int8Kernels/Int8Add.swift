/// int8 residual add with TFLite's fixed-point semantics: both inputs are rescaled to a common
/// intermediate scale 2 * max(s_a, s_b) / 2^20 (each with its own multiplier < 1), summed in int32, and the
/// sum rescaled to the output scale; the output zero point is added and the result clamped.
public struct Int8AddParameters: Equatable {
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

/// output[i] = p.add(a[i], b[i]); eight lanes at a time, split across threads.
public func int8Add(_ a: UnsafePointer<Int8>, _ b: UnsafePointer<Int8>, count: Int, output: UnsafeMutablePointer<Int8>,
                    _ p: Int8AddParameters, threads: Int) {
    @inline(__always) func vector(_ m: QuantizedMultiplier) -> (SIMD8<Int32>, SIMD8<Int32>, SIMD8<Int32>) {
        (SIMD8(repeating: m.multiplier), SIMD8(repeating: max(m.shift, 0)), SIMD8(repeating: max(-m.shift, 0)))
    }
    let (am, al, ar) = vector(p.aMultiplier), (bm, bl, br) = vector(p.bMultiplier), (om, ol, or) = vector(p.outputMultiplier)
    let azp = SIMD8<Int32>(repeating: p.aZeroPoint), bzp = SIMD8<Int32>(repeating: p.bZeroPoint), ozp = SIMD8<Int32>(repeating: p.outputZeroPoint)
    let lo = SIMD8<Int32>(repeating: p.outputMin), hi = SIMD8<Int32>(repeating: p.outputMax)
    let vectors = count / 8
    parallelChunks(vectors, threads: threads) { range in
        for v in range {
            let i = v * 8
            let x = widenToInt32(UnsafeRawPointer(a + i).loadUnaligned(as: SIMD8<Int8>.self))
            let y = widenToInt32(UnsafeRawPointer(b + i).loadUnaligned(as: SIMD8<Int8>.self))
            let x1 = multiplyByQuantizedMultiplier((x &- azp) &<< Int8AddParameters.leftShift, multiplier: am, leftShift: al, rightShift: ar)
            let y1 = multiplyByQuantizedMultiplier((y &- bzp) &<< Int8AddParameters.leftShift, multiplier: bm, leftShift: bl, rightShift: br)
            let q = requantize(x1 &+ y1, multiplier: om, leftShift: ol, rightShift: or, zeroPoint: ozp, min: lo, max: hi)
            UnsafeMutableRawPointer(output + i).storeBytes(of: q, as: SIMD8<Int8>.self)
        }
    }
    for i in (vectors * 8)..<count { output[i] = p.add(a[i], b[i]) }
}
