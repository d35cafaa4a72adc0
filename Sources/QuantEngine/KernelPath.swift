import CPUFeatures
import FloatMicrokernels
import Int8Microkernels
#if arch(x86_64) && compiler(>=6.3)  // as Package.swift builds them
import FloatMicrokernelsAVX2
import FloatMicrokernelsAVX512
import Int8MicrokernelsAVX2
import Int8MicrokernelsAVX512VNNI
#endif
import Foundation

/// The instruction set the engine's kernels run on: the best one this CPU supports, chosen once per process
/// at run time, so one binary is fast on every CPU of its architecture. `SONOQUANT_KERNELS=<name>` forces a
/// path (tests, comparisons); a path the CPU cannot run is an error, never a crash.
///
/// | path | CPU | int8 dense convolution | float |
/// |---|---|---|---|
/// | `portable` | any x86-64 (SSE2) | int16 pairs (`pmaddwd`) | SSE, multiply then add |
/// | `avx2` | AVX2 + FMA (Haswell, Zen 1 and later) | int16 pairs, `vpmaddwd` ymm | AVX2 + FMA |
/// | `avx512-vnni` | AVX-512 VNNI (Cascade Lake, Ice Lake, Zen 4 and later) | 4-way u8 x s8, `vpdpbusd` ymm | AVX2 + FMA |
/// | `neon` | any arm64 | int16 widening `smlal` | NEON fused multiply-add |
///
/// The float kernels of the VNNI path are the AVX2 ones: built for an AVX-512 CPU they ran 8-12% slower.
public enum KernelPath: String, CaseIterable, Sendable {
    case portable
    case avx2
    case avx512VNNI = "avx512-vnni"
    case neon

    /// The environment variable that forces a path.
    public static let environmentVariable = "SONOQUANT_KERNELS"

    /// The paths of this binary's architecture, slowest first.
    public static var built: [KernelPath] {
        #if arch(x86_64) && compiler(>=6.3)
        return [.portable, .avx2, .avx512VNNI]
        #elseif arch(x86_64)
        return [.portable]
        #else
        return [.neon]
        #endif
    }

    /// The paths this CPU can run, slowest first.
    public static var supported: [KernelPath] {
        let features = sonoquant_cpu_features()
        return built.filter { path in
            switch path {
            case .portable, .neon: return true
            case .avx2: return features & UInt32(SONOQUANT_CPU_AVX2_FMA) != 0
            case .avx512VNNI: return features & UInt32(SONOQUANT_CPU_AVX512_VNNI) != 0
            }
        }
    }

    /// The path for this process: `SONOQUANT_KERNELS` if set (and valid), else the fastest supported one.
    public static func select(environment: [String: String]) throws -> KernelPath {
        guard let forced = environment[environmentVariable], !forced.isEmpty else { return supported.last! }
        guard let path = KernelPath(rawValue: forced), built.contains(path) else {
            throw SonoQuantError("\(environmentVariable)=\(forced)", "not a kernel path of this binary (one of: \(built.map(\.rawValue).joined(separator: ", ")))")
        }
        guard supported.contains(path) else {
            throw SonoQuantError("\(environmentVariable)=\(forced)", "this CPU cannot run it (it supports: \(supported.map(\.rawValue).joined(separator: ", ")))")
        }
        return path
    }

    /// The path chosen for this process (see `select`); a bad `SONOQUANT_KERNELS` falls back to the best
    /// supported path here, and `checkEnvironment()` (called by the command-line tool first) reports it.
    public static let current: KernelPath = (try? select(environment: ProcessInfo.processInfo.environment)) ?? supported.last!

    /// Throws the one-line error for a `SONOQUANT_KERNELS` that names no usable path.
    public static func checkEnvironment() throws { _ = try select(environment: ProcessInfo.processInfo.environment) }

    /// Whether the int8 dense convolutions use the 4-way dot-product kernel (`Int8DotProductConv`).
    var hasInt8DotProduct: Bool { self == .avx512VNNI }
}

/// The int8 microkernels of one path, as function values (one indirect call per output row and chunk).
struct Int8KernelTable {
    typealias Int16GemmRow<Weight> = (_ pixels: UnsafePointer<Int16>, _ pixelStride: Int, _ count: Int, _ weights: UnsafePointer<Weight>,
                                      _ groups: Int, _ groupStride: Int, _ segmentOffsets: UnsafePointer<Int>, _ segments: Int,
                                      _ chunks: Int, _ sums: UnsafeMutablePointer<Int32>, _ sumsStride: Int) -> Void
    typealias RequantizeRow = (_ sums: UnsafePointer<Int32>, _ pixels: Int, _ valid: Int, _ output: UnsafeMutablePointer<Int8>,
                               _ pixelStride: Int, _ bias: UnsafePointer<Int32>, _ multiplier: UnsafePointer<Int32>,
                               _ leftShift: UnsafePointer<Int32>, _ rightShift: UnsafePointer<Int32>, _ needsLeftShift: Bool,
                               _ zeroPoint: Int32, _ min: Int32, _ max: Int32) -> Void
    typealias UInt8DotGemmRow = (_ pixels: UnsafePointer<UInt8>, _ pixelStride: Int, _ count: Int, _ weights: UnsafePointer<Int8>,
                                 _ segmentOffsets: UnsafePointer<Int>, _ segments: Int, _ steps: Int,
                                 _ sums: UnsafeMutablePointer<Int32>, _ sumsStride: Int) -> Void

    typealias SingleOutputRow = (_ rows: UnsafePointer<UInt8>, _ rowBytes: Int, _ groupBytes: Int, _ groups: Int, _ kernel: Int,
                                 _ count: Int, _ weights: UnsafePointer<Int32>, _ sums: UnsafeMutablePointer<Int32>, _ sumsStride: Int) -> Void
    typealias Depthwise3x3Row = (_ origin: UnsafePointer<Int16>, _ pixelStride: Int, _ count: Int, _ rowStride: Int, _ channelStride: Int,
                                 _ weights: UnsafePointer<Int32>, _ sums: UnsafeMutablePointer<Int32>) -> Void
    typealias RescaleRun = (_ source: UnsafePointer<Int8>, _ destination: UnsafeMutablePointer<Int8>, _ count: Int, _ inputZeroPoint: Int32,
                            _ multiplier: Int32, _ shift: Int32, _ outputZeroPoint: Int32) -> Void
    typealias AddRun = (_ a: UnsafePointer<Int8>, _ b: UnsafePointer<Int8>, _ count: Int, _ output: UnsafeMutablePointer<Int8>,
                        _ aZeroPoint: Int32, _ aMultiplier: Int32, _ aShift: Int32, _ bZeroPoint: Int32, _ bMultiplier: Int32, _ bShift: Int32,
                        _ outputZeroPoint: Int32, _ outputMultiplier: Int32, _ outputShift: Int32, _ min: Int32, _ max: Int32) -> Void

    let gemmRowInt8Weights: Int16GemmRow<Int8>
    let gemmRowInt16Weights: Int16GemmRow<Int16>
    let requantizeRow: RequantizeRow
    let depthwise3x3Row: Depthwise3x3Row
    let rescaleRun: RescaleRun
    let addRun: AddRun
    /// The 4-way dot-product row (`uint8DotGemmRow`) and its one-output-channel form, on the paths that have them.
    let dotProductGemmRow: UInt8DotGemmRow?
    let dotProductSingleOutputRow: SingleOutputRow?

    static func of(_ path: KernelPath) -> Int8KernelTable {
        switch path {
        case .portable, .neon:
            return Int8KernelTable(gemmRowInt8Weights: Int8Microkernels.int16GemmRow, gemmRowInt16Weights: Int8Microkernels.int16GemmRow,
                                    requantizeRow: Int8Microkernels.requantizeRow,
                                   depthwise3x3Row: Int8Microkernels.depthwise3x3Row, rescaleRun: Int8Microkernels.rescaleRun, addRun: Int8Microkernels.addRun, dotProductGemmRow: nil, dotProductSingleOutputRow: nil)
        #if arch(x86_64) && compiler(>=6.3)
        case .avx2:
            return Int8KernelTable(gemmRowInt8Weights: Int8MicrokernelsAVX2.int16GemmRow, gemmRowInt16Weights: Int8MicrokernelsAVX2.int16GemmRow,
                                    requantizeRow: Int8MicrokernelsAVX2.requantizeRow,
                                   depthwise3x3Row: Int8MicrokernelsAVX2.depthwise3x3Row, rescaleRun: Int8MicrokernelsAVX2.rescaleRun, addRun: Int8MicrokernelsAVX2.addRun, dotProductGemmRow: nil, dotProductSingleOutputRow: nil)
        case .avx512VNNI:
            return Int8KernelTable(gemmRowInt8Weights: Int8MicrokernelsAVX512VNNI.int16GemmRow,
                                    gemmRowInt16Weights: Int8MicrokernelsAVX512VNNI.int16GemmRow,
                                    requantizeRow: Int8MicrokernelsAVX512VNNI.requantizeRow,
                                   depthwise3x3Row: Int8MicrokernelsAVX512VNNI.depthwise3x3Row, rescaleRun: Int8MicrokernelsAVX512VNNI.rescaleRun, addRun: Int8MicrokernelsAVX512VNNI.addRun,
                                    dotProductGemmRow: Int8MicrokernelsAVX512VNNI.uint8DotGemmRow,
                                   dotProductSingleOutputRow: Int8MicrokernelsAVX512VNNI.uint8DotSingleOutputRow)
        #else
        case .avx2, .avx512VNNI:
            preconditionFailure("\(path.rawValue) is not built into this binary")
        #endif
        }
    }
}

/// The float microkernels of one path.
struct FloatKernelTable {
    typealias DenseTile = (_ inputs: UnsafePointer<UnsafePointer<Float>>, _ outputs: UnsafePointer<UnsafeMutablePointer<Float>>, _ valid: Int,
                           _ weights: UnsafePointer<SIMD8<Float>>, _ blocks: Int, _ bias: UnsafePointer<SIMD8<Float>>,
                           _ taps: UnsafePointer<Int>, _ tapCount: Int, _ inChannels: Int, _ channelStart: Int, _ channelEnd: Int,
                           _ outputLanes: Int, _ accumulate: Bool, _ finish: Bool, _ lower: Float, _ upper: Float) -> Void
    typealias Depthwise3x3Row = (_ input: UnsafePointer<Float>, _ inputStep: Int, _ output: UnsafeMutablePointer<Float>, _ outputStep: Int,
                                 _ count: Int, _ taps: UnsafePointer<Int>, _ weights: UnsafePointer<SIMD8<Float>>, _ bias: SIMD8<Float>,
                                 _ lower: Float, _ upper: Float) -> Void

    typealias WinogradInputRow = (_ patch: UnsafePointer<Float>, _ rowStride: Int, _ channels: Int, _ count: Int,
                                  _ transformed: UnsafeMutablePointer<Float>, _ plane: Int) -> Void
    typealias WinogradOutputRow = (_ products: UnsafePointer<Float>, _ plane: Int, _ channels: Int, _ count: Int,
                                   _ bias: UnsafePointer<SIMD8<Float>>, _ top: UnsafeMutablePointer<Float>, _ rowStride: Int,
                                   _ lower: Float, _ upper: Float) -> Void

    let denseTile: DenseTile
    /// The widest panel `denseTile` takes, in 8-lane blocks (`floatDenseTileBlocks`).
    let denseTileBlocks: Int
    /// Where the path has it, a tile of 12 pixels for panels of 2 blocks (`floatDenseTile12x16`, AVX-512).
    var denseTile12x16: DenseTile? = nil
    let depthwise3x3Row: Depthwise3x3Row
    let winogradInputRow: WinogradInputRow
    let winogradOutputRow: WinogradOutputRow

    static func of(_ path: KernelPath) -> FloatKernelTable {
        switch path {
        case .portable, .neon:
            return FloatKernelTable(denseTile: FloatMicrokernels.floatDenseTile, denseTileBlocks: FloatMicrokernels.floatDenseTileBlocks,
                                    depthwise3x3Row: FloatMicrokernels.floatDepthwise3x3Row,
                                    winogradInputRow: FloatMicrokernels.floatWinogradInputRow,
                                    winogradOutputRow: FloatMicrokernels.floatWinogradOutputRow)
        #if arch(x86_64) && compiler(>=6.3)
        case .avx2:
            return FloatKernelTable(denseTile: FloatMicrokernelsAVX2.floatDenseTile, denseTileBlocks: FloatMicrokernelsAVX2.floatDenseTileBlocks,
                                    depthwise3x3Row: FloatMicrokernelsAVX2.floatDepthwise3x3Row,
                                    winogradInputRow: FloatMicrokernelsAVX2.floatWinogradInputRow,
                                    winogradOutputRow: FloatMicrokernelsAVX2.floatWinogradOutputRow)
        case .avx512VNNI:
            return FloatKernelTable(denseTile: FloatMicrokernelsAVX512.floatDenseTile, denseTileBlocks: FloatMicrokernelsAVX512.floatDenseTileBlocks,
                                    denseTile12x16: FloatMicrokernelsAVX512.floatDenseTile12x16,
                                    depthwise3x3Row: FloatMicrokernelsAVX512.floatDepthwise3x3Row,
                                    winogradInputRow: FloatMicrokernelsAVX512.floatWinogradInputRow,
                                    winogradOutputRow: FloatMicrokernelsAVX512.floatWinogradOutputRow)
        #else
        case .avx2, .avx512VNNI:
            preconditionFailure("\(path.rawValue) is not built into this binary")
        #endif
        }
    }
}
