/// Moving an int8 tensor from one (scale, zero point) to another in fixed point, as TFLite's ADD and
/// CONCATENATION do: (x - zp_in) is first shifted left by 20 bits (|x - zp_in| <= 255, so it stays
/// below 2^28) to keep precision through the first rounding, then multiplied by
/// M = s_in / (s_out * 2^20) < 1, the output zero point added and the result clamped.
public struct Int8Rescale: Equatable, Sendable {
    public static let leftShift: Int32 = 20
    public let inputZeroPoint: Int32
    public let multiplier: QuantizedMultiplier
    public let outputZeroPoint: Int32
    /// True when input and output quantization are the same: a plain copy.
    public let isIdentity: Bool

    public init(inputScale: Float, inputZeroPoint: Int32, outputScale: Float, outputZeroPoint: Int32) {
        self.inputZeroPoint = inputZeroPoint
        self.outputZeroPoint = outputZeroPoint
        multiplier = QuantizedMultiplier(Double(inputScale) / (Double(outputScale) * pow2(Int(Self.leftShift))))
        isIdentity = inputScale == outputScale && inputZeroPoint == outputZeroPoint
    }

    /// The scalar reference.
    @inline(__always)
    public func apply(_ x: Int8) -> Int8 {
        if isIdentity { return x }
        let shifted = (Int32(x) - inputZeroPoint) << Self.leftShift
        return requantize(shifted, multiplier: multiplier.multiplier, shift: multiplier.shift, zeroPoint: outputZeroPoint, min: -128, max: 127)
    }
}

extension Int8Rescale {
    /// dst[i] = apply(src[i]) for i in 0..<count, on the given path's kernel (a copy when the rescale is the identity).
    @inline(__always)
    func run(_ src: UnsafePointer<Int8>, _ dst: UnsafeMutablePointer<Int8>, count: Int, _ kernels: Int8KernelTable) {
        if isIdentity {
            dst.update(from: src, count: count)
        } else {
            kernels.rescaleRun(src, dst, count, inputZeroPoint, multiplier.multiplier, multiplier.shift, outputZeroPoint)
        }
    }
}
