/* Helpers shared by the gate and attention kernels. */
#define D4 (D / 4)

/* UNROLL(n): "#pragma unroll n" where n may be a macro.  NVIDIA's compiler
 * keeps the kernels' long loops rolled without it, and each trip then
 * waits on its own local-memory loads. */
#define PRAGMA(x) _Pragma(#x)
#define UNROLL(n) PRAGMA(unroll n)
