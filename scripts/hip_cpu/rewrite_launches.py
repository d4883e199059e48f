#!/usr/bin/env python3
"""Rewrite CUDA `kern<...><<<g, b, smem, stream>>>(args)` launches into
hipLaunchKernelGGL((kern<...>), g, b, smem, stream, args) in place.
Usage: rewrite_launches.py FILE...  (idempotent; prints each rewrite)."""
import sys

def match_close(s, i, open_ch, close_ch):
    """s[i] == open_ch; return index of the matching close_ch."""
    depth = 0
    j = i
    while j < len(s):
        c = s[j]
        if c == open_ch:
            depth += 1
        elif c == close_ch:
            depth -= 1
            if depth == 0:
                return j
        j += 1
    raise ValueError("unbalanced")

def kernel_start(s, i):
    """Walk back from s[i] (just before '<<<') over the kernel expression:
    an identifier, optionally followed by a <...> template argument list."""
    j = i
    while j >= 0 and s[j].isspace():
        j -= 1
    if s[j] == '>':  # template args: walk back to the matching '<'
        depth = 0
        while j >= 0:
            if s[j] == '>':
                depth += 1
            elif s[j] == '<':
                depth -= 1
                if depth == 0:
                    break
            j -= 1
        j -= 1
    while j >= 0 and (s[j].isalnum() or s[j] in '_:'):
        j -= 1
    return j + 1

def rewrite(s):
    out = []
    pos = 0
    n = 0
    while True:
        i = s.find('<<<', pos)
        if i < 0:
            out.append(s[pos:])
            break
        k0 = kernel_start(s, i - 1)
        kern = s[k0:i].strip()
        j = s.find('>>>', i)
        cfg = s[i + 3:j].strip()
        p = j + 3
        while s[p].isspace():
            p += 1
        assert s[p] == '(', s[p - 20:p + 20]
        q = match_close(s, p, '(', ')')
        args = s[p + 1:q].strip()
        repl = 'hipLaunchKernelGGL((%s), %s%s)' % (kern, cfg, (', ' + args) if args else '')
        sys.stderr.write('  %s<<<%s>>> -> hipLaunchKernelGGL\n' % (kern, cfg))
        out.append(s[pos:k0])
        out.append(repl)
        pos = q + 1
        n += 1
    return ''.join(out), n

for f in sys.argv[1:]:
    s = open(f).read()
    t, n = rewrite(s)
    if n:
        open(f, 'w').write(t)
        sys.stderr.write('%s: %d launches rewritten\n' % (f, n))
