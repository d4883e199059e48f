#include "attend_inst.cuh"
MOBA_GPU_ATTEND_INSTANCE(2, 64)
