/// int8 transposed convolution, kernel 2, stride 2 (PyTorch `ConvTranspose2d(cin, cout, 2, stride=2)`):
///
///     acc[2y + dy][2x + dx][o] = bias[o] + sum_c (x[y][x][c] - zp_in) * W[c][o][dy][dx]
///
/// then the same fixed-point requantization as every int8 conv (per-channel multiplier s_in * s_w[o] / s_out,
/// output zero point, clamp; docs/QUANTIZATION.md).
///
/// Method: as the float kernel (FloatKernels/TransposedConv.swift). In NHWC, output row 2y + dy is W pixels
/// of 2 x cout channels (channel dx * cout + o is output pixel (2y + dy, 2x + dx), channel o), so each
/// dy is a 1x1 `Int8DenseConv` cin -> 2 cout over the input image whose output rows are every other row
/// of the real output (`outputRowStride`). Both share one staging of the input; the sums are exact int32,
/// so the result equals `referenceQuantizedTransposedConv` bit for bit.
public final class Int8TransposedConv2x2 {
    public let inChannels: Int
    public let outChannels: Int
    /// dy = 0 and 1.
    let rows: [Int8DenseConv]

    public init(_ p: QuantizedConvParameters, path: KernelPath = .current) {
        precondition(p.kind == .transposed && p.kernel == 2 && p.stride == 2, "Int8TransposedConv2x2: needs a 2x2 stride-2 transposed conv")
        inChannels = p.inChannels
        outChannels = p.outChannels
        rows = (0..<2).map { dy in Int8DenseConv(Self.row(p, dy: dy), path: path) }
    }

    /// Output row dy as a 1x1 conv cin -> 2 cout: weight [dx * cout + o][c] = W[c][o][dy][dx]; bias and
    /// multipliers repeated for dx = 0, 1.
    static func row(_ p: QuantizedConvParameters, dy: Int) -> QuantizedConvParameters {
        let (cin, cout) = (p.inChannels, p.outChannels)
        var weights = [Int8](repeating: 0, count: 2 * cout * cin)
        for dx in 0..<2 {
            for o in 0..<cout {
                for c in 0..<cin { weights[(dx * cout + o) * cin + c] = p.weights[((c * cout + o) * 2 + dy) * 2 + dx] }
            }
        }
        return QuantizedConvParameters(kind: .standard, kernel: 1, stride: 1, inChannels: cin, outChannels: 2 * cout, weights: weights,
                                       bias: p.bias + p.bias, multipliers: p.multipliers + p.multipliers, inputZeroPoint: p.inputZeroPoint,
                                       outputZeroPoint: p.outputZeroPoint, outputMin: p.outputMin, outputMax: p.outputMax)
    }

    public func outputSize(_ n: Int) -> Int { 2 * n }

    /// Int16 scratch elements `run` needs for an input of this size (the staged input).
    public func scratchCount(height: Int, width: Int) -> Int { rows[0].scratchCount(height: height, width: width) }

    /// input: [height][width][inChannels] int8; output: [2 height][2 width][outChannels] int8.
    public func run(input: UnsafePointer<Int8>, height: Int, width: Int, output: UnsafeMutablePointer<Int8>,
                    scratch: UnsafeMutablePointer<Int16>, threads: Int, inputZeroPoint: Int32) {
        let outputRow = 2 * width * outChannels
        for dy in 0..<2 {
            rows[dy].run(input: input, height: height, width: width, output: output + dy * outputRow, scratch: scratch, threads: threads,
                         inputZeroPoint: inputZeroPoint, outputRowStride: 2 * outputRow, inputIsStaged: dy == 1)
        }
    }
}
