/*
 * Probe, run by hand on a compute-9.0 GPU: which descriptor strides make
 * wgmma read the core-matrix tiled layout of backends/cuda/wgmma.cuh right,
 * K-major (S = Q K^T, 64 x 128 by 64 keys) and MN-major (O = P V, 64 x 64
 * by 64 x 128), against a double-precision product on the host.
 *
 *   nvcc -std=c++17 -arch=sm_90a -I backends/cuda -I include -I core \
 *        -o /tmp/probe tools/wgmma_probe.cu
 *   /tmp/probe X Y   (X, Y: 0 = LBO 128 / SBO 2048, 1 = LBO 2048 / SBO 128,
 *                     for K-major and MN-major)
 *
 * On an H200 (2026-12-02): "0 1" gave max error 0 for both products; "1 1"
 * gave 25.6 for S; "0 0" made an illegal shared-memory access.  So the
 * leading offset steps along the reduction dimension and the stride offset
 * along M/N, in both majors: wg_cfg in attend_wgmma.cuh.  Not built by
 * meson (it needs the GPU and sm_90a).
 *
 *   for x in 0 1; do for y in 0 1; do /tmp/probe swz $x $y; done; done
 *   (not run yet; one process per pair, since an illegal access ends the
 *   context)
 *
 * The same two products with K and V in the 128-byte-swizzled layout that
 * a TMA box of 64 bf16 columns writes (FlashAttention-3's layout): 8-row
 * x 128-byte atoms whose 16-byte chunk index is XORed with the row within
 * the atom, one 64-column block of the tile after the other.  Descriptors
 * with layout type 1 (128B swizzle); X and Y pick the candidate (LBO,
 * SBO) pair of each major (see main), and the four runs say which pair
 * reads the layout right.
 */
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <cmath>
#include <vector>
#include "vendor.h"
#include "wgmma.cuh"

/* A warpgroup accumulator of N columns (the mma C layout per 8 columns)
 * into a row-major 64 x N matrix. */
__device__ void store_acc(float *dst, const float *acc, int N, int warp, int g, int t)
{
    for (int n = 0; n < N / 8; n++) {
        const int r = 16 * warp + g, c = 8 * n + 2 * t;
        dst[r * N + c] = acc[4 * n];
        dst[r * N + c + 1] = acc[4 * n + 1];
        dst[(r + 8) * N + c] = acc[4 * n + 2];
        dst[(r + 8) * N + c + 1] = acc[4 * n + 3];
    }
}

/* Byte offset of element (r, c) of a rows x 128 bf16 tile in the 128B-
 * swizzled layout: 64-column blocks of rows x 128 bytes, in each 8-row
 * atom (1024 bytes, 1024-aligned) the 16-byte chunk XORed with r % 8. */
__host__ __device__ inline unsigned sw128_off(int r, int c, int rows)
{
    const unsigned b = (unsigned)((c / 64) * rows * 128 + r * 128 + (c % 64) * 2);
    return b ^ (((b >> 7) & 7u) << 4);
}

/* Element offset of (r, c) in a 64 x 128 tile of the probed layout. */
template <bool SWZ> __device__ inline int probe_off(int r, int c)
{
    return SWZ ? (int)(sw128_off(r, c, 64) / 2) : wg_off<128>(r, c);
}

/* Descriptor of the B tile at byte offset `off`: layout type 1 (128-byte
 * swizzle, base offset 0) or 0 (the core-matrix layout). */
template <bool SWZ>
__device__ inline uint64_t probe_desc(const unsigned short *tile, unsigned off, unsigned lbo,
                                      unsigned sbo)
{
    return wg_desc((const char *)tile + off, lbo, sbo) | (SWZ ? 1ull << 62 : 0ull);
}

/* S = A K^T (64 x 64, D = 128) and O = P V (64 x 128 by 64 keys) with K
 * and V in the probed layout and the given descriptor strides. */
template <bool SWZ>
__global__ void probe(const unsigned short *A, const unsigned short *K, const unsigned short *P,
                      const unsigned short *V, float *S, float *O, unsigned lbo, unsigned sbo,
                      unsigned lbo2, unsigned sbo2)
{
    /* 1024-byte alignment: the swizzle is applied to address bits 4-9. */
    __shared__ __align__(1024) unsigned short ks[64 * 128], vs[64 * 128];
    const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32, g = lane / 4, t = lane % 4;
    for (int e = tid; e < 64 * 128; e += 128) {
        const int r = e / 128, c = e % 128;
        ks[probe_off<SWZ>(r, c)] = K[e];
        vs[probe_off<SWZ>(r, c)] = V[e];
    }
    wg_fence_smem();
    __syncthreads();
    float s[32];
    for (int i = 0; i < 32; i++) s[i] = 0.f;
    uint32_t qf[8][4];
    mma_load_a<128>(qf, A + (16 * warp + g) * 128, A + (16 * warp + g + 8) * 128, t);
    wg_fence();
    /* k16 step kk: the next two core matrices, or 32 bytes into the row
     * of its 64-column block. */
    for (int kk = 0; kk < 8; kk++)
        wgmma_m64n64k16<2, 0>(s, qf[kk],
                              probe_desc<SWZ>(ks, SWZ ? (kk / 4) * 64 * 128 + (kk % 4) * 32
                                                      : kk * 256, lbo, sbo),
                              kk > 0);
    wg_commit();
    wg_wait<0>();
    store_acc(S, s, 64, warp, g, t);
    float o[64];
    for (int i = 0; i < 64; i++) o[i] = 0.f;
    uint32_t pf[4][4];
    mma_load_a<64>(pf, P + (16 * warp + g) * 64, P + (16 * warp + g + 8) * 64, t);
    wg_fence();
    /* keys 16 kc .. 16 kc + 15: two rows of core matrices, or 16 rows of
     * 128 bytes into each 64-column block. */
    for (int kc = 0; kc < 4; kc++)
        wgmma_m64n128k16<2, 1>(o, pf[kc],
                               probe_desc<SWZ>(vs, SWZ ? kc * 16 * 128 : kc * 2 * 16 * 64 * 2,
                                               lbo2, sbo2),
                               kc > 0);
    wg_commit();
    wg_wait<0>();
    store_acc(O, o, 128, warp, g, t);
}

static unsigned short bf(float f) { unsigned u; memcpy(&u, &f, 4); return (unsigned short)(u >> 16); }
static float fb(unsigned short h) { unsigned u = (unsigned)h << 16; float f; memcpy(&f, &u, 4); return f; }

int main(int argc, char **argv)
{
    std::vector<unsigned short> A(64 * 128), K(64 * 128), P(64 * 64), V(64 * 128);
    srand(1);
    for (auto *x : {&A, &K, &P, &V})
        for (auto &e : *x) e = bf((float)(rand() % 17 - 8) / 8.0f);
    std::vector<double> Sr(64 * 64), Or(64 * 128);
    for (int i = 0; i < 64; i++)
        for (int j = 0; j < 64; j++) {
            double acc = 0;
            for (int d = 0; d < 128; d++) acc += (double)fb(A[i * 128 + d]) * fb(K[j * 128 + d]);
            Sr[i * 64 + j] = acc;
        }
    for (int i = 0; i < 64; i++)
        for (int d = 0; d < 128; d++) {
            double acc = 0;
            for (int j = 0; j < 64; j++) acc += (double)fb(P[i * 64 + j]) * fb(V[j * 128 + d]);
            Or[i * 128 + d] = acc;
        }
    unsigned short *dA, *dK, *dP, *dV;
    float *dS, *dO;
    cudaMalloc(&dA, 2 * A.size()); cudaMalloc(&dK, 2 * K.size());
    cudaMalloc(&dP, 2 * P.size()); cudaMalloc(&dV, 2 * V.size());
    cudaMalloc(&dS, 4 * 64 * 64); cudaMalloc(&dO, 4 * 64 * 128);
    cudaMemcpy(dA, A.data(), 2 * A.size(), cudaMemcpyHostToDevice);
    cudaMemcpy(dK, K.data(), 2 * K.size(), cudaMemcpyHostToDevice);
    cudaMemcpy(dP, P.data(), 2 * P.size(), cudaMemcpyHostToDevice);
    cudaMemcpy(dV, V.data(), 2 * V.size(), cudaMemcpyHostToDevice);
    auto run = [&](bool swz, unsigned l1, unsigned s1, unsigned l2, unsigned s2) {
        cudaMemset(dS, 0, 4 * 64 * 64); cudaMemset(dO, 0, 4 * 64 * 128);
        if (swz)
            probe<true><<<1, 128>>>(dA, dK, dP, dV, dS, dO, l1, s1, l2, s2);
        else
            probe<false><<<1, 128>>>(dA, dK, dP, dV, dS, dO, l1, s1, l2, s2);
        cudaError_t e = cudaDeviceSynchronize();
        std::vector<float> S(64 * 64), O(64 * 128);
        cudaMemcpy(S.data(), dS, 4 * S.size(), cudaMemcpyDeviceToHost);
        cudaMemcpy(O.data(), dO, 4 * O.size(), cudaMemcpyDeviceToHost);
        double es = 0, eo = 0;
        for (size_t i = 0; i < S.size(); i++) es = fmax(es, fabs(S[i] - Sr[i]));
        for (size_t i = 0; i < O.size(); i++) eo = fmax(eo, fabs(O[i] - Or[i]));
        printf("%s K-major lbo %u sbo %u: S max err %g | MN-major lbo %u sbo %u: O max err %g | %s\n",
               swz ? "sw128" : "plain", l1, s1, es, l2, s2, eo, cudaGetErrorString(e));
        return e == cudaSuccess;
    };
    if (argc == 4 && strcmp(argv[1], "swz") == 0) {
        /* K-major: SBO the 8-row step (1024); LBO unused by the swizzled
         * K-major form (16 bytes), or the 64-column block step.  MN-major:
         * one of the pair steps between the two 64-column blocks (8192),
         * the other between 8-row groups along K (1024). */
        const unsigned kc[2][2] = {{16, 1024}, {8192, 1024}};
        const unsigned vc[2][2] = {{8192, 1024}, {1024, 8192}};
        const int x = atoi(argv[2]) & 1, y = atoi(argv[3]) & 1;
        return run(true, kc[x][0], kc[x][1], vc[y][0], vc[y][1]) ? 0 : 1;
    }
    if (argc != 3) {
        fprintf(stderr, "usage: probe X Y | probe swz X Y\n");
        return 2;
    }
    const unsigned v[2][2] = {{128, 2048}, {2048, 128}};
    const int x = atoi(argv[1]), y = atoi(argv[2]);
    if (!run(false, v[x][0], v[x][1], v[y][0], v[y][1])) return 1;
    return 0;
}
