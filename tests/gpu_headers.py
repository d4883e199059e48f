#!/usr/bin/env python3
"""Fails when backends/cuda/meson.build's gpu_headers misses a header.

Usage: gpu_headers.py SOURCE_ROOT LISTED_HEADER...  (meson passes the list)

meson before 1.4 gives nvcc no depfiles, and hipcc runs as a custom
target: both rebuild the GPU objects only when a file in gpu_headers
changes.  A header left out of that list (four were) lets an edit to it
rebuild nothing, and the next test runs the old kernels.  So every .h and
.cuh in backends/cuda, and every repository header they include, must be
listed.
"""
import os
import re
import sys


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    root = sys.argv[1]
    gdir = os.path.join(root, 'backends', 'cuda')
    listed = {os.path.normpath(os.path.abspath(n)) for n in sys.argv[2:]}
    # Headers of the directory, then what they and the sources include.
    todo = [os.path.abspath(os.path.join(gdir, f)) for f in sorted(os.listdir(gdir))
            if f.endswith(('.h', '.cuh', '.cu'))]
    need, seen = set(), set()
    while todo:
        f = os.path.normpath(todo.pop())
        if f in seen:
            continue
        seen.add(f)
        if not f.endswith('.cu'):
            need.add(f)
        for inc in re.findall(r'^\s*#\s*include\s+"([^"]+)"', open(f).read(), re.M):
            for base in (os.path.dirname(f), os.path.join(root, 'include')):
                cand = os.path.abspath(os.path.join(base, inc))
                if os.path.exists(cand):
                    todo.append(cand)
                    break
            else:
                sys.exit('gpu_headers.py: %s includes "%s", found nowhere' % (f, inc))
    missing = sorted(os.path.relpath(f, root) for f in need - listed)
    for f in missing:
        print('not in gpu_headers (an edit to it would rebuild nothing):', f)
    if missing:
        sys.exit(1)
    print('gpu_headers lists all %d headers the GPU sources include' % len(need))


if __name__ == '__main__':
    main()
