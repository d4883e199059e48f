/* The single place where the library reads its environment. */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "internal.h"

const char *moba_env(const char *name)
{
    const char *v = getenv(name);
    return (v && *v) ? v : NULL;
}
