#include "attend_inst.cuh"
MOBA_GPU_ATTEND_INSTANCE(0, 256)
