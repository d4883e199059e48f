#!/usr/bin/env python3
"""Patches a copy of HIP-CPU so that a block's threads run in reverse order.

HIP-CPU runs a block's threads as fibers, 0, 1, 2, ..., each until it
reaches a barrier (or a warp intrinsic, which HIP-CPU builds on block
barriers), and maps fiber f to threadIdx f.  So between two barriers
thread i always sees every lower thread's work done and no higher
thread's: a missing barrier stays hidden wherever a thread only reads
what lower threads wrote.  With threadIdx = n - 1 - f (and the lanes of
ballots and shuffles renumbered the same way) the highest thread runs
first, which exposes the opposite half of such races.

  reverse_ids.py HIPCPU_COPY    # the copy's src/include is patched in place
"""
import pathlib
import sys

root = pathlib.Path(sys.argv[1]) / "src" / "include" / "hip" / "detail"
PHYS = "id(Fiber::this_fiber())"
LOGICAL = "hipcpu_logical_id_()"

# The fiber's own id stays physical where it picks the next fiber to run
# (tile.hpp's barrier and fiber loop); everywhere the kernel sees it, it
# becomes the logical, reversed id.
edits = {
    "coordinates.hpp": 1,   # threadIdx
    "intrinsics.hpp": 5,    # the lanes of ballot and the shuffles
}
for name, want in edits.items():
    p = root / name
    s = p.read_text()
    if s.count(PHYS) != want:
        sys.exit("reverse_ids.py: %s has %d uses of %s, expected %d: HIP-CPU changed"
                 % (p, s.count(PHYS), PHYS, want))
    p.write_text(s.replace(PHYS, LOGICAL))

p = root / "tile.hpp"
s = p.read_text()
old = "return (r[%s / warpSize]);" % PHYS  # a warp's scratchpad
if s.count(old) != 1:
    sys.exit("reverse_ids.py: %s: the scratchpad's warp index moved: HIP-CPU changed" % p)
s = s.replace(old, "return (r[%s / warpSize]);" % LOGICAL)
anchor = "        template<typename T, std::size_t n>\n        inline\n        std::array<T, n>& Tile::scratchpad() noexcept"
if s.count(anchor) != 1:
    sys.exit("reverse_ids.py: %s: no Tile::scratchpad definition to put the helper before" % p)
helper = """        inline
        std::uint32_t hipcpu_logical_id_() noexcept
        {   // reverse_ids.py: threads run from the highest threadIdx down
            return static_cast<std::uint32_t>(
                count(Tile::this_tile().dimensions()) - 1 - %s);
        }

""" % PHYS
p.write_text(s.replace(anchor, helper + anchor))
print("reverse_ids.py: patched", root)
