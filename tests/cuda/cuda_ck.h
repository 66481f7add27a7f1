/* The CUDA tests' fatal check of a runtime call: prints the error, the call
 * and its place, and exits 1 (the GPU state is unknown after a failure). */
#ifndef MT_TESTS_CUDA_CK_H
#define MT_TESTS_CUDA_CK_H

#include <stdio.h>
#include <stdlib.h>

#include <cuda_runtime_api.h>

#define CK(x)                                                                                       \
    do {                                                                                            \
        cudaError_t e_ = (x);                                                                       \
        if (e_ != cudaSuccess) {                                                                    \
            printf("CUDA error %s at %s:%d: %s\n", cudaGetErrorString(e_), __FILE__, __LINE__, #x); \
            exit(1);                                                                                \
        }                                                                                           \
    } while (0)

#endif
