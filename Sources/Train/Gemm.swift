import COpenBLAS

/// Single-precision matrix multiply through OpenBLAS, row-major:
/// C[M][N] = op(A)[M][K] * op(B)[K][N] + beta * C, where op transposes when asked.
///
/// The trainer's convolutions are GEMMs (1x1 directly, 3x3 after im2col), and they are nearly all of the
/// arithmetic. OpenBLAS threads are set once per run (`setGemmThreads`); with a fixed thread count its
/// sgemm splits work over M and N only (never over K), so results are the same on every run.
@inline(__always)
func sgemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
           _ a: UnsafePointer<Float>, lda: Int, _ b: UnsafePointer<Float>, ldb: Int,
           beta: Float, _ c: UnsafeMutablePointer<Float>, ldc: Int) {
    cblas_sgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                Int32(m), Int32(n), Int32(k), 1, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
}

/// Threads OpenBLAS uses for every following GEMM of this process.
public func setGemmThreads(_ threads: Int) {
    openblas_set_num_threads(Int32(max(1, threads)))
}
