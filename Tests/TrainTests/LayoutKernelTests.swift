import FloatMicrokernels
#if arch(x86_64) && compiler(>=6.3)
import FloatMicrokernelsAVX2
#endif
import XCTest

/// The layout kernels (8 channel rows <-> 8-channel pixels) of every instruction set move exactly the
/// values the plain definition names, for strips of full 8-pixel blocks, a tail, and both.
final class LayoutKernelTests: XCTestCase {
    typealias Strip = (UnsafePointer<Float>, Int, UnsafeMutablePointer<Float>, Int, Int) -> Void

    var kernels: [(name: String, toPixels: Strip, toRows: Strip)] {
        let portable: [(String, Strip, Strip)] = [("portable", { FloatMicrokernels.floatChannelRowsToPixels(source: $0, sourceStride: $1, target: $2, targetStride: $3, count: $4) },
                                                               { FloatMicrokernels.floatPixelsToChannelRows(source: $0, sourceStride: $1, target: $2, targetStride: $3, count: $4) })]
        #if arch(x86_64) && compiler(>=6.3)
        return portable + [("avx2", { FloatMicrokernelsAVX2.floatChannelRowsToPixels(source: $0, sourceStride: $1, target: $2, targetStride: $3, count: $4) },
                                    { FloatMicrokernelsAVX2.floatPixelsToChannelRows(source: $0, sourceStride: $1, target: $2, targetStride: $3, count: $4) })]
        #else
        return portable
        #endif
    }

    func testStripsMatchTheDefinition() {
        for (name, toPixels, toRows) in kernels {
            for count in [3, 8, 16, 21] {
                let rowStride = count + 5, pixelStride = 11   // strides wider than the strip: nothing else written
                let rows = (0..<(8 * rowStride)).map { Float($0) * 0.5 - 7 }
                var pixels = [Float](repeating: -1, count: count * pixelStride + 8)
                rows.withUnsafeBufferPointer { r in pixels.withUnsafeMutableBufferPointer { p in
                    toPixels(r.baseAddress!, rowStride, p.baseAddress!, pixelStride, count)
                }}
                for i in 0..<count {
                    for k in 0..<pixelStride where i * pixelStride + k < pixels.count {
                        let expected = k < 8 ? rows[k * rowStride + i] : -1
                        XCTAssertEqual(pixels[i * pixelStride + k], expected, "\(name) to pixels, count \(count), pixel \(i), lane \(k)")
                    }
                }
                var back = [Float](repeating: -1, count: 8 * rowStride)
                pixels.withUnsafeBufferPointer { p in back.withUnsafeMutableBufferPointer { r in
                    toRows(p.baseAddress!, pixelStride, r.baseAddress!, rowStride, count)
                }}
                for k in 0..<8 {
                    for i in 0..<rowStride {
                        XCTAssertEqual(back[k * rowStride + i], i < count ? rows[k * rowStride + i] : -1, "\(name) to rows, count \(count), row \(k), pixel \(i)")
                    }
                }
            }
        }
    }
}
