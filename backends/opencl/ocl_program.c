/*
 * Programs: built from the embedded source with -D specialisation, cached
 * per context (by options) and on disk as program binaries, so a second
 * process skips the compile (seconds on some drivers).
 *
 * Disk cache: one file per (platform, device name, driver version, build
 * options, source) in $MOBA_CACHE_DIR, else $XDG_CACHE_HOME/moba, else
 * ~/.cache/moba.  The file name is a hash of that key; the file repeats the
 * whole key, which is compared on load, so a hash collision or a stale or
 * truncated file is just a miss.  Files are written to a unique temporary
 * name and renamed into place, so two processes racing both end up with a
 * complete file.  Any cache failure means "compile from source", silently.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ocl_internal.h"
#include "ocl_kernels.h"

#define CACHE_MAGIC "MOBACL01"

static uint64_t fnv1a(uint64_t h, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

/* The cache key text: everything that changes the binary. */
static char *cache_key(const ocl_device *d, const char *options)
{
    uint64_t src = fnv1a(1469598103934665603ull, moba_ocl_source,
                         sizeof moba_ocl_source);
    size_t n = strlen(d->platform_name) + strlen(d->platform_version) +
               strlen(d->name) + strlen(d->driver) + strlen(options) + 64;
    char *key = malloc(n);
    if (key)
        snprintf(key, n, "%s|%s|%s|%s|%s|src=%016llx", d->platform_name,
                 d->platform_version, d->name, d->driver, options,
                 (unsigned long long)src);
    return key;
}

static int mkdirs(char *path)
{
    for (char *p = path + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        int r = mkdir(path, 0755);
        *p = '/';
        if (r != 0 && errno != EEXIST) return -1;
    }
    return mkdir(path, 0755) == 0 || errno == EEXIST ? 0 : -1;
}

/* <dir>/ocl-<hash>.bin, or 0 if no cache directory can be named. */
static int cache_path(const char *key, char *out, size_t n, int create_dir)
{
    const char *env = moba_ocl_host->getenv("MOBA_CACHE_DIR");
    char dir[1024];
    if (env) {
        snprintf(dir, sizeof dir, "%s", env);
    } else if ((env = moba_ocl_host->getenv("XDG_CACHE_HOME"))) {
        snprintf(dir, sizeof dir, "%s/moba", env);
    } else if ((env = moba_ocl_host->getenv("HOME"))) {
        snprintf(dir, sizeof dir, "%s/.cache/moba", env);
    } else {
        return 0;
    }
    if (create_dir && mkdirs(dir) != 0) return 0;
    uint64_t h = fnv1a(1469598103934665603ull, key, strlen(key));
    int w = snprintf(out, n, "%s/ocl-%016llx.bin", dir, (unsigned long long)h);
    return w > 0 && (size_t)w < n;
}

/* The cached binary for key, or NULL. */
static unsigned char *cache_load(const char *key, size_t *size)
{
    char path[1200];
    if (!cache_path(key, path, sizeof path, 0)) return NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    unsigned char *bin = NULL;
    char magic[8];
    uint64_t klen, blen;
    size_t keylen = strlen(key);
    char *k = NULL;
    if (fread(magic, 1, 8, f) != 8 || memcmp(magic, CACHE_MAGIC, 8) ||
        fread(&klen, sizeof klen, 1, f) != 1 || klen != keylen ||
        !(k = malloc(keylen)) || fread(k, 1, keylen, f) != keylen ||
        memcmp(k, key, keylen) || fread(&blen, sizeof blen, 1, f) != 1 ||
        blen == 0 || blen > ((uint64_t)1 << 31) || !(bin = malloc(blen)) ||
        fread(bin, 1, blen, f) != blen) {
        free(bin);
        bin = NULL;
    } else {
        *size = (size_t)blen;
    }
    free(k);
    fclose(f);
    return bin;
}

static void cache_store(const char *key, cl_program prog)
{
    size_t size = 0;
    if (clGetProgramInfo(prog, CL_PROGRAM_BINARY_SIZES, sizeof size, &size,
                         NULL) != CL_SUCCESS || size == 0)
        return;
    unsigned char *bin = malloc(size);
    char path[1200], tmp[1300];
    if (!bin) return;
    if (clGetProgramInfo(prog, CL_PROGRAM_BINARIES, sizeof bin, &bin, NULL) !=
            CL_SUCCESS ||
        !cache_path(key, path, sizeof path, 1)) {
        free(bin);
        return;
    }
    /* unique per process and per call, also across threads */
    static atomic_uint counter;
    snprintf(tmp, sizeof tmp, "%s.%ld.%u.tmp", path, (long)getpid(),
             atomic_fetch_add(&counter, 1u));
    FILE *f = fopen(tmp, "wb");
    uint64_t klen = strlen(key), blen = size;
    int ok = f && fwrite(CACHE_MAGIC, 1, 8, f) == 8 &&
             fwrite(&klen, sizeof klen, 1, f) == 1 &&
             fwrite(key, 1, klen, f) == klen &&
             fwrite(&blen, sizeof blen, 1, f) == 1 &&
             fwrite(bin, 1, size, f) == size;
    if (f && fclose(f) != 0) ok = 0;
    if (!ok || rename(tmp, path) != 0) remove(tmp);
    free(bin);
}

static moba_status build_failed(cl_program prog, cl_device_id dev, cl_int err)
{
    size_t n = 0;
    char *log = NULL;
    if (clGetProgramBuildInfo(prog, dev, CL_PROGRAM_BUILD_LOG, 0, NULL, &n) ==
            CL_SUCCESS &&
        n > 0 && (log = malloc(n + 1)) &&
        clGetProgramBuildInfo(prog, dev, CL_PROGRAM_BUILD_LOG, n, log, NULL) ==
            CL_SUCCESS)
        log[n] = '\0';
    moba_status st = moba_ocl_host->set_error(
        MOBA_ERR_DEVICE, "opencl: kernel build failed: %s (%d); build log: %.1500s",
        moba_ocl_error_name(err), (int)err, log ? log : "(none)");
    free(log);
    return st;
}

static cl_program build(ocl_ctx *c, const char *options, moba_status *st)
{
    cl_device_id dev = c->dev->id;
    char *key = cache_key(c->dev, options);
    cl_int err;
    cl_program prog = NULL;
    size_t size = 0;
    unsigned char *bin = key ? cache_load(key, &size) : NULL;
    if (bin) {
        const unsigned char *bins[1] = {bin};
        cl_int bstat;
        prog = clCreateProgramWithBinary(c->clctx, 1, &dev, &size, bins, &bstat, &err);
        if (prog && (err != CL_SUCCESS || bstat != CL_SUCCESS ||
                     clBuildProgram(prog, 1, &dev, options, NULL, NULL) != CL_SUCCESS)) {
            clReleaseProgram(prog);
            prog = NULL;
        }
        free(bin);
        if (prog) {
            free(key);
            return prog;
        }
    }
    const char *src = moba_ocl_source;
    prog = clCreateProgramWithSource(c->clctx, 1, &src, NULL, &err);
    if (!prog) {
        free(key);
        *st = moba_ocl_fail(err, "clCreateProgramWithSource");
        return NULL;
    }
    err = clBuildProgram(prog, 1, &dev, options, NULL, NULL);
    if (err != CL_SUCCESS) {
        *st = build_failed(prog, dev, err);
        clReleaseProgram(prog);
        free(key);
        return NULL;
    }
    if (key) cache_store(key, prog);
    free(key);
    return prog;
}

static void program_free(ocl_program *p)
{
    cl_kernel *ks[] = {&p->centroids, &p->gate, &p->bucket, &p->scan,
                       &p->block_attend, &p->merge};
    for (size_t i = 0; i < sizeof ks / sizeof ks[0]; i++)
        if (*ks[i]) clReleaseKernel(*ks[i]);
    if (p->prog) clReleaseProgram(p->prog);
    free(p);
}

moba_status moba_ocl_program_get(ocl_ctx *c, const char *options,
                                 ocl_program **out)
{
    for (ocl_program *p = c->programs; p; p = p->next)
        if (!strcmp(p->options, options)) {
            *out = p;
            return MOBA_OK;
        }
    if (strlen(options) >= sizeof c->programs->options)
        return moba_ocl_host->set_error(MOBA_ERR_INTERNAL,
                                        "opencl: build options too long");
    ocl_program *p = calloc(1, sizeof *p);
    if (!p)
        return moba_ocl_host->set_error(MOBA_ERR_OUT_OF_MEMORY,
                                        "opencl: out of host memory");
    snprintf(p->options, sizeof p->options, "%s", options);
    moba_status st = MOBA_OK;
    p->prog = build(c, options, &st);
    if (!p->prog) {
        free(p);
        return st;
    }
    static const char *const names[] = {"moba_centroids", "moba_gate",
                                        "moba_bucket", "moba_scan",
                                        "moba_block_attend", "moba_merge"};
    cl_kernel *ks[] = {&p->centroids, &p->gate, &p->bucket, &p->scan,
                       &p->block_attend, &p->merge};
    for (size_t i = 0; i < sizeof ks / sizeof ks[0]; i++) {
        cl_int err;
        *ks[i] = clCreateKernel(p->prog, names[i], &err);
        if (!*ks[i]) {
            program_free(p);
            return moba_ocl_fail(err, "clCreateKernel");
        }
    }
    p->next = c->programs;
    c->programs = p;
    *out = p;
    return MOBA_OK;
}

void moba_ocl_programs_release(ocl_ctx *c)
{
    while (c->programs) {
        ocl_program *p = c->programs;
        c->programs = p->next;
        program_free(p);
    }
}
