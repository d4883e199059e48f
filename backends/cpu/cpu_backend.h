#ifndef MOBA_CPU_BACKEND_H
#define MOBA_CPU_BACKEND_H

#include "../../core/backend.h"

/* The built-in CPU backend (always present). */
const moba_backend_iface *moba_cpu_backend(void);

#endif
