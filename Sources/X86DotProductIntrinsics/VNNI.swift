// The AVX-512 VNNI int8 dot product, which no Swift (or C) source shape makes LLVM 21 emit on its own:
// this module is compiled with -parse-stdlib to reach the LLVM intrinsic through `Builtin`, and for a CPU
// that has the instruction (-target-cpu cascadelake, Package.swift). It reads SIMD8's storage through the
// standard library's underscored `_storage._value`, which every supported toolchain is tested with.
import Swift

/// acc + (for each of the 8 int32 lanes) the 4 products of that lane's bytes: unsigned bytes of `u8x4`
/// times signed bytes of `s8x4`, summed with acc wrapping (`vpdpbusd ymm`, not the saturating `vpdpbusds`).
///
/// `@_transparent`: inlined into the caller's module, which must itself be compiled for a VNNI CPU.
@_transparent
public func dotProductAccumulate(_ acc: SIMD8<Int32>, unsignedBytes u8x4: SIMD8<Int32>, signedBytes s8x4: SIMD8<Int32>) -> SIMD8<Int32> {
    var result = acc
    result._storage._value = Builtin.int_x86_avx512_vpdpbusd_256(acc._storage._value, u8x4._storage._value, s8x4._storage._value)
    return result
}

/// The same on 16 int32 lanes (`vpdpbusd zmm`): the 512-bit form, which CPUs with full-width AVX-512 units
/// (Zen 5, Intel server cores) run at the rate of the 256-bit one, so twice the products per cycle.
@_transparent
public func dotProductAccumulate(_ acc: SIMD16<Int32>, unsignedBytes u8x4: SIMD16<Int32>, signedBytes s8x4: SIMD16<Int32>) -> SIMD16<Int32> {
    var result = acc
    result._storage._value = Builtin.int_x86_avx512_vpdpbusd_512(acc._storage._value, u8x4._storage._value, s8x4._storage._value)
    return result
}
