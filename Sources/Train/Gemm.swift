import COpenBLAS
import QuantEngine

/// Single-precision matrix multiply through OpenBLAS, row-major:
/// C[M][N] = op(A)[M][K] * op(B)[K][N] + beta * C, where op transposes when asked.
///
/// The trainer's 1x1 convolutions and the weight gradients of its 3x3 ones are GEMMs. OpenBLAS runs
/// single-threaded (`useSingleThreadedGemm`) and the threads are ours: C is cut into one column (or row) band
/// per thread, each one OpenBLAS call on the engine's worker pool (each call packs its own copy of the
/// shared operand, so more, smaller bands cost more packing). OpenBLAS's
/// own thread server would keep two more threads spinning in sched_yield between GEMMs, on cores that the
/// worker pool needs for everything else (about 12% of a training step's cycles, perf profile of full-ft).
/// Every C element is one dot product over the whole K, and the cut depends only on the shape and the
/// thread count, so results are the same on every run.
func sgemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
           _ a: UnsafePointer<Float>, lda: Int, _ b: UnsafePointer<Float>, ldb: Int,
           beta: Float, _ c: UnsafeMutablePointer<Float>, ldc: Int, threads: Int) {
    _ = openBLASSingleThreaded
    // Panels of 64 columns or 16 rows keep OpenBLAS's register tiles whole.
    let columnPanels = (n + 63) / 64, rowPanels = (m + 15) / 16
    if threads <= 1 || max(columnPanels, rowPanels) < 2 {
        sgemmCall(transposeA, transposeB, m, n, k, a, lda, b, ldb, beta, c, ldc)
    } else if columnPanels >= rowPanels {
        let parts = min(threads, columnPanels)
        parallelChunks(parts, threads: threads) { chunk in
            for part in chunk {
                let first = columnPanels * part / parts * 64, end = min(n, columnPanels * (part + 1) / parts * 64)
                sgemmCall(transposeA, transposeB, m, end - first, k, a, lda, transposeB ? b + first * ldb : b + first, ldb, beta, c + first, ldc)
            }
        }
    } else {
        let parts = min(threads, rowPanels)
        parallelChunks(parts, threads: threads) { chunk in
            for part in chunk {
                let first = rowPanels * part / parts * 16, end = min(m, rowPanels * (part + 1) / parts * 16)
                sgemmCall(transposeA, transposeB, end - first, n, k, transposeA ? a + first : a + first * lda, lda, b, ldb, beta, c + first * ldc, ldc)
            }
        }
    }
}

@inline(__always)
private func sgemmCall(_ transposeA: Bool, _ transposeB: Bool, _ m: Int, _ n: Int, _ k: Int,
                       _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int,
                       _ beta: Float, _ c: UnsafeMutablePointer<Float>, _ ldc: Int) {
    cblas_sgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                Int32(m), Int32(n), Int32(k), 1, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
}

/// Set once, before the first GEMM of the process (a global's initializer runs exactly once).
private let openBLASSingleThreaded: Void = openblas_set_num_threads(1)
