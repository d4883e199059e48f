/*
 * moba-info [--json]
 *
 * What this libmoba installation can run: the library version, every backend
 * the registry knows of (and why an unavailable one is unavailable), the
 * devices of each available backend, which backend "auto" picks, and the
 * MOBA_* environment variables that steer those choices.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "moba/moba.h"
#include "util/json.h"

static const char *const env_names[] = {"MOBA_BACKEND", "MOBA_PLUGIN_DIR",
                                        "MOBA_NUM_THREADS", "MOBA_CPU_ISA"};
#define NUM_ENV ((int)(sizeof env_names / sizeof env_names[0]))

static const moba_dtype all_dtypes[] = {MOBA_F32, MOBA_F16, MOBA_BF16};

static void json_str(const char *s) { json_write_string(stdout, s); }

static void print_head_dims(const moba_device_info *d, int json)
{
    if (d->num_head_dims == 0) {
        if (json)
            printf("{\"min\": 1, \"max\": %d}", d->head_dim_max);
        else
            printf("1..%d", d->head_dim_max);
        return;
    }
    if (json) putchar('[');
    for (int i = 0; i < d->num_head_dims; i++)
        printf("%s%d", i ? (json ? ", " : ",") : "", d->head_dims[i]);
    if (json) putchar(']');
}

static void print_dtypes(unsigned mask, int json)
{
    int first = 1;
    if (json) putchar('[');
    for (size_t i = 0; i < sizeof all_dtypes / sizeof all_dtypes[0]; i++) {
        if (!(mask & MOBA_DTYPE_BIT(all_dtypes[i]))) continue;
        if (json)
            printf("%s\"%s\"", first ? "" : ", ", moba_dtype_name(all_dtypes[i]));
        else
            printf("%s%s", first ? "" : ",", moba_dtype_name(all_dtypes[i]));
        first = 0;
    }
    if (json) putchar(']');
}

static void print_device_text(const moba_device_info *d, int index)
{
    printf("    device %d: %s\n", index, d->name);
    printf("      vendor:        %s\n", d->vendor);
    printf("      driver:        %s\n", d->driver);
    if (d->memory_bytes)
        printf("      memory:        %.1f GiB\n", (double)d->memory_bytes / (1024.0 * 1024 * 1024));
    else
        printf("      memory:        unknown\n");
    printf("      compute units: %d\n", d->compute_units);
    printf("      dtypes:        ");
    print_dtypes(d->dtypes, 0);
    printf("\n      head dims:     ");
    print_head_dims(d, 0);
    printf("\n      is_cpu:        %s\n", d->is_cpu ? "yes" : "no");
}

static void print_device_json(const moba_device_info *d, int index)
{
    printf("{\"index\": %d, \"name\": ", index);
    json_str(d->name);
    printf(", \"vendor\": ");
    json_str(d->vendor);
    printf(", \"driver\": ");
    json_str(d->driver);
    printf(", \"memory_bytes\": %llu, \"memory_gib\": %.3f, \"compute_units\": %d, \"dtypes\": ",
           (unsigned long long)d->memory_bytes,
           (double)d->memory_bytes / (1024.0 * 1024 * 1024), d->compute_units);
    print_dtypes(d->dtypes, 1);
    printf(", \"head_dims\": ");
    print_head_dims(d, 1);
    printf(", \"head_dim_max\": %d, \"is_cpu\": %s}", d->head_dim_max,
           d->is_cpu ? "true" : "false");
}

/* One backend: its entry and, if available, its devices. */
static void print_backend(const moba_backend_info *b, int json, int first)
{
    if (json) {
        printf("%s\n    {\"name\": ", first ? "" : ",");
        json_str(b->name);
        printf(", \"available\": %s, \"device_count\": %d, \"detail\": ",
               b->available ? "true" : "false", b->device_count);
        json_str(b->detail);
        printf(", \"devices\": [");
    } else {
        printf("  %-8s available: %-3s  devices: %d  (%s)\n", b->name,
               b->available ? "yes" : "no", b->device_count, b->detail);
    }
    int shown = 0;
    for (int d = 0; b->available && d < b->device_count; d++) {
        moba_device_info di;
        moba_status st = moba_device_info_get(b->name, d, &di);
        if (st != MOBA_OK) {
            /* A device that cannot describe itself is still worth reporting. */
            if (json) {
                printf("%s{\"index\": %d, \"error\": ", shown++ ? ", " : "", d);
                json_str(moba_last_error());
                putchar('}');
            } else {
                printf("    device %d: error: %s: %s\n", d, moba_status_string(st),
                       moba_last_error());
            }
            continue;
        }
        if (json) {
            printf("%s", shown++ ? ",\n      " : "\n      ");
            print_device_json(&di, d);
        } else {
            print_device_text(&di, d);
        }
    }
    if (json) printf("%s]}", shown ? "\n    " : "");
}

/* What moba_context_create(NULL) resolves to: MOBA_BACKEND, else "auto". */
static void print_auto(int json)
{
    moba_context *ctx = NULL;
    moba_status st = moba_context_create(&ctx, NULL);
    if (st != MOBA_OK) {
        if (json) {
            printf("  \"default_backend\": {\"error\": ");
            json_str(moba_last_error());
            printf("},\n");
        } else {
            printf("default backend: none (%s: %s)\n", moba_status_string(st),
                   moba_last_error());
        }
        return;
    }
    const char *name = moba_context_backend(ctx);
    int dev = moba_context_device(ctx);
    moba_device_info di;
    int have = moba_device_info_get(name, dev, &di) == MOBA_OK;
    if (json) {
        printf("  \"default_backend\": {\"backend\": ");
        json_str(name);
        printf(", \"device\": %d, \"device_name\": ", dev);
        json_str(have ? di.name : "");
        printf("},\n");
    } else {
        printf("default backend (MOBA_BACKEND or auto): %s:%d (%s)\n", name, dev,
               have ? di.name : "?");
    }
    moba_context_destroy(ctx);
}

static void print_env(int json)
{
    if (json) printf("  \"environment\": {");
    else printf("environment:\n");
    for (int i = 0; i < NUM_ENV; i++) {
        const char *v = getenv(env_names[i]);
        if (json) {
            printf("%s", i ? ", " : "");
            json_str(env_names[i]);
            printf(": ");
            if (v) json_str(v);
            else printf("null");
        } else {
            printf("  %-17s %s\n", env_names[i], v ? v : "(unset)");
        }
    }
    if (json) printf("}\n");
}

int main(int argc, char **argv)
{
    int json = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) {
            json = 1;
        } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("usage: moba-info [--json]\n"
                   "Lists the libmoba version, its backends and devices, the backend\n"
                   "that MOBA_BACKEND/auto selects and the MOBA_* variables set.\n"
                   "  --json   machine-readable output\n");
            return 0;
        } else {
            fprintf(stderr, "moba-info: unknown option %s (try --help)\n", argv[i]);
            return 2;
        }
    }

    int count = 0;
    moba_status st = moba_backend_count(&count);
    if (st != MOBA_OK) {
        fprintf(stderr, "moba-info: moba_backend_count failed: %s: %s\n",
                moba_status_string(st), moba_last_error());
        return 1;
    }
    if (json) {
        printf("{\n  \"version\": ");
        json_str(moba_version());
        printf(",\n  \"backends\": [");
    } else {
        printf("libmoba %s\nbackends:\n", moba_version());
    }
    int shown = 0;
    for (int i = 0; i < count; i++) {
        moba_backend_info b;
        if ((st = moba_backend_info_get(i, &b)) != MOBA_OK) {
            fprintf(stderr, "moba-info: moba_backend_info_get(%d) failed: %s: %s\n", i,
                    moba_status_string(st), moba_last_error());
            continue;
        }
        print_backend(&b, json, !shown++);
    }
    if (json) printf("\n  ],\n");
    print_auto(json);
    print_env(json);
    if (json) printf("}\n");
    return 0;
}
