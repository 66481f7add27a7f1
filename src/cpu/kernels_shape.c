/* CPU kernels for the shape operator family. */
#include "cpu/cpu.h"

const mt_cpu_kernel mt_kernels_shape[] = {
    {NULL, NULL, NULL, NULL, NULL, NULL, 0},
};
