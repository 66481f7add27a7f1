/* CPU kernels for the nn operator family. */
#include "cpu/cpu.h"

const mt_cpu_kernel mt_kernels_nn[] = {
    {NULL, NULL, NULL, NULL, NULL, NULL, 0},
};
