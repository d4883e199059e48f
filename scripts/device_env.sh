# Sourced by the scripts that run on the lent GPU machine (device_check.sh,
# cpu_device_check.sh, device_ab.sh), from the repository root: sets $OUT
# (the device tool's output folder, else /tmp/moba-out), unpacks the carried
# Debian packages (.devdeps/env.sh, when carried), puts CUDA on PATH, and
# installs meson from the carried wheel ($WHL, default .whl) when the
# machine has none.  Returns non-zero when meson cannot be had.
OUT=${OUT:-/tmp/moba-out}
mkdir -p "$OUT"
[ -f .devdeps/env.sh ] && source .devdeps/env.sh
export PATH=/usr/local/cuda/bin:$PATH
if ! command -v meson >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --target /tmp/site "${WHL:-.whl}"/meson-*.whl ||
        return 1
    export PYTHONPATH=/tmp/site
    mkdir -p /tmp/bin && printf '#!/bin/sh\nexec python3 -m mesonbuild.mesonmain "$@"\n' > /tmp/bin/meson
    chmod +x /tmp/bin/meson && export PATH=/tmp/bin:$PATH
fi
