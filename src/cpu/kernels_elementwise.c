/* CPU kernels for the elementwise operator family. */
#include "cpu/cpu.h"

const mt_cpu_kernel mt_kernels_elementwise[] = {
    {NULL, NULL, NULL, NULL, NULL, NULL, 0},
};
