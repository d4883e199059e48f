/* Picks the kernel variant once per process.  Only the generic variant
 * exists so far; MOBA_CPU_ISA=generic is accepted, other names fall back to
 * it (the SIMD variants come with issue 6). */
#include <pthread.h>

#include "cpu_kernels.h"

static const moba_cpu_kernels *chosen;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void choose(void) { chosen = &moba_cpu_kernels_generic; }

const moba_cpu_kernels *moba_cpu_kernels_get(void)
{
    pthread_once(&once, choose);
    return chosen;
}
