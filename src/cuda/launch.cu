// The per-thread launch switch of launch.cuh (programmatic dependent
// launch, tuning.pdl): defined once here, set by the plan before a step.
#include <cuda_runtime.h>

#include "kernels.h"

thread_local int mtk_pdl_on = 0;

extern "C" void mtk_set_pdl(int on) { mtk_pdl_on = on != 0; }
