import XCTest
import QuantEngine
import Int8Microkernels
import TestSupport

/// Integer helpers on the tests' generator (TestRandom, in TestSupport).
extension TestRandom {
    mutating func int32() -> Int32 { Int32(truncatingIfNeeded: next()) }
    mutating func int8() -> Int8 { Int8(truncatingIfNeeded: next()) }
    mutating func int(_ range: ClosedRange<Int>) -> Int { range.lowerBound + Int(next() % UInt64(range.count)) }
    mutating func unit() -> Double { Double(next() >> 11) / Double(1 << 53) }
}

/// Exact rational references: round(n / 2^e) with ties away from zero, in integers wide enough not to overflow.
private func exactRoundedShift(_ n: Int64, _ e: Int) -> Int64 {
    if e == 0 { return n }
    let magnitude = (n.magnitude + (UInt64(1) << UInt64(e - 1))) >> UInt64(e)
    return n < 0 ? -Int64(magnitude) : Int64(magnitude)
}

final class FixedPointTests: XCTestCase {
    let edges: [Int32] = [.min, .min + 1, -1 << 30, -65536, -256, -3, -2, -1, 0, 1, 2, 3, 255, 65535, 1 << 30, (1 << 30) + 1, .max - 1, .max]

    func testHighMulMatchesExactRounding() {
        var rng = TestRandom(seed: 1)
        var pairs: [(Int32, Int32)] = []
        for a in edges { for b in edges { pairs.append((a, b)) } }
        for _ in 0..<20_000 { pairs.append((rng.int32(), rng.int32())) }
        for (a, b) in pairs {
            // gemmlowp's nudge-and-truncate equals floor((a*b + 2^30) / 2^31): round half toward +infinity.
            let exact = (Int64(a) * Int64(b) + (1 << 30)) >> 31
            let expected = Int32(clamping: exact)  // only INT32_MIN^2 -> 2^31 saturates
            XCTAssertEqual(saturatingRoundingDoublingHighMul(a, b), expected, "a=\(a) b=\(b)")
        }
        XCTAssertEqual(saturatingRoundingDoublingHighMul(.min, .min), .max)
        // Ties: 2^30 * 1 / 2^31 = 0.5 -> 1; -0.5 -> 0; -1.5 -> -1 (half up, like ARM's SQRDMULH).
        XCTAssertEqual(saturatingRoundingDoublingHighMul(1 << 30, 1), 1)
        XCTAssertEqual(saturatingRoundingDoublingHighMul(-(1 << 30), 1), 0)
        XCTAssertEqual(saturatingRoundingDoublingHighMul(-(1 << 30), 3), -1)
        XCTAssertEqual(saturatingRoundingDoublingHighMul((1 << 30) - 1, 1), 0)
    }

    func testRoundingDivideByPOTMatchesExactRounding() {
        var rng = TestRandom(seed: 2)
        var values = edges
        for _ in 0..<5_000 { values.append(rng.int32()) }
        for x in values {
            for e in Int32(0)...31 {
                XCTAssertEqual(roundingDivideByPOT(x, e), Int32(exactRoundedShift(Int64(x), Int(e))), "x=\(x) e=\(e)")
            }
        }
        XCTAssertEqual(roundingDivideByPOT(5, 1), 3)     // 2.5 -> 3
        XCTAssertEqual(roundingDivideByPOT(-5, 1), -3)   // -2.5 -> -3
        XCTAssertEqual(roundingDivideByPOT(-6, 2), -2)   // -1.5 -> -2
        XCTAssertEqual(roundingDivideByPOT(.min, 31), -1)
        XCTAssertEqual(roundingDivideByPOT(.max, 31), 1)
    }

    func testSaturatingLeftShift() {
        XCTAssertEqual(saturatingLeftShift(1, 31), .max)
        XCTAssertEqual(saturatingLeftShift(-1, 31), .min)
        XCTAssertEqual(saturatingLeftShift(-3, 4), -48)
        XCTAssertEqual(saturatingLeftShift(1 << 20, 11), .max)
        XCTAssertEqual(saturatingLeftShift(1 << 19, 11), 1 << 30)
        XCTAssertEqual(saturatingLeftShift(-(1 << 20), 11), .min)
        XCTAssertEqual(saturatingLeftShift(-(1 << 20) - 1, 11), .min)
        XCTAssertEqual(saturatingLeftShift(.min, 0), .min)
    }

    func testQuantizedMultiplierDecomposition() {
        XCTAssertEqual(QuantizedMultiplier(0), QuantizedMultiplier(multiplier: 0, shift: 0))
        XCTAssertEqual(QuantizedMultiplier(0.5), QuantizedMultiplier(multiplier: 1 << 30, shift: 0))
        XCTAssertEqual(QuantizedMultiplier(1), QuantizedMultiplier(multiplier: 1 << 30, shift: 1))
        XCTAssertEqual(QuantizedMultiplier(0.25), QuantizedMultiplier(multiplier: 1 << 30, shift: -1))
        // Mantissa that rounds up to 2^31 renormalises to 2^30 with the exponent raised.
        XCTAssertEqual(QuantizedMultiplier(1 - 1e-12), QuantizedMultiplier(multiplier: 1 << 30, shift: 1))
        // Too small to represent: zero.
        XCTAssertEqual(QuantizedMultiplier(1e-20), QuantizedMultiplier(multiplier: 0, shift: 0))
        var rng = TestRandom(seed: 3)
        for _ in 0..<2_000 {
            let real = pow(2, rng.unit() * 40 - 30)
            let m = QuantizedMultiplier(real)
            XCTAssertGreaterThanOrEqual(m.multiplier, 1 << 30)
            XCTAssertEqual(m.realValue, real, accuracy: real * 1e-9)
        }
    }

    func testMultiplyByQuantizedMultiplierIsWithinOneOfTheRealProduct() {
        var rng = TestRandom(seed: 4)
        for _ in 0..<20_000 {
            let x = Int32(truncatingIfNeeded: Int64(rng.int32()) >> rng.int(0...24))
            let real = pow(2, rng.unit() * 24 - 20)
            let m = QuantizedMultiplier(real)
            let got = Double(multiplyByQuantizedMultiplier(x, m))
            let exact = Double(x) * real
            // The left shift (for M >= 1) saturates before the multiply, as in TFLite; only check where it does not.
            if abs(Double(x) * pow(2, Double(max(m.shift, 0)))) < 2_147_483_647 { XCTAssertLessThanOrEqual(abs(got - exact), 1.0 + abs(exact) * 1e-9, "x=\(x) M=\(real)") }
        }
    }

    func testSIMDMatchesScalarBitForBit() {
        var rng = TestRandom(seed: 5)
        for round in 0..<4_000 {
            var x = SIMD8<Int32>(), m = SIMD8<Int32>(), shift = SIMD8<Int32>(), zp = SIMD8<Int32>()
            for lane in 0..<8 {
                x[lane] = round < 300 ? edges[rng.int(0...(edges.count - 1))] : Int32(truncatingIfNeeded: Int64(rng.int32()) >> rng.int(0...31))
                m[lane] = round < 100 ? edges[rng.int(0...(edges.count - 1))] : Int32(1 << 30) + Int32(rng.int(0...(1 << 30 - 1)))
                shift[lane] = Int32(rng.int(-31...31))
                zp[lane] = Int32(rng.int(-128...127))
            }
            let left = shift.replacing(with: 0, where: shift .< 0), right = (0 &- shift).replacing(with: 0, where: shift .> 0)
            let high = saturatingRoundingDoublingHighMul(x, m)
            let divided = roundingDivideByPOT(x, right)
            let shifted = saturatingLeftShift(x, left)
            let lo = SIMD8<Int32>(repeating: -128), hi = SIMD8<Int32>(repeating: 127)
            let q = requantize(x, multiplier: m, leftShift: left, rightShift: right, zeroPoint: zp, min: lo, max: hi)
            // The no-left-shift form must equal the general one whenever every shift is <= 0.
            let rightOnly = requantize(x, multiplier: m, rightShift: right, zeroPoint: zp, min: lo, max: hi)
            let general = requantize(x, multiplier: m, leftShift: SIMD8<Int32>(repeating: 0), rightShift: right, zeroPoint: zp, min: lo, max: hi)
            XCTAssertEqual(rightOnly, general)
            for lane in 0..<8 {
                XCTAssertEqual(high[lane], saturatingRoundingDoublingHighMul(x[lane], m[lane]))
                XCTAssertEqual(divided[lane], roundingDivideByPOT(x[lane], right[lane]))
                XCTAssertEqual(shifted[lane], saturatingLeftShift(x[lane], left[lane]))
                XCTAssertEqual(q[lane], requantize(x[lane], multiplier: m[lane], shift: shift[lane], zeroPoint: zp[lane], min: -128, max: 127),
                               "x=\(x[lane]) m=\(m[lane]) shift=\(shift[lane])")
            }
        }
    }

    func testRequantizeClampsAndAddsZeroPoint() {
        let half = QuantizedMultiplier(0.5)
        XCTAssertEqual(requantize(100, multiplier: half.multiplier, shift: half.shift, zeroPoint: -128, min: -128, max: 127), -78)
        XCTAssertEqual(requantize(1000, multiplier: half.multiplier, shift: half.shift, zeroPoint: 0, min: -128, max: 127), 127)
        XCTAssertEqual(requantize(-3, multiplier: half.multiplier, shift: half.shift, zeroPoint: 0, min: -128, max: 127), -1)  // -1.5 -> -1 (high mul: half up)
        XCTAssertEqual(requantize(-3, multiplier: half.multiplier, shift: half.shift - 1, zeroPoint: 0, min: -128, max: 127), -1)  // -0.75 -> -1
        XCTAssertEqual(requantize(.max, multiplier: .max, shift: 31, zeroPoint: 127, min: -128, max: 127), 127)
        XCTAssertEqual(requantize(.min, multiplier: .max, shift: 31, zeroPoint: -128, min: -128, max: 127), -128)
        // A fused ReLU6 as a clamp: [zp, zp + 6/s].
        XCTAssertEqual(requantize(-50, multiplier: half.multiplier, shift: half.shift, zeroPoint: -128, min: -128, max: 100), -128)
    }
}
