#!/usr/bin/env python3
"""Static SASS instruction counts of a CUDA source's kernel loops, no GPU needed.

Compiles one backends/cuda source to a cubin for one arch (default sm_90a),
disassembles it with cuobjdump, and for every kernel whose name contains a
given pattern prints each loop (a backward branch) that holds tensor-core
instructions: its static instruction count, the mma / wgmma count in it and
the commonest opcodes.  What it answers: how many instructions a kernel
issues per chunk or tile besides its MMAs (the kernels here are issue-bound,
docs/perf.md), before and after a change, without device time.

cuobjdump (and the nvdisasm it runs) are not in Debian's nvcc packages;
--fetch downloads NVIDIA's wheels (nvidia-cuda-cuobjdump,
nvidia-cuda-nvdisasm) from PyPI into .sass-tools/.

  python3 scripts/sass_loops.py [--fetch] [--arch 90a] SOURCE PATTERN...
  e.g. python3 scripts/sass_loops.py --fetch backends/cuda/attend_bf16_d128.cu k_wgmma_kv k_mma_kv
"""
import argparse, collections, glob, os, re, subprocess, sys, tempfile, zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
TOOLS = os.path.join(ROOT, '.sass-tools')


def cuobjdump(fetch):
    for c in [os.environ.get('CUOBJDUMP', '')] + glob.glob(os.path.join(TOOLS, '**', 'cuobjdump'), recursive=True):
        if c and os.access(c, os.X_OK):
            return c
    for d in os.environ.get('PATH', '').split(os.pathsep) + ['/usr/local/cuda/bin']:
        c = os.path.join(d, 'cuobjdump')
        if os.access(c, os.X_OK):
            return c
    if not fetch:
        sys.exit('sass_loops: no cuobjdump (set CUOBJDUMP, or pass --fetch to download it)')
    os.makedirs(TOOLS, exist_ok=True)
    subprocess.check_call([sys.executable, '-m', 'pip', 'download', '-q', '--no-deps', '-d', TOOLS,
                           'nvidia-cuda-cuobjdump', 'nvidia-cuda-nvdisasm'])
    for w in glob.glob(os.path.join(TOOLS, '*.whl')):
        with zipfile.ZipFile(w) as z:
            z.extractall(TOOLS)
    for c in glob.glob(os.path.join(TOOLS, '**', 'bin', '*'), recursive=True):
        os.chmod(c, 0o755)
    for c in glob.glob(os.path.join(TOOLS, '**', 'cuobjdump'), recursive=True):
        return c
    sys.exit('sass_loops: the wheel held no cuobjdump')


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--fetch', action='store_true')
    ap.add_argument('--arch', default='90a')
    ap.add_argument('source')
    ap.add_argument('pattern', nargs='+')
    o = ap.parse_args()
    tool = cuobjdump(o.fetch)
    with tempfile.TemporaryDirectory() as tmp:
        cubin = os.path.join(tmp, 'k.cubin')
        cmd = ['nvcc', '-O3', '-DNDEBUG', '-std=c++17', '-cubin', '-arch=sm_' + o.arch,
               '-I' + os.path.join(ROOT, 'include'), '-I' + os.path.join(ROOT, 'backends', 'cuda'),
               '-o', cubin, o.source]
        if o.arch == '90a':
            cmd.insert(1, '-DMOBA_CUDA_SM90A=1')
        subprocess.check_call(cmd)
        env = dict(os.environ)
        env['PATH'] = os.path.dirname(tool) + os.pathsep + env.get('PATH', '')
        sass = subprocess.check_output([tool, '-sass', cubin], text=True, env=env)
    funcs = collections.OrderedDict()
    cur = None
    for line in sass.split('\n'):
        m = re.search(r'Function : (\S+)', line)
        if m:
            cur = m.group(1)
            funcs[cur] = []
            continue
        m = re.match(r'\s*/\*([0-9a-f]{4,})\*/\s+(.*?)\s*;', line)
        if m and cur:
            funcs[cur].append((int(m.group(1), 16), m.group(2)))
    for name, ins in funcs.items():
        if not any(p in name for p in o.pattern):
            continue
        print('%s: %d instructions' % (name, len(ins)))
        for a, t in ins:
            m = re.search(r'BRA (0x[0-9a-f]+)', t)
            if not m or int(m.group(1), 16) >= a:
                continue
            lo = int(m.group(1), 16)
            body = [x for x in ins if lo <= x[0] <= a]
            op = collections.Counter(re.sub(r'^@!?U?P\w+\s+', '', x[1]).split()[0].split('.')[0]
                                     for x in body)
            mma = op['HMMA'] + op['HGMMA']
            if mma:
                print('  loop %#x-%#x: %d instructions, %d mma; %s' % (
                    lo, a, len(body), mma,
                    ' '.join('%s %d' % kv for kv in op.most_common(8))))


if __name__ == '__main__':
    main()
