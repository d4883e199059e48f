/* Status strings and the per-thread last-error message. */
#include <stdio.h>

#include "internal.h"

static _Thread_local char last_error[1024];

const char *moba_status_string(moba_status status)
{
    switch (status) {
    case MOBA_OK: return "success";
    case MOBA_ERR_INVALID_ARGUMENT: return "invalid argument";
    case MOBA_ERR_NULL_POINTER: return "null pointer";
    case MOBA_ERR_OVERFLOW: return "size overflow";
    case MOBA_ERR_BUFFER_TOO_SMALL: return "buffer too small";
    case MOBA_ERR_UNSUPPORTED: return "unsupported by this backend";
    case MOBA_ERR_BACKEND_UNAVAILABLE: return "backend unavailable";
    case MOBA_ERR_OUT_OF_MEMORY: return "out of memory";
    case MOBA_ERR_DEVICE: return "device error";
    case MOBA_ERR_WRONG_CONTEXT: return "object belongs to another context";
    case MOBA_ERR_INTERNAL: return "internal error";
    }
    return "unknown status";
}

const char *moba_last_error(void) { return last_error; }

void moba_clear_error(void) { last_error[0] = '\0'; }

moba_status moba_set_error_v(moba_status status, const char *fmt, va_list ap)
{
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    return status;
}

moba_status moba_set_error(moba_status status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    moba_set_error_v(status, fmt, ap);
    va_end(ap);
    return status;
}
