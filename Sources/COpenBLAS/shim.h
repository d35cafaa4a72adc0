// The OpenBLAS entry points the trainer uses, declared here rather than through <cblas.h>, whose
// location differs between Debian's OpenBLAS variants (pthread / openmp / serial) and architectures.
// Only the Train target links this; QuantEngine (the deployable engine) stays free of it.
#ifndef SONOQUANT_COPENBLAS_SHIM_H
#define SONOQUANT_COPENBLAS_SHIM_H

enum CBLAS_ORDER { CblasRowMajor = 101, CblasColMajor = 102 };
enum CBLAS_TRANSPOSE { CblasNoTrans = 111, CblasTrans = 112, CblasConjTrans = 113 };

void cblas_sgemm(const enum CBLAS_ORDER Order, const enum CBLAS_TRANSPOSE TransA,
                 const enum CBLAS_TRANSPOSE TransB, const int M, const int N, const int K,
                 const float alpha, const float *A, const int lda, const float *B, const int ldb,
                 const float beta, float *C, const int ldc);

void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
/// The name of the kernel set OpenBLAS chose for this CPU when it loaded ("Haswell", "Prescott", ...).
char *openblas_get_corename(void);

#endif
