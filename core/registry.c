/*
 * The backend registry: the built-in CPU backend plus GPU backends loaded
 * as modules (libmoba-<name>.so) with dlopen, so that libmoba itself runs on
 * a machine with no GPU stack.  Built once, under pthread_once; read-only
 * afterwards, hence safe from any thread.  Modules are never unloaded: a
 * GPU runtime's static state does not survive dlclose reliably.
 */
#define _POSIX_C_SOURCE 200809L
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../backends/cpu/cpu_backend.h"
#include "internal.h"
#include "moba_config.h"

#define MODULE_NAMES_COUNT 3
static const char *const module_names[MODULE_NAMES_COUNT] = {"cuda", "hip",
                                                             "opencl"};
/* auto: first GPU backend with a non-CPU device, else cpu. */
static const char *const auto_order[] = {"cuda", "hip", "opencl"};

static moba_backend_entry entries[1 + MODULE_NAMES_COUNT];
static int num_entries;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static const char *host_getenv(const char *name) { return moba_env(name); }

static const moba_host_api host_api = {
    MOBA_BACKEND_ABI_VERSION,
    moba_set_error,
    host_getenv,
};

const moba_host_api *moba_host(void) { return &host_api; }

static void init_entry(moba_backend_entry *e, const moba_backend_iface *be)
{
    int n = 0;
    if (be->abi_version != MOBA_BACKEND_ABI_VERSION) {
        snprintf(e->detail, sizeof e->detail,
                 "module ABI version %d, library expects %d", be->abi_version,
                 MOBA_BACKEND_ABI_VERSION);
        return;
    }
    moba_status st = be->init(&host_api, &n);
    if (st != MOBA_OK) {
        snprintf(e->detail, sizeof e->detail, "%.500s", moba_last_error());
        return;
    }
    e->iface = be;
    e->num_devices = n;
    e->available = n > 0;
}

/* Tries each directory of the colon-separated list for libmoba-<name>.so. */
static void load_module(moba_backend_entry *e, const char *dirs)
{
    char path[320];
    const char *d = dirs;
    while (*d) {
        size_t len = strcspn(d, ":");
        if (len > 0 && len < 256) {
            snprintf(path, sizeof path, "%.*s/libmoba-%s.so", (int)len, d,
                     e->name);
            FILE *f = fopen(path, "rb");
            if (f) {
                fclose(f);
                int flags = RTLD_NOW | RTLD_LOCAL;
#if MOBA_DLOPEN_NODELETE
                flags |= RTLD_NODELETE;
#endif
                void *h = dlopen(path, flags);
                if (!h) {
                    const char *err = dlerror();
                    snprintf(e->detail, sizeof e->detail, "cannot load %s: %.160s",
                             path, err ? err : "?");
                    return;
                }
                moba_backend_module_fn fn;
                *(void **)&fn = dlsym(h, MOBA_MODULE_ENTRY);
                const moba_backend_iface *be = fn ? fn() : NULL;
                if (!be) {
                    snprintf(e->detail, sizeof e->detail,
                             "%s has no usable %s()", path, MOBA_MODULE_ENTRY);
                    return;
                }
                init_entry(e, be);
                if (e->iface && !e->detail[0])
                    snprintf(e->detail, sizeof e->detail, "module %s", path);
                if (!e->available && e->iface && !e->detail[0])
                    snprintf(e->detail, sizeof e->detail, "%s: no device",
                             path);
                return;
            }
        }
        d += len;
        if (*d == ':') d++;
    }
    snprintf(e->detail, sizeof e->detail,
             "not built or not installed (no libmoba-%s.so in %.400s)",
             e->name, dirs);
}

static void registry_init(void)
{
    moba_backend_entry *e = &entries[num_entries++];
    snprintf(e->name, sizeof e->name, "cpu");
    init_entry(e, moba_cpu_backend());
    if (e->iface) snprintf(e->detail, sizeof e->detail, "built in");

    const char *dirs = moba_env("MOBA_PLUGIN_DIR");
    if (!dirs) dirs = MOBA_PLUGIN_DIR_DEFAULT;
    for (int i = 0; i < MODULE_NAMES_COUNT; i++) {
        e = &entries[num_entries++];
        snprintf(e->name, sizeof e->name, "%s", module_names[i]);
        load_module(e, dirs);
    }
    moba_clear_error();
}

moba_status moba_registry_get(int *count, const moba_backend_entry **list)
{
    pthread_once(&once, registry_init);
    *count = num_entries;
    *list = entries;
    return MOBA_OK;
}

static const moba_backend_entry *find(const char *name, size_t len)
{
    int n;
    const moba_backend_entry *list;
    moba_registry_get(&n, &list);
    for (int i = 0; i < n; i++)
        if (strlen(list[i].name) == len && strncmp(list[i].name, name, len) == 0)
            return &list[i];
    return NULL;
}

/* "cpu (1 device), opencl (2 devices)" */
static void list_available(char *buf, size_t size)
{
    int n;
    const moba_backend_entry *list;
    moba_registry_get(&n, &list);
    buf[0] = '\0';
    size_t used = 0;
    for (int i = 0; i < n && used < size; i++) {
        if (!list[i].available) continue;
        used += (size_t)snprintf(buf + used, size - used, "%s%s (%d device%s)",
                                 used ? ", " : "", list[i].name,
                                 list[i].num_devices,
                                 list[i].num_devices == 1 ? "" : "s");
    }
    if (!buf[0]) snprintf(buf, size, "none");
}

static int first_accelerator(const moba_backend_entry *e)
{
    for (int d = 0; d < e->num_devices; d++) {
        moba_device_info info;
        memset(&info, 0, sizeof info);
        if (e->iface->device_info(d, &info) == MOBA_OK && !info.is_cpu)
            return d;
    }
    return -1;
}

moba_status moba_registry_resolve(const char *name,
                                  const moba_backend_entry **entry, int *device)
{
    const char *origin = "backend name";
    if (!name) {
        name = moba_env("MOBA_BACKEND");
        origin = "MOBA_BACKEND";
        if (!name) name = "auto";
    }
    char avail[384];
    if (strcmp(name, "auto") == 0) {
        for (size_t i = 0; i < sizeof auto_order / sizeof auto_order[0]; i++) {
            const moba_backend_entry *e = find(auto_order[i], strlen(auto_order[i]));
            int d;
            if (e && e->available && (d = first_accelerator(e)) >= 0) {
                *entry = e;
                *device = d;
                return MOBA_OK;
            }
        }
        const moba_backend_entry *cpu = find("cpu", 3);
        if (cpu && cpu->available) {
            *entry = cpu;
            *device = 0;
            return MOBA_OK;
        }
        list_available(avail, sizeof avail);
        return moba_set_error(MOBA_ERR_BACKEND_UNAVAILABLE,
                              "no backend is available (available: %s)", avail);
    }
    size_t len = strcspn(name, ":");
    long dev = 0;
    if (name[len] == ':') {
        const char *ds = name + len + 1;
        char *end = NULL;
        dev = *ds ? strtol(ds, &end, 10) : -1;
        if (!*ds || *end || dev < 0 || dev > 4096)
            return moba_set_error(MOBA_ERR_INVALID_ARGUMENT,
                                  "%s '%s': the device after ':' must be a "
                                  "non-negative integer",
                                  origin, name);
    }
    const moba_backend_entry *e = find(name, len);
    list_available(avail, sizeof avail);
    if (!e)
        return moba_set_error(MOBA_ERR_BACKEND_UNAVAILABLE,
                              "%s '%s': unknown backend (expected cpu, cuda, "
                              "hip, opencl or auto; available here: %s)",
                              origin, name, avail);
    if (!e->available)
        return moba_set_error(MOBA_ERR_BACKEND_UNAVAILABLE,
                              "%s '%s': backend %s is not available here (%s); "
                              "available: %s",
                              origin, name, e->name, e->detail, avail);
    if (dev >= e->num_devices)
        return moba_set_error(MOBA_ERR_BACKEND_UNAVAILABLE,
                              "%s '%s': device %ld does not exist (%s has %d "
                              "device%s)",
                              origin, name, dev, e->name, e->num_devices,
                              e->num_devices == 1 ? "" : "s");
    *entry = e;
    *device = (int)dev;
    return MOBA_OK;
}

/* ---- public discovery API ---- */

moba_status moba_backend_count(int *count)
{
    const moba_backend_entry *list;
    if (!count)
        return moba_set_error(MOBA_ERR_NULL_POINTER, "moba_backend_count: count is NULL");
    return moba_registry_get(count, &list);
}

moba_status moba_backend_info_get(int index, moba_backend_info *info)
{
    int n;
    const moba_backend_entry *list;
    if (!info)
        return moba_set_error(MOBA_ERR_NULL_POINTER, "moba_backend_info_get: info is NULL");
    moba_registry_get(&n, &list);
    if (index < 0 || index >= n)
        return moba_set_error(MOBA_ERR_INVALID_ARGUMENT,
                              "backend index %d out of range [0, %d)", index, n);
    memset(info, 0, sizeof *info);
    snprintf(info->name, sizeof info->name, "%s", list[index].name);
    info->available = list[index].available;
    info->device_count = list[index].num_devices;
    memcpy(info->detail, list[index].detail, sizeof info->detail);
    return MOBA_OK;
}

moba_status moba_device_info_get(const char *backend, int device,
                                 moba_device_info *info)
{
    if (!backend || !info)
        return moba_set_error(MOBA_ERR_NULL_POINTER,
                              "moba_device_info_get: %s is NULL",
                              backend ? "info" : "backend");
    const moba_backend_entry *e = find(backend, strlen(backend));
    if (!e || !e->iface)
        return moba_set_error(MOBA_ERR_BACKEND_UNAVAILABLE,
                              "backend '%s' is not loaded%s%s", backend,
                              e ? ": " : "", e ? e->detail : "");
    if (device < 0 || device >= e->num_devices)
        return moba_set_error(MOBA_ERR_INVALID_ARGUMENT,
                              "device %d of backend %s out of range [0, %d)",
                              device, backend, e->num_devices);
    memset(info, 0, sizeof *info);
    return e->iface->device_info(device, info);
}
