/// Lane-width conversions for the int8 kernels, written lane by lane.
///
/// Compiled once per instruction set (see Int16DotTiles.swift): nothing here may name its module.
///
/// The standard library's `SIMDn<T>(truncatingIfNeeded:)` between integer vectors reached the hot loops
/// of this module as out-of-line calls to generic specialisations (seen in the x86-64 assembly of the
/// depthwise kernel: 12 calls per 16 channels). LLVM turns these explicit forms into single
/// `vpmovsx*` / pack instructions instead.

/// Sign-extends 8 int16 lanes to int32.
@inlinable @inline(__always)
public func widenToInt32(_ v: SIMD8<Int16>) -> SIMD8<Int32> {
    SIMD8<Int32>(Int32(v[0]), Int32(v[1]), Int32(v[2]), Int32(v[3]), Int32(v[4]), Int32(v[5]), Int32(v[6]), Int32(v[7]))
}

/// Sign-extends 8 int8 lanes to int32.
@inlinable @inline(__always)
public func widenToInt32(_ v: SIMD8<Int8>) -> SIMD8<Int32> {
    SIMD8<Int32>(Int32(v[0]), Int32(v[1]), Int32(v[2]), Int32(v[3]), Int32(v[4]), Int32(v[5]), Int32(v[6]), Int32(v[7]))
}

/// Sign-extends 16 int8 lanes to int16.
@inlinable @inline(__always)
public func widenToInt16(_ v: SIMD16<Int8>) -> SIMD16<Int16> {
    SIMD16<Int16>(Int16(v[0]), Int16(v[1]), Int16(v[2]), Int16(v[3]), Int16(v[4]), Int16(v[5]), Int16(v[6]), Int16(v[7]),
                  Int16(v[8]), Int16(v[9]), Int16(v[10]), Int16(v[11]), Int16(v[12]), Int16(v[13]), Int16(v[14]), Int16(v[15]))
}

/// Keeps the low 8 bits of each int32 lane (callers have already clamped to the int8 range).
@inlinable @inline(__always)
public func narrowToInt8(_ v: SIMD8<Int32>) -> SIMD8<Int8> {
    SIMD8<Int8>(Int8(truncatingIfNeeded: v[0]), Int8(truncatingIfNeeded: v[1]), Int8(truncatingIfNeeded: v[2]), Int8(truncatingIfNeeded: v[3]),
                Int8(truncatingIfNeeded: v[4]), Int8(truncatingIfNeeded: v[5]), Int8(truncatingIfNeeded: v[6]), Int8(truncatingIfNeeded: v[7]))
}
