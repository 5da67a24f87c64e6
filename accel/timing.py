"""The cycle contract of every instruction, shared by the cycle model and the RTL.

Both :mod:`sim` and :mod:`hdl` read these constants and formulas (DESIGN.md §2.2): the model
uses them directly in its fast mode, the trace mode and the RTL implement the machine that
produces them cycle by cycle, and the tests hold all three to the same numbers.

Conventions. An instruction *starts* in the first cycle in which its engine works on it and
is *done* in the first cycle in which all of its effects are visible (its last SRAM/DRAM
write has happened and the semaphores of its ``signal`` mask have been incremented). A
waiting instruction may start in the very cycle ``done`` of the instruction it waits on.
Every engine is pipelined: it may start its next instruction before the previous one is
done, as each section below states. A program takes ``max(done)``
cycles, counted from cycle 0, the first cycle after ``start`` is asserted.

LOAD (DMA read). The engine issues one read request per run, one per cycle, and takes its
next instruction as soon as the last request is out (``start + runs``). The DRAM read
channel returns data in request order, ``bandwidth`` bytes per beat and one beat per cycle,
no earlier than ``latency`` cycles after the request. A run of ``run_bytes`` fills
``ceil(run_bytes / word_bytes)`` SRAM words, written in *units* of one word, or of
``buffers.weight_banks`` words into a banked weight buffer (:func:`load_unit_bytes`: the
banks take a word each per cycle), cut from the run's first byte; each unit takes
``ceil(bytes / bandwidth)`` beats (a beat never spans two units). The memory is a bus of
``bandwidth``-byte *blocks*
aligned to multiples of ``bandwidth`` (an AXI4 data bus, ``hdl/axi_master.py``): a run
whose first beat straddles two blocks (``addr % bandwidth + first beat's bytes >
bandwidth``) costs one more cycle, in which the realigner takes the first block and sends
nothing (:func:`load_run_beats`). So an instruction's beats occupy the channel from
``max(start + latency, end of the previous instruction's beats)``::

    next_start >= start + runs
    done = max(start + latency, previous done) + sum over runs of load_run_beats

LOADs wait for their data in a descriptor queue of :data:`LOAD_QUEUE` entries behind the one
whose beats are being written (``hdl/dma.py``), and an entry leaves it in the last beat of the
LOAD before it, so at most ``LOAD_QUEUE + 1`` LOADs are started and not done::

    start[k] >= done[k - LOAD_QUEUE - 1]

(:func:`load_queue_free`; a long COMPUTE with many small LOADs behind it meets it: ResNet-50 at
64x64 on an 8x8 input-stationary array). The DRAM's request queue (``latency + 8192``
requests, ``hdl.dram.REQUEST_QUEUE``) is the RTL's only other limit, beyond the contract:
ResNet-18 and MobileNetV2 at 224x224 on ``edge`` stay within it (1,092 and 284 requests;
MobileNetV2's figure predates the array's depthwise mode and was not re-measured); it was
``latency + 2048`` until U-Net at 64x64 on an 8x8 ``edge`` machine needed more.

STORE (DMA write). The engine reads one output word per run and sends it as one beat per
bus block the run touches, ``ceil((addr % bandwidth + run_bytes) / bandwidth)`` beats
(:func:`store_run_beats`; an unaligned run's last beat carries no byte of its own: the bus
bridge puts the bytes of the beat before into it), one per cycle; it takes its next
instruction when its last beat is sent; the write response returns ``latency`` cycles
later::

    next_start >= start + sum over runs of store_run_beats
    done = next_start + latency

The block rule is what an AXI4 memory costs over the idealised port it replaced (beats that
started at any byte); aligned runs cost what they did. Measured on ResNet-18 at 224x224,
``edge`` preset (``accel simulate resnet18 --preset edge``): 7,414,614 cycles before,
7,415,573 after (+959, +0.013%).

A scatter STORE (``lane_stride`` > 1, ``docs/isa.md``: the lanes of a word to every
``lane_stride``-th byte, a channel shuffle) has exactly these beats and cycles: its
``run_bytes`` are the DRAM bytes its run spans, ``(lanes - 1) * lane_stride + 1``, and it
sends one beat per bus block of that span, the bytes between its lanes disabled by the beat's
byte enables (the AXI4 WSTRB). So the contract is unchanged; a shuffle with ``g`` groups
costs about ``g`` times the beats of a contiguous copy of the same lanes (``g`` = 2: a run of
16 lanes spans 31 bytes, 2 or 3 beats of 16 bytes instead of 1 or 2).

POST. One accumulator row per cycle into a pipeline of :data:`POST_LATENCY` stages (the
accumulator read, then six arithmetic stages: the bias add; the requantising multiply's four
18x18 partial products; their sum in two stages; the rounding shift with the zero point; the
clamp, ``hdl/postproc.py``); the next instruction may enter right behind
the last row, so every row carries its own instruction fields and parameters::

    next_start >= start + count
    done = start + count + POST_LATENCY

A PRelu POST (``prelu``) has the timing of any REQUANT POST: the choice between the lane's
two multipliers is a 2:1 select in front of the multiply, by the sign of the bias add
registered in the post-processor's stage 1, and both come from the one parameter word the row
reads anyway (``docs/isa.md``).

The activation table (``lut``) costs no cycle: the last stage's register (the clamped value)
addresses the table buffer's asynchronous read port (one copy per lane), whose byte goes to
the output buffer's write port in the same cycle, so a POST with a table has the timing of
one without. A table is LOADed like any other buffer (``Buffer.TABLE``, 16-byte words). The
RTL reads a POST's slot row by row, up to ``start + count + POST_LATENCY - 1``; the cycle
model reads it whole at ``start``. They agree because a program never writes a slot while a
POST that reads it is in flight: the compiler LOADs a slot only after the POSTs of the table
it held have completed (semaphores). The cycle model does not check this rule; a hand-written
program that breaks it runs differently on the RTL.

COMPUTE, the instruction register. A granted COMPUTE instruction (its ``start``: its
semaphores are acquired) waits in the engine's instruction register for at least
:data:`COMPUTE_DECODE` cycles, then the front end *takes* it (``take``). The register is free
again in the cycle it hands its instruction on, so the next grant may come in that cycle::

    start = max(earliest, take[prev])
    take  = max(start + COMPUTE_DECODE, front_free[prev])

(``front_free`` below.) The register decouples the controller's grant from the compute
engine's first address: in ``start + 1`` the window generator's address steps (``stride_h *
tile_w``, ``dil_h * tile_w``) and loop bounds are computed from it, so the window generator
and the weight loader start from registered values. Every COMPUTE formula below counts from
``take``; ``done`` is as defined above.

COMPUTE, ARRAY mode (weight-stationary, double-buffered weights). Each pass ``j`` first
loads its ``rows`` x ``cols`` weight tile into the shadow registers, one array row per cycle
starting at cycle ``wl[j]``, then feeds its ``T`` = ``out_h * out_w`` input vectors into row 0
in cycles ``f[j] .. f[j] + T - 1``. Row ``i`` switches from active to shadow weights when the
first vector of the pass reaches it (cycle ``f[j] + i``), so the load of row ``i`` (cycle
``wl[j] + i``) only has to precede that switch, and the next load may begin as soon as the
pass has begun::

    wl[0] = max(take, wl[prev] + rows)
    f[0]  = max(wl[0] + 1, stream_free)
    wl[j] = max(wl[j-1] + rows, f[j-1])
    f[j]  = max(wl[j] + 1, f[j-1] + T)
    done  = f[last] + T - 1 + rows + cols - 1 + ACC_LATENCY + 1

``wl[j]`` is the cycle the weight buffer is read for array row 0 (row ``i`` in ``wl[j] + i``);
the row reaches the array one cycle later, and a PE whose switch arrives in that same cycle
takes it straight through (write-through), which is what lets ``f[0] = take + 1``. The
switch and the shadow writes travel along each array row with the data, so PE (i, c) sees
them ``c`` cycles after column 0: the constraints above, stated for column 0, hold for every
column. The window generator issues the first address in cycle ``take`` (from the
registered instruction) so that the first word is fed in ``take + 1``.

Vector ``v`` of pass ``j`` (fed in cycle ``t = f[j] + v``) is multiplied in PE (i, c) in
cycle ``t + i + c`` (the systolic skew below, for a 3x3 array and a pass of T = 2 vectors x0,
x1 fed from cycle f); the sum of column ``c`` leaves the array in cycle ``t + rows + c``, where
its accumulator row is read, and is written back in cycle ``t + rows + c + ACC_LATENCY``. A
read sees every write of earlier cycles and of its own (the read port is write-transparent),
so passes even one cycle apart never race::

    cycle  f    f+1   f+2   f+3   f+4   f+5
    row 0  x0   x1
    row 1       x0    x1
    row 2             x0    x1
    col 0 sum             out0  out1
    col 2 sum                         out0  out1

COMPUTE, depthwise mode (ARRAY with ``depthwise``: rows = kernel taps, columns = channels).
The schedule is the ARRAY one above with a single pass (``passes`` = 1: one weight tile,
``T`` pixels), so ``wl``, ``f``, ``done``, ``stream_free`` and ``front_free`` are those
formulas unchanged, and depthwise and weight-stationary instructions follow each other as
any two ARRAY instructions do. Only the words' source differs: the word of pixel ``v`` for
array row ``t`` (its tap's word) is read through row ``t``'s own input-buffer port in cycle
``f + v + t - 1`` and reaches the row in ``f + v + t``, the cycle weight-stationary lane
``t`` of that vector reaches it; PE (t, c) takes lane ``c`` of it in ``f + v + t + c``
(instead of the activation from its left), so partial sums, array exits and accumulator
writes keep the skew table above. A 3x3 array, taps a, b, c of pixels x0, x1 fed from
cycle f (``a0`` = tap a's word of pixel 0)::

    cycle         f-1   f     f+1   f+2   f+3   f+4   f+5
    read row 0    a0    a1
    read row 1          b0    b1
    read row 2                c0    c1
    PE(0, 0)            a0    a1
    PE(2, 0)                        c0    c1
    PE(2, 2)                                    c0    c1
    col 0 sum                             out0  out1
    col 2 sum                                         out0  out1

Measured (``accel simulate mobilenet_v2 --preset edge --cycles-only --format csv``): the 17
depthwise layers of MobileNetV2 at 224x224 take 284,723 cycles instead of 1,653,609; the
network 1,627,243 instead of 2,988,420 (72.2% MAC utilization instead of 39.3%).

COMPUTE, OUTPUT-STATIONARY (ARRAY with ``os``, only on a machine whose
``array.dataflow`` is ``"os"``; never with ``depthwise``). The instruction computes exactly
what it computes with ``os = 0`` (the same pixels, passes in the order ct, r, s, weight tile
``w_base + k*rows + i`` = reduction lane ``i``, window addresses, ``pad_value`` and
``accumulate``); only the dataflow differs. Array row ``p`` is an output pixel, column ``c``
output channel ``c``, and every PE keeps its own int32 sum. With ``R`` = rows, ``Cc`` = cols,
``T`` = pixels and ``P`` = passes, the pixels go in ``G = ceil(T / R)`` groups of ``R``
(group ``g``, row ``p``: pixel ``g*R + p``; rows past ``T`` are *dummy* rows, fed
``pad_value`` and never written), and a group takes ``S = P * R`` steps (step ``s = k*R +
i``: pass ``k``, reduction lane ``i``). ``F`` is the cycle of group 0's step 0.

Feed: one input word per cycle, group-major, then pass, then row: the word of pixel ``g*R +
p`` for pass ``k`` is read in ``F + g*S + k*R + p - 1`` and reaches row ``p`` in ``F + g*S +
k*R + p``, which shifts its lanes out one per cycle (lane ``i`` at the left edge in ``F + g*S
+ k*R + p + i``), one column to the right per cycle. Weight word ``w_base + k*R + i`` (step
``s``) is read in ``F + g*S + s - 1``; its lane ``c`` enters the top of column ``c`` in ``F +
g*S + s + c`` and moves down one row per cycle. So PE (p, c) multiplies step ``s`` of group
``g`` in ``F + g*S + s + p + c``: one input-buffer read and one weight-buffer read per cycle.

Drain: with ``E_g = F + g*S + S - 1`` (group ``g``'s last step at PE (0, 0)), the sum of PE
(p, c) leaves the bottom of column ``c`` in its *exit cycle* ``X_g(p, c) = E_g + 2*R + c + 1
- p`` (row R-1 first, row 0 last, one per cycle), when accumulator bank ``c`` reads row
``acc_base + g*R + p``; the row is written in ``X + ACC_LATENCY`` (overwritten unless
``accumulate``), dummy rows not at all. The reference PE behind the exit cycles registers
its product, then ``acc <= acc + prod``, and on the group's last step ``hold <= acc + prod,
acc <= 0``; column ``c``'s holds are loaded in parallel into a drain shift chain in ``E_g + R
+ c + 1``, whose bottom register is the exit. As ``S >= R``, group ``g``'s drain never meets
group ``g + 1``'s. A 2x2 array, one pass (``S`` = 2), ``T`` = 3 pixels x0, x1, x2 (two groups,
the second with a dummy row ``--``; ``x1.0`` = lane 0 of x1 times weight word 0, ``y1`` =
pixel 1's sum), fed from cycle f::

    cycle        f     f+1   f+2   f+3   f+4   f+5   f+6   f+7   f+8   f+9
    row 0 word   x0          x2
    row 1 word         x1          --
    PE(0, 0)     x0.0  x0.1  x2.0  x2.1
    PE(1, 0)           x1.0  x1.1  --    --
    PE(1, 1)                 x1.0  x1.1  --    --
    col 0 exit                           y1    y0    --    y2
    col 1 exit                                 y1    y0    --    y2

Schedule: ``start`` and ``take`` as every COMPUTE, then::

    F    = max(take + 1, stream_free)
    done = F + G*S - 1 + 2*R + Cc + ACC_LATENCY + 1     (= X_{G-1}(0, Cc-1) + ACC_LATENCY + 1)
    stream_free = F + G*S,  front_free = F + G*S - 1,  last_feed = F + G*S - 1

(``done`` is the first cycle after the last write, as for every other COMPUTE). The OS
array is a unit of its own for the unit-switch rule below; an OS instruction leaves the weight
loader's ``wl`` as it was. It costs ``G*S = ceil(T/R)*R*P`` feed cycles, against about
``P*max(T, rows)`` weight-stationary.

COMPUTE, INPUT-STATIONARY (ARRAY with ``is_``, only on a machine whose ``array.dataflow``
is ``"is"``, with a square array ``R`` = rows = ``Cc`` = cols; never with ``os`` or
``depthwise``). With ``KT`` = ``k_tiles`` = 1 the instruction computes exactly what it
computes weight-stationary (the same ``T`` pixels, ``P`` passes in the order ct, r, s, window
words, ``pad_value``, accumulator rows and ``accumulate``); only the weight layout differs:
pass ``k``'s words are ``w_base + k*R + n``, word ``n`` holding output channel ``n``'s
weights, lane ``i`` = reduction lane ``i`` (the transpose of the weight-stationary tile).
With ``KT`` > 1 it computes ``KT`` such instructions at once, ``L = KT*Cc`` channels: pass
``k``'s words are ``w_base + k*L + n`` (``n < L``), and channel ``n`` goes to accumulator bank
``n % Cc``, row ``acc_base + (n // Cc)*k_stride + pixel``. SCALE-Sim's IS: array rows = the
reduction, columns = output pixels, the filters streamed; SCALE-Sim streams all ``K``
filters past a stationary tile, ``KT`` lets the compiler do the same up to its buffers.

Mapping. The pixels go in ``G = ceil(T / Cc)`` groups of ``Cc`` (column ``c`` of group
``g``: pixel ``g*Cc + c``; columns past ``T`` are *dummy* columns, fed ``pad_value`` and
never written). Tile ``j`` = (group ``j // P``, pass ``j % P``), ``G*P`` tiles. Its
*stationary* operand: PE (i, c) holds lane ``i`` of the window word of pixel ``g*Cc + c``
for pass ``k``. Its *stream*: the ``L`` weight words of pass ``k``, word ``n`` (channel
``n``) entering the left edge in cycle ``f[j] + n`` (lane ``i`` to row ``i``, the
weight-stationary skew); partial sums flow down the columns as weight-stationary, and column
``c``'s sum for vector ``n``, out[pixel g*Cc + c][channel n], leaves in ``f[j] + n + R + c``
into accumulator bank ``n % Cc`` (a rotation: in any cycle the columns feed different banks,
as their vectors are less than ``Cc`` apart), row ``acc_base + (n // Cc)*k_stride + g*Cc +
c``, read in that cycle and written ``ACC_LATENCY`` later (overwritten when ``k == 0`` and
not ``accumulate``). The stationary tile is loaded once per ``L`` vectors.

The transposer. The window generator reads tile ``j``'s ``Cc`` words (columns in order;
``pad_value`` for dummy columns and padding) in cycles ``rd[j] + c`` into transpose buffer
``j % 2``; row ``i`` of the tile (lane ``i`` of its words) goes to the shadow registers in
``wl[j] + i`` with the weight-stationary meaning of ``wl`` (the switch travels with the
first streamed vector). A 2x2 array, one pass, ``T`` = 3 pixels x0, x1, x2 (tiles A = x0, x1
and B = x2, --; ``w0`` = channel 0's word, ``y1.0`` = pixel 1, channel 0), taken in ``t``::

    cycle        t     t+1   t+2   t+3   t+4   t+5   t+6   t+7   t+8   t+9   t+10
    read         x0    x1    x2    --
    row load                       A0    A1    B0    B1
    stream                               w0    w1    w0    w1
    col 0 exit                                       y0.0  y0.1  y2.0  y2.1
    col 1 exit                                             y1.0  y1.1  --    --

Schedule: ``take`` as every COMPUTE, then::

    rd[0] = take
    rd[j] = max(rd[j-1] + Cc, wl[j-2] + R)             (wl[-1] = wl[-2] = -inf here)
    wl[j] = max(rd[j] + Cc + 1, wl[j-1] + R, f[j-1])   (wl[-1], f[-1]: the previous instruction's)
    f[j]  = max(wl[j] + 1, f[j-1] + L if j > 0 else stream_free)
    done  = f[last] + L - 1 + R + Cc - 1 + ACC_LATENCY + 1
    stream_free = f[last] + L,  front_free = max(wl[last] + R, f[last])

(``rd[j] + Cc + 1``: the last word arrives in ``rd[j] + Cc`` and is registered in the
transpose buffer.) A buffer is free once its tile's rows have left it, so with ``L = Cc`` the
steady state is two tiles per ``2*R + 1`` cycles, ``(G*P*(2*R + 1)) / 2`` feed cycles
against about ``P*max(T, R)`` weight-stationary; from ``KT = 2`` on (``2*L >= 2*R + 1``) the
stream never waits for the transposer in the steady state (``rd[j] = wl[j-2] + R``, ``wl[j] =
f[j-1]``, ``f[j] = f[j-1] + L``): about ``G*P*L`` feed cycles, every vector a useful one but
the dummy columns'. Between two IS instructions the stream waits ``R + 1`` cycles more
(the next ``take`` waits for the last row load, its first vector for the transposer, ``Cc +
2`` cycles later), once per ``KT`` k tiles. A 2x2 array, ``KT`` = 2 (``L``
= 4), one pass, ``T`` = 2 pixels x0, x1 (tile A; ``w2`` = channel 2's word, its sums into bank
0 of the rows ``k_stride`` on)::

    cycle        t     t+1   t+2   t+3   t+4   t+5   t+6   t+7   t+8   t+9
    read         x0    x1
    row load                       A0    A1
    stream                               w0    w1    w2    w3
    col 0 exit                                       y0.0  y0.1  y0.2  y0.3
    col 1 exit                                             y1.0  y1.1  y1.2  y1.3

The IS array is a unit of its own for the unit-switch rule below; an IS instruction's
``wl`` is the weight loader's, as an ARRAY one's.

VECTOR modes (VMAX, VSUM, VADD; VMUL is VADD with ``mul``, timed as VADD). No weights.
The word fed in cycle ``t`` reads its accumulator row in cycle ``t`` and writes it in cycle
``t + VECTOR_LATENCY``. A pass feeds ``T`` words but occupies the feed slot for ``max(T,
VECTOR_MIN_PASS)`` cycles, so that a row's write precedes its next read::

    f[0] = max(take + 1, stream_free)
    f[j] = f[j-1] + max(T, VECTOR_MIN_PASS)
    done = f[last] + T - 1 + VECTOR_LATENCY + 1

Between instructions. ``stream_free`` is ``f[last] + T`` of the previous compute instruction
in ARRAY mode, ``F + G*S`` output-stationary, ``f[last] + L`` input-stationary and
``f[last] + max(T, VECTOR_MIN_PASS)`` in vector mode; when the previous instruction used
another unit (the units: the vector unit, the weight-stationary array including its
depthwise mode, the output-stationary array, the input-stationary array), ``stream_free``
is also at least its ``done`` (the units share the accumulator write ports).
The front end takes the next instruction (its ``take``) no earlier than ``front_free`` of the
previous one: ``max(wl[last] + rows, f[last])`` after ARRAY (input-stationary too), ``F +
G*S - 1`` output-stationary, ``f[last] + max(T, VECTOR_MIN_PASS) - 1`` after a vector
instruction.

Accumulator hazards. The read-modify-write port of the accumulator buffer returns a write of the
same cycle (write-transparent), so a row may be read again as early as the cycle its previous
write lands. Every schedule above keeps that order on its own, but for one pair the program
must: an ARRAY read of a row is always later than any earlier feed's write (the skew is the same
for every word; output-stationary, group ``g + 1`` of an instruction or group 0 of the next
starts its drain at least ``S >= R`` cycles after group ``g``'s, which covers the ``R - 1``
cycles between a group's first and last exit), passes of one instruction are spaced by the rules
above, and a switch between the units waits for ``done``; but two consecutive *vector*
instructions may meet, and a row that the first writes in its last pass (word ``j``, fed in
``f_A + j``, written in ``f_A + j + VECTOR_LATENCY``) may be read by the second's first pass
(word ``i``, fed in ``f_B + i``) before that write lands. The contract forbids it: when the
second instruction's first pass reads what is there (``accumulate``) and the two touch a common
row ``acc_base_B + i = acc_base_A + j``, then ``f_B + i >= f_A + j + VECTOR_LATENCY``, i.e.
``f_B - f_A >= (acc_base_B - acc_base_A) + VECTOR_LATENCY``. The compiler never emits such a
pair: its only vector instructions that accumulate across instructions are the blocks of a
global pool summed block by block, one pixel on one row (offset 0), whose passes hold the feed
slot ``VECTOR_MIN_PASS > VECTOR_LATENCY`` cycles each; and the cycle model rejects a program
with one (:func:`vector_row_hazard`, :class:`HazardError`) naming both.

INSTRUCTION FETCH (the AXI top only, :class:`Fetch`). The AXI top
(``hdl.axi_top.AxiAccelerator``) reads each engine's stream from DRAM over a read-only AXI4
master of its own (``m_axi_insn``, ``Fetch.width`` data bytes, ``hdl/fetch.py``) into a
buffer of ``Fetch.depth`` instructions per engine; the other tops read an instruction memory
and have no fetch timing (the model's default, ``fetch=None``). The instruction master's
slave is the same memory as the data master's: it answers ``latency`` cycles after the AR
handshake, one beat per cycle, and never lowers ``arready``. One instruction (64 bytes) is
one AR burst of ``B = ceil(64 / width)`` beats. The AR channel is time-multiplexed so that
the engines never meet: engine ``e`` (0..3 in :class:`accel.isa.Engine` order) may send an AR
only in the cycles ``c`` with ``c % (4 * B) == e * B`` (counted from cycle 0), and its R
beats then own the R channel for ``B`` cycles that no other engine's slot reaches.
Instruction ``k`` of a stream is requested in its engine's first slot after its predecessor's
request and its buffer entry's release, and may start two cycles after its last beat (the
controller holds a fetched instruction in a register from the cycle after its last beat, and
grants from that register)::

    request[k] = first slot >= max(request[k-1] + 1, start[k-depth] + 1)   (0 for k < depth)
    avail[k]   = request[k] + latency + B + 1
    start[k]  >= avail[k]

(the entry of instruction ``k - depth`` is free once that instruction is granted; the fetch
sees it free one cycle later). An instruction's ``ready`` (the counters' "fetched and its
engine free") is also at least its ``avail``. So a stream's first instructions cost their
slot plus ``latency + B + 1`` cycles, and later ones only while an engine takes instructions
faster than one per ``4 * B`` cycles for longer than its buffer covers. Measured with the
default ``Fetch()`` (8 instructions, 64 bytes) by ``sim.run(program, compute_outputs=False,
fetch=Fetch())`` on main after 1296bcf (with the held instruction's cycle): tinynet on
``tiny`` 12,064 cycles without the fetch, 12,074 with it (+10, +0.08%); ResNet-18 at 224x224
on ``edge`` 7,401,256 and 7,401,756 (+500, +0.007%); MobileNetV2 at 224x224 on ``edge``
1,621,083 and 1,621,768 (+685, +0.042%). Without that cycle (1296bcf) the fetch cost +9,
+491 and +676.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from accel import isa
from accel.config import AccelConfig
from accel.isa import Compute, ComputeMode, Load, Post, Store

POST_LATENCY = 7
ACC_LATENCY = 1
#: Cycles a granted COMPUTE instruction spends at least in the engine's instruction register
#: (the grant, then the decode of the window generator's steps).
COMPUTE_DECODE = 2
VECTOR_LATENCY = 5
VECTOR_MIN_PASS = VECTOR_LATENCY + 1


class HazardError(RuntimeError):
    """A program the contract forbids: an accumulator row read before its write lands."""


def vector_row_hazard(
    previous: Compute, previous_last_feed: int, current: Compute, first_feed: int
) -> int | None:
    """The first accumulator row that vector instruction ``current`` (first pass fed from
    ``first_feed``) reads before the last pass of the vector instruction before it (fed from
    ``previous_last_feed``) has written it, or ``None`` (see the module docstring)."""
    if not (is_vector(previous.mode) and is_vector(current.mode) and current.accumulate):
        return None
    offset = current.acc_base - previous.acc_base
    first = max(0, -offset)  # first word of ``current`` on a row of ``previous``
    if first >= min(current.pixels, previous.pixels - offset):
        return None
    if first_feed - previous_last_feed >= offset + VECTOR_LATENCY:
        return None
    return current.acc_base + first


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def word_bytes(config: AccelConfig, buffer: int) -> int:
    """Width in bytes of one word of a LOAD destination buffer (see :class:`accel.isa.Buffer`)."""
    words = (config.input_word_bytes, config.weight_word_bytes, config.param_word_bytes)
    return isa.TABLE_WORD_BYTES if buffer == isa.Buffer.TABLE else words[buffer]


def load_unit_bytes(config: AccelConfig, buffer: int) -> int:
    """The bytes a LOAD writes into ``buffer`` in one cycle at most: one word, or
    ``buffers.weight_banks`` words of the weight buffer (module docstring, LOAD)."""
    word = word_bytes(config, buffer)
    return word * config.buffers.weight_banks if buffer == isa.Buffer.WEIGHT else word


def bandwidth_note(config: AccelConfig) -> str | None:
    """Why DRAM bandwidth above the DMA's word rate buys nothing (``None`` when it does not
    exceed it): a beat never spans two buffer words and the DMA moves one word per cycle
    (a banked weight buffer: ``weight_banks`` words)."""
    bandwidth = config.dram.bandwidth
    weights = load_unit_bytes(config, isa.Buffer.WEIGHT)
    fastest = max(config.input_word_bytes, weights, config.output_word_bytes)
    if bandwidth <= fastest:
        return None
    return (
        f"dram.bandwidth = {bandwidth} B/cycle is more than the DMA moves: one buffer word "
        f"per cycle (input words {config.input_word_bytes} B, weight words "
        f"{config.weight_word_bytes} B x {config.buffers.weight_banks} banks, output words "
        f"{config.output_word_bytes} B, parameter words {config.param_word_bytes} B), so "
        f"activations and weights move as at {fastest} B/cycle at most"
    )


def run_beats(run_bytes: int, word: int, bandwidth: int) -> int:
    """DRAM data beats to move a run of ``run_bytes`` into words of ``word`` bytes."""
    full, rest = divmod(run_bytes, word)
    return full * ceil_div(word, bandwidth) + (ceil_div(rest, bandwidth) if rest else 0)


def load_run_beats(addr: int, run_bytes: int, word: int, bandwidth: int) -> int:
    """Read-channel cycles of one LOAD run from DRAM address ``addr``: its data beats, plus
    one if its first beat straddles two ``bandwidth``-byte bus blocks."""
    first = min(run_bytes, word, bandwidth)
    return run_beats(run_bytes, word, bandwidth) + (addr % bandwidth + first > bandwidth)


def store_run_beats(addr: int, run_bytes: int, bandwidth: int) -> int:
    """Write beats of one STORE run to DRAM address ``addr``: the bus blocks it touches."""
    return ceil_div(addr % bandwidth + run_bytes, bandwidth)


def run_addresses(instr: Load | Store) -> np.ndarray:
    """The DRAM address of every run of a LOAD or STORE, ``j`` (inner) fastest."""
    outer = np.arange(instr.outer_count, dtype=np.int64)[:, None] * instr.outer_stride
    inner = np.arange(instr.inner_count, dtype=np.int64)[None, :] * instr.inner_stride
    return (instr.dram_addr + outer + inner).ravel()


def _straddles(instr: Load | Store, first: int, bandwidth: int) -> int:
    """Runs whose first ``first`` bytes straddle two bus blocks (``addr % bandwidth >
    bandwidth - first``)."""
    if first <= 1:
        return 0
    outer, inner = instr.outer_count, instr.inner_count
    if (inner == 1 or instr.inner_stride % bandwidth == 0) and (
        outer == 1 or instr.outer_stride % bandwidth == 0
    ):  # every run starts at the same offset in its block (most transfers: no array needed)
        return outer * inner if instr.dram_addr % bandwidth > bandwidth - first else 0
    return int(np.count_nonzero(run_addresses(instr) % bandwidth > bandwidth - first))


def load_runs(load: Load) -> int:
    return load.outer_count * load.inner_count


def load_beats(load: Load, config: AccelConfig) -> int:
    """Read-channel cycles of a LOAD: :func:`load_run_beats` over its runs."""
    bandwidth = config.dram.bandwidth
    unit = load_unit_bytes(config, load.buffer)
    beats = load_runs(load) * run_beats(load.run_bytes, unit, bandwidth)
    return beats + _straddles(load, min(load.run_bytes, unit, bandwidth), bandwidth)


def store_beats(store: Store, config: AccelConfig) -> int:
    """Write beats of a STORE: :func:`store_run_beats` over its runs."""
    bandwidth = config.dram.bandwidth
    runs = store.outer_count * store.inner_count
    # ceil((o + n) / W) with n = full*W + rest: full + 1 if o > 0 (rest 0), else
    # full + 1 + (o + rest > W).
    full, rest = divmod(store.run_bytes, bandwidth)
    if rest == 0:
        return runs * full + _straddles(store, bandwidth, bandwidth)
    return runs * (full + 1) + _straddles(store, rest, bandwidth)


@dataclass(frozen=True)
class EngineTiming:
    """Start and done of one instruction, and when its engine/channel are free again."""

    start: int
    done: int
    next_start: int  # earliest start of the engine's next instruction


#: Entries of the LOAD engine's descriptor queue (``hdl.dma.LoadEngine``'s ``depth``, the
#: tops' ``load_queue``): the module docstring, LOAD.
LOAD_QUEUE = 128


def load_queue_free(done: Sequence[int]) -> int:
    """Earliest start of the next LOAD that the descriptor queue allows, given the ``done``
    of every LOAD before it: ``done[k - LOAD_QUEUE - 1]`` (0 while fewer are started)."""
    return done[-LOAD_QUEUE - 1] if len(done) > LOAD_QUEUE else 0


def load_timing(load: Load, earliest: int, free: int, channel_free: int, config: AccelConfig):
    """LOAD whose semaphores are available from ``earliest``; ``free`` is the engine's
    earliest start, ``channel_free`` the end of the previous beats."""
    start = max(earliest, free)
    done = max(start + config.dram.latency, channel_free) + load_beats(load, config)
    return EngineTiming(start, done, start + load_runs(load))


def store_timing(store: Store, earliest: int, free: int, config: AccelConfig) -> EngineTiming:
    start = max(earliest, free)
    sent = start + store_beats(store, config)
    return EngineTiming(start, sent + config.dram.latency, sent)


def post_timing(post: Post, earliest: int, free: int) -> EngineTiming:
    start = max(earliest, free)
    return EngineTiming(start, start + post.count + POST_LATENCY, start + post.count)


def is_vector(mode: int) -> bool:
    return mode != ComputeMode.ARRAY


#: The compute units of the unit-switch rule (the module docstring, "Between instructions").
VECTOR_UNIT, WS_UNIT, OS_UNIT, IS_UNIT = "vector", "ws", "os", "is"


def compute_unit(instr: Compute) -> str:
    """The unit a COMPUTE runs on: the vector unit, or the array weight-, output- or
    input-stationary (its depthwise mode is weight-stationary)."""
    if is_vector(instr.mode):
        return VECTOR_UNIT
    if instr.os:
        return OS_UNIT
    return IS_UNIT if instr.is_ else WS_UNIT


def is_tiles(instr: Compute, cols: int) -> int:
    """Tiles of an input-stationary instruction: ``ceil(T / cols)`` pixel groups times its
    passes (``accel.timing``, INPUT-STATIONARY)."""
    return ceil_div(instr.pixels, cols) * instr.passes


def is_words(instr: Compute, cols: int) -> int:
    """``L``, the weight words an input-stationary instruction streams per tile: ``cols``
    per k tile."""
    return instr.k_tiles * cols


def is_schedule(
    tiles: int,
    take: int,
    stream_free: int,
    last_weight_load: int,
    last_feed: int,
    rows: int,
    words: int | None = None,
) -> tuple[int, int, int]:
    """``(f[0], wl[last], f[last])`` of an input-stationary instruction of ``tiles`` tiles
    of ``words`` (``L``; default ``rows``) vectors on a ``rows`` x ``rows`` array: the
    recurrences of the module docstring, with the periodic shortcut (the recurrences are
    max-plus: once the state relative to ``f[j]`` repeats, every later period repeats its
    spacing)."""
    words = rows if words is None else words
    cols = rows
    neg = -(1 << 40)
    rd = take
    wl = max(rd + cols + 1, last_weight_load + rows, last_feed)
    f = max(wl + 1, stream_free)
    first = f
    wl_before = neg  # wl[j-2] as the transposer sees it: none before the instruction
    seen: dict[tuple[int, int, int], tuple[int, int]] = {}
    j = 0
    while j < tiles - 1:
        key = (rd - f, wl_before - f, wl - f)
        if key in seen:  # periodic from here: skip whole periods
            j0, f0 = seen[key]
            period, shift = j - j0, f - f0
            skip = (tiles - 1 - j) // period
            rd, wl_before, wl, f = (x + skip * shift for x in (rd, wl_before, wl, f))
            j += skip * period
            seen.clear()
            if j >= tiles - 1:
                break
        seen[key] = (j, f)
        rd = max(rd + cols, wl_before + rows)
        wl_before, wl = wl, max(rd + cols + 1, wl + rows, f)
        f = max(wl + 1, f + words)
        j += 1
    return first, wl, f


def os_groups(instr: Compute, rows: int) -> tuple[int, int]:
    """``(G, S)`` of an output-stationary instruction: pixel groups of ``rows``, steps per
    group (``passes * rows``)."""
    return ceil_div(instr.pixels, rows), instr.passes * rows


@dataclass(frozen=True)
class ComputeState:
    """What the next compute instruction needs to know about the previous one."""

    unit: str = WS_UNIT
    register_free: int = 0  # the previous instruction's ``take``
    front_free: int = 0
    stream_free: int = 0
    last_weight_load: int = -(1 << 40)
    last_feed: int = -(1 << 40)
    done: int = 0

    @property
    def vector(self) -> bool:
        """The previous instruction ran on the vector unit."""
        return self.unit == VECTOR_UNIT


@dataclass(frozen=True)
class ComputeTiming:
    start: int
    take: int
    first_feed: int
    last_feed: int
    done: int
    state: ComputeState


def compute_timing(
    instr: Compute, earliest: int, state: ComputeState, config: AccelConfig
) -> ComputeTiming:
    """Schedule one compute instruction whose semaphores are available from ``earliest``.

    Implements the recurrences of the module docstring in closed form (output-stationary: its
    schedule there, one feed slot of ``G*S`` cycles): in ARRAY mode, after
    the first pass the feed spacing is ``T`` when ``T >= rows``; when ``T < rows`` the weight
    port sets it, converging to ``rows`` once a weight load immediately precedes its feed.
    """
    rows, cols = config.array.rows, config.array.cols
    T = instr.pixels
    passes = instr.passes
    unit = compute_unit(instr)
    start = max(earliest, state.register_free)
    take = max(start + COMPUTE_DECODE, state.front_free)
    stream_free = state.stream_free
    if unit != state.unit:
        stream_free = max(stream_free, state.done)
    if unit == VECTOR_UNIT:
        slot = max(T, VECTOR_MIN_PASS)
        first = max(take + 1, stream_free)
        last = first + (passes - 1) * slot
        done = last + T - 1 + VECTOR_LATENCY + 1
        new = ComputeState(
            unit, take, last + slot - 1, last + slot, state.last_weight_load, last, done
        )
        return ComputeTiming(start, take, first, last, done, new)
    if unit == OS_UNIT:
        groups, steps = os_groups(instr, rows)
        first = max(take + 1, stream_free)
        last = first + groups * steps - 1
        done = last + 2 * rows + cols + ACC_LATENCY + 1
        new = ComputeState(unit, take, last, last + 1, state.last_weight_load, last, done)
        return ComputeTiming(start, take, first, last, done, new)
    if unit == IS_UNIT:
        words = is_words(instr, cols)
        first, wl_last, f_last = is_schedule(
            is_tiles(instr, cols),
            take,
            stream_free,
            state.last_weight_load,
            state.last_feed,
            rows,
            words,
        )
        done = f_last + words - 1 + rows + cols - 1 + ACC_LATENCY + 1
        front_free = max(wl_last + rows, f_last)
        new = ComputeState(unit, take, front_free, f_last + words, wl_last, f_last, done)
        return ComputeTiming(start, take, first, f_last, done, new)
    wl = max(take, state.last_weight_load + rows, state.last_feed)
    f = max(wl + 1, stream_free)
    first = f
    # Pass j depends on pass j-1 only through d = f - wl (its load-to-feed distance):
    #   lag = max(rows - d, 0); spacing = max(lag + 1, T); d' = spacing - lag.
    # Once d is a fixed point every later pass has the same spacing.
    remaining = passes - 1
    while remaining:
        d = f - wl
        lag = max(rows - d, 0)
        spacing = max(lag + 1, T)
        wl, f = f + lag, f + spacing
        remaining -= 1
        if f - wl == d:
            # Fixed point: every later pass repeats this spacing.
            f += remaining * spacing
            wl += remaining * spacing
            break
    f_last, wl_last = f, wl
    done = f_last + T - 1 + rows + cols - 1 + ACC_LATENCY + 1
    front_free = max(wl_last + rows, f_last)
    new = ComputeState(unit, take, front_free, f_last + T, wl_last, f_last, done)
    return ComputeTiming(start, take, first, f_last, done, new)


@dataclass(frozen=True)
class Fetch:
    """The instruction fetch of the AXI top: ``depth`` buffered instructions per engine (see
    the module docstring, INSTRUCTION FETCH)."""

    depth: int = 8
    #: Data bytes of the instruction master ``m_axi_insn``: a power of two, 4 to 128.
    width: int = 64

    def __post_init__(self) -> None:
        for name, low, high in (("depth", 1, 1 << 16), ("width", 4, 128)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"fetch {name} must be an int, not {value!r}")
            if not low <= value <= high or value & (value - 1):
                raise ValueError(
                    f"fetch {name} = {value} must be a power of two from {low} to {high}"
                )

    def beats(self) -> int:
        """AXI beats of one instruction on ``m_axi_insn``."""
        return ceil_div(isa.INSTRUCTION_BYTES, self.width)


def fetch_slot(engine: int, earliest: int, fetch: Fetch) -> int:
    """The first AR slot of ``engine`` (its :class:`accel.isa.Engine` value) at or after
    cycle ``earliest``."""
    beats = fetch.beats()
    period = len(isa.Engine) * beats
    offset = int(engine) * beats
    return earliest + (offset - earliest) % period


def fetch_available(request: int, fetch: Fetch, config: AccelConfig) -> int:
    """First cycle an instruction requested in cycle ``request`` may start."""
    return request + config.dram.latency + fetch.beats() + 1


class FetchTimes:
    """The fetch of one engine's stream, instruction by instruction: :meth:`available` is the
    ``avail`` of the next instruction (the one after the last :meth:`started`)."""

    def __init__(self, engine: int, fetch: Fetch, config: AccelConfig) -> None:
        self._engine = int(engine)
        self._fetch = fetch
        self._config = config
        self._last_request = -1
        self._next: int | None = None  # ``avail`` of the next instruction, once computed
        self._starts: list[int] = []

    def available(self) -> int:
        if self._next is None:
            k = len(self._starts)
            depth = self._fetch.depth
            credit = self._starts[k - depth] + 1 if k >= depth else 0
            earliest = max(self._last_request + 1, credit)
            self._last_request = fetch_slot(self._engine, earliest, self._fetch)
            self._next = fetch_available(self._last_request, self._fetch, self._config)
        return self._next

    def started(self, start: int) -> None:
        """The next instruction was granted in cycle ``start`` (>= :meth:`available`)."""
        self.available()
        self._next = None
        self._starts.append(start)
