/*
 * Picks the kernel variant once per process (BLIS bli_arch.c style).  x86:
 * CPUID says what the CPU has, XGETBV what the OS saves on context switch;
 * a variant needs both, or its first instruction faults.  MOBA_CPU_ISA
 * (through the host's getenv) names a variant instead; if this build or
 * CPU lacks it the choice fails with a reason, never falls back silently.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "cpu_internal.h"
#include "backends/cpu/cpu_isa_config.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

static unsigned long long xgetbv0(void)
{
    unsigned eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((unsigned long long)edx << 32) | eax;
}

/* The tile data state (8 KB) is off until the process asks for it
 * (Linux 5.16+: arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA));
 * without that grant the first tile instruction faults. */
static int amx_permitted(void)
{
#if defined(__linux__) && defined(SYS_arch_prctl)
    return syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */,
                   18 /* XFEATURE_XTILEDATA */) == 0;
#else
    return 0;
#endif
}

static void x86_features(int *avx2, int *avx512, int *bf16, int *amx)
{
    unsigned a, b, c, d;
    *avx2 = *avx512 = *bf16 = *amx = 0;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return;
    int osxsave = (c >> 27) & 1, fma = (c >> 12) & 1, f16c = (c >> 29) & 1;
    if (!osxsave) return;
    unsigned long long xcr0 = xgetbv0();
    int os_avx = (xcr0 & 0x6) == 0x6;        /* SSE + AVX state    */
    int os_avx512 = (xcr0 & 0xe6) == 0xe6;   /* + opmask, ZMM0-31  */
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return;
    int has_avx2 = (b >> 5) & 1, has_avx512f = (b >> 16) & 1;
    int avx512bw = (b >> 30) & 1, amx_bf16 = (d >> 22) & 1, amx_tile = (d >> 24) & 1;
    int os_amx = (xcr0 & 0x60000) == 0x60000; /* XTILECFG + XTILEDATA */
    *avx2 = os_avx && has_avx2 && fma && f16c;
    *avx512 = *avx2 && os_avx512 && has_avx512f;
    if (*avx512 && __get_cpuid_count(7, 1, &a, &b, &c, &d))
        *bf16 = (a >> 5) & 1; /* AVX512_BF16 */
    *amx = *bf16 && avx512bw && amx_bf16 && amx_tile && os_amx && amx_permitted();
}
#endif

typedef struct variant {
    const char *name;
    const moba_cpu_kernels *k; /* NULL: not built for this target */
    int runs;                  /* the CPU and OS support it        */
} variant;

static variant variants[5];
static int nvariants;
static const moba_cpu_kernels *chosen;
static char reason[160];
static pthread_once_t once = PTHREAD_ONCE_INIT;
#if MOBA_CPU_HAVE_AVX512BF16
static moba_cpu_kernels avx512bf16; /* avx512 + the bf16 dot-product qk */
#endif
#if MOBA_CPU_HAVE_AMX
static moba_cpu_kernels amx; /* the best other variant + bf16 tile attention */
#endif

static void choose(void)
{
    int avx2 = 0, avx512 = 0, bf16 = 0, has_amx = 0;
#if defined(__x86_64__) || defined(__i386__)
    x86_features(&avx2, &avx512, &bf16, &has_amx);
#endif
    (void)bf16;
#if MOBA_CPU_AMX_EMULATE
    /* Emulated tiles run anywhere, but only when MOBA_CPU_ISA asks. */
    int amx_auto = 0;
    has_amx = 1;
#else
    int amx_auto = 1;
#endif
    variant v[] = {
        {"generic", &moba_cpu_kernels_generic, 1},
#if MOBA_CPU_HAVE_AVX2
        {"avx2", &moba_cpu_kernels_avx2, avx2},
#else
        {"avx2", NULL, avx2},
#endif
#if MOBA_CPU_HAVE_AVX512 && MOBA_CPU_HAVE_AVX512BF16
        {"avx512", bf16 ? &avx512bf16 : &moba_cpu_kernels_avx512, avx512},
#elif MOBA_CPU_HAVE_AVX512
        {"avx512", &moba_cpu_kernels_avx512, avx512},
#else
        {"avx512", NULL, avx512},
#endif
#if MOBA_CPU_HAVE_AMX
        {"amx", &amx, has_amx},
#else
        {"amx", NULL, has_amx},
#endif
#if MOBA_CPU_HAVE_NEON
        {"neon", &moba_cpu_kernels_neon, 1},
#else
        {"neon", NULL, 0},
#endif
    };
#if MOBA_CPU_HAVE_AVX512 && MOBA_CPU_HAVE_AVX512BF16
    avx512bf16 = moba_cpu_kernels_avx512;
    avx512bf16.name = "avx512+bf16";
    avx512bf16.qk_bf16 = moba_cpu_qk_bf16_avx512bf16;
#endif
    nvariants = (int)(sizeof v / sizeof v[0]);
    memcpy(variants, v, sizeof v);
    for (int i = 0; i < nvariants; i++)
        if (variants[i].k && variants[i].runs && strcmp(variants[i].name, "amx"))
            chosen = variants[i].k;
#if MOBA_CPU_HAVE_AMX
    /* The best variant without tiles, plus the tile attention for bf16. */
    amx = *chosen;
    amx.name = "amx";
    amx.pack_v_bf16 = moba_cpu_pack_v_bf16_amx;
    amx.step_bf16 = moba_cpu_step_bf16_amx;
    amx.step_work_bf16 = moba_cpu_step_work_bf16_amx;
    if (has_amx && amx_auto) chosen = &amx;
#else
    (void)amx_auto;
#endif

    const char *want = moba_cpu_host ? moba_cpu_host->getenv("MOBA_CPU_ISA") : NULL;
    if (!want) return;
    for (int i = 0; i < nvariants; i++) {
        if (strcmp(want, variants[i].name)) continue;
        if (!variants[i].k)
            snprintf(reason, sizeof reason,
                     "MOBA_CPU_ISA=%s: this build has no %s kernels", want, want);
        else if (!variants[i].runs)
            snprintf(reason, sizeof reason,
                     "MOBA_CPU_ISA=%s: this CPU (or its OS) does not support %s",
                     want, want);
        chosen = reason[0] ? NULL : variants[i].k;
        return;
    }
    snprintf(reason, sizeof reason,
             "MOBA_CPU_ISA=%.40s: unknown (expected generic, avx2, avx512, amx or neon)",
             want);
    chosen = NULL;
}

const moba_cpu_kernels *moba_cpu_kernels_get(const char **why)
{
    pthread_once(&once, choose);
    if (why) *why = chosen ? NULL : reason;
    return chosen;
}
