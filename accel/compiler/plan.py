"""DRAM memory planning: where every tensor lives, computed once before lowering.

``plan_dram(qnet, config, keep_tensors=..., keep=...) -> DramPlan``. Every tensor gets a *root* (the
tensor whose bytes it occupies: itself, the concat it is written into, the 1x1 map a
Flatten views, or the Pointwise whose table its producer applies in its POST:
:func:`fusions`) and every root a lifetime in topological order and a DRAM address. The
layout of DRAM is: the constants (weights and parameters, appended while lowering, within
:attr:`DramPlan.const_bound` bytes), then the activations (NHWC, first-fit reuse of the bytes
of dead tensors), then the host-side im2col copies. The plan's methods give the
:class:`~accel.program.TensorLayout` of a tensor and the DRAM byte ranges a LOAD or STORE
touches, for synchronisation.

A batch of ``images`` images repeats the activations' region (activations and im2col
copies) once per image, :attr:`DramPlan.image_stride` bytes apart: image ``i``'s copy of a
tensor is at its address plus ``i * image_stride`` (:meth:`DramPlan.layout`), and a 1x1
tensor's copies are the ``images`` pixels of one 1 x ``images`` map (:meth:`DramPlan.pixels`),
so a layer on 1x1 maps (a fully connected layer after global pooling) runs the whole batch
as one tile. One image (``images=1``) is exactly the layout without batching.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from accel import graph as g
from accel.compiler.errors import layer_error
from accel.compiler.ops import Range
from accel.config import AccelConfig
from accel.isa import Load, Store
from accel.numerics import TABLE_ENTRIES
from accel.program import Im2col, TensorLayout
from accel.quantized import QuantizedNetwork
from accel.timing import ceil_div

CONST_ALIGN = 64


def chw(net: g.Network, name: str) -> tuple[int, int, int]:
    """The (C, H, W) of a tensor; a vector ``(F,)`` is ``(F, 1, 1)``."""
    shape = net.shape(name)
    return (shape[0], 1, 1) if len(shape) == 1 else tuple(shape)


@dataclass(frozen=True)
class DramPlan:
    """The DRAM layout of one compiled network. Built by :func:`plan_dram`, read-only after."""

    qnet: QuantizedNetwork
    root: dict[str, str]  # tensor -> the tensor whose bytes it occupies
    channel_offset: dict[str, int]  # tensor -> its first channel within its root
    first_use: dict[str, int]  # root -> position in topological order of its first writer
    last_use: dict[str, int]  # root -> position of its last reader (past the end: kept)
    addr: dict[str, int]  # root -> DRAM byte address
    reuses: dict[str, list[str]]  # root -> the dead roots whose bytes it overlaps
    fused: dict[str, str]  # producer -> the Pointwise whose table its POST applies
    im2col: dict[str, Im2col]  # conv -> its host-side im2col copy (target addressed)
    const_bound: int  # bytes reserved for the constants, from address 0
    dram_bytes: int  # total DRAM bytes
    images: int = 1  # images of the batch
    image_stride: int = 0  # bytes between two images' copies of the activations' region

    def layout(self, name: str, image: int = 0) -> TensorLayout:
        """Image ``image``'s copy of tensor ``name``."""
        net = self.qnet.network
        root = self.root[name]
        c, h, w = chw(net, name)
        q = self.qnet.tensors[name]
        return TensorLayout(
            name=name,
            addr=self.addr[root] + image * self.image_stride,
            height=h,
            width=w,
            channels=c,
            pixel_stride=chw(net, root)[0],
            channel_offset=self.channel_offset[name] if root != name else 0,
            zero_point=q.zero_point,
            scale=q.scale,
        )

    def pixels(self, name: str) -> TensorLayout:
        """The batch's copies of 1x1 tensor ``name`` as the pixels of one 1 x images map."""
        one = self.layout(name)
        if one.height * one.width != 1:
            raise ValueError(f"{name!r} is {one.height}x{one.width}, not 1x1")
        if self.images == 1:
            return one
        return replace(one, width=self.images, pixel_stride=self.image_stride)

    def im2col_target(self, node: str, image: int = 0) -> TensorLayout:
        """Image ``image``'s im2col copy for conv ``node``."""
        target = self.im2col[node].target
        return replace(target, addr=target.addr + image * self.image_stride)

    def dram_space(self, name: str) -> str:
        return "dram:" + self.root.get(name, name)  # im2col copies are their own root

    def dram_range(
        self, layout: TensorLayout, addr: int, outer, outer_stride, inner, inner_stride, run
    ) -> Range:
        """The whole pixels (every channel) a strided access touches. Whole pixels keep the
        channel slices of one tile (k tiles, concat inputs) on one identical range, so
        tracking stays linear; precision within a pixel is not needed."""
        lo = addr
        hi = lo + (outer - 1) * outer_stride + (inner - 1) * inner_stride + run
        base, stride = layout.addr, layout.pixel_stride
        lo = base + (lo - base) // stride * stride
        hi = base + ceil_div(hi - base, stride) * stride
        return (self.dram_space(layout.name), lo, hi)

    def dram_reads(self, layout: TensorLayout, load: Load) -> Range:
        return self.dram_range(
            layout,
            load.dram_addr,
            load.outer_count,
            load.outer_stride,
            load.inner_count,
            load.inner_stride,
            load.run_bytes,
        )

    def dram_writes(self, layout: TensorLayout, store: Store) -> list[Range]:
        root = self.root.get(layout.name, layout.name)
        ranges = [
            self.dram_range(
                layout,
                store.dram_addr,
                store.outer_count,
                store.outer_stride,
                store.inner_count,
                store.inner_stride,
                store.run_bytes,
            )
        ]
        # Bytes reused from dead tensors: wait until their last readers are done.
        ranges += [("dram:" + dead, 0, 1 << 40) for dead in self.reuses[root]]
        return ranges


def plan_dram(
    qnet: QuantizedNetwork,
    config: AccelConfig,
    *,
    keep_tensors: bool,
    keep: frozenset[str],
    images: int = 1,
) -> DramPlan:
    """The DRAM plan of ``qnet`` for a batch of ``images``; ``keep_tensors`` keeps every
    tensor alive to the end, and ``keep`` those tensors (besides the network's outputs)."""
    net = qnet.network
    fused = fusions(net, keep_tensors=keep_tensors, keep=keep)
    root, channel_offset, first_use, last_use = plan_tensors(
        net, keep_tensors=keep_tensors, keep=keep, fused=fused
    )
    im2col = plan_im2col(qnet, config.array.rows)
    # Constants are appended while lowering; lay out activations after a generous gap
    # computed from the weights and parameters (each padded to CONST_ALIGN).
    const_bound = constant_bound(net, config, im2col)
    addr, reuses, top = allocate_dram(net, root, first_use, last_use, const_bound)
    for node, im in list(im2col.items()):
        size = im.target.height * im.target.width * im.target.channels
        im2col[node] = replace(im, target=replace(im.target, addr=top))
        top += ceil_div(size, CONST_ALIGN) * CONST_ALIGN
    image_stride = top - const_bound
    return DramPlan(
        qnet=qnet,
        root=root,
        channel_offset=channel_offset,
        first_use=first_use,
        last_use=last_use,
        addr=addr,
        reuses=reuses,
        fused=fused,
        im2col=im2col,
        const_bound=const_bound,
        dram_bytes=const_bound + images * image_stride,
        images=images,
        image_stride=image_stride,
    )


#: Layers whose POST can apply a following Pointwise's table.
POST_PRODUCERS = (
    g.Conv2d,
    g.ConvTranspose2d,
    g.Linear,
    g.Add,
    g.Mul,
    g.MaxPool2d,
    g.AvgPool2d,
    g.GlobalAvgPool,
)


def fusions(
    net: g.Network, *, keep_tensors: bool, keep: frozenset[str] = frozenset()
) -> dict[str, str]:
    """Producer -> Pointwise, for every Pointwise that its producer's POST applies: the
    producer is a layer that post-processes (:data:`POST_PRODUCERS`), the Pointwise is its
    only consumer, and its own output is not wanted (not a network output, not kept). The
    producer then requantises to its own quantisation, looks the result up in the
    Pointwise's table and stores into the Pointwise's tensor: the int8 golden model's two
    steps in one pass. Every other Pointwise runs on its own (vector unit, then POST)."""
    fused = {}
    for name in net.order():
        if not isinstance(net.op(name), g.Pointwise):
            continue
        (src,) = net.inputs(name)
        wanted = keep_tensors or src in keep or src in net.output_names
        if isinstance(net.op(src), POST_PRODUCERS) and net.consumers(src) == [name] and not wanted:
            fused[src] = name
    return fused


#: Layers that read their input through input loads, which take any channel offset and
#: pixel stride: a channel slice they alone read can be a view.
VIEW_READERS = (
    g.Conv2d,
    g.ConvTranspose2d,
    g.MaxPool2d,
    g.AvgPool2d,
    g.GlobalAvgPool,
    g.Add,
    g.Mul,
    g.Pointwise,
    g.Upsample,
    g.ChannelSlice,
)


def channel_views(
    net: g.Network, *, keep_tensors: bool, keep: frozenset[str] = frozenset()
) -> set[str]:
    """The channel slices read in place (views of their source's channels): every reader
    is a :data:`VIEW_READERS` layer and the slice's own tensor is not wanted (not an output,
    not kept). The others are copied (:mod:`~accel.compiler.lower_layout`)."""
    return {
        name
        for name in net.order()
        if isinstance(net.op(name), g.ChannelSlice)
        and not (keep_tensors or name in keep or name in net.output_names)
        and net.consumers(name)
        and all(isinstance(net.op(c), VIEW_READERS) for c in net.consumers(name))
    }


def prefix_concats(net: g.Network) -> dict[str, str]:
    """Concats stored as the channel prefix of a longer concat, each mapped to the shortest
    concat whose inputs begin with all of its own. DenseNet as torchvision exports it makes
    these: dense layer ``k`` reads ``cat(x0, f1 .. fk-1)``, the first inputs of every later
    layer's concat, so every concat of a block is a view of the block's last one and its
    layers store their outputs once, in place. A concat qualifies when every reader of it is
    a :data:`VIEW_READERS` layer and the concats reading each of its inputs form one chain
    (each a prefix of the next), all but the longest of which qualify."""
    inputs = {n: tuple(net.inputs(n)) for n in net.order() if isinstance(net.op(n), g.Concat)}

    def is_prefix(a: str, b: str) -> bool:
        return len(inputs[a]) < len(inputs[b]) and inputs[b][: len(inputs[a])] == inputs[a]

    parent: dict[str, str] = {}
    for name, srcs in inputs.items():
        readers = {c for src in srcs for c in net.consumers(src) if c in inputs}
        longer = [r for r in readers if is_prefix(name, r)]
        if (
            longer
            and all(r == name or is_prefix(name, r) or is_prefix(r, name) for r in readers)
            and all(isinstance(net.op(c), VIEW_READERS) for c in net.consumers(name))
        ):
            parent[name] = min(longer, key=lambda r: len(inputs[r]))
    while True:  # a chain is placed whole or not at all
        broken = {
            c
            for srcs in inputs.values()
            for src in srcs
            for readers in [[c for c in net.consumers(src) if c in inputs]]
            if len(readers) > 1 and sum(r not in parent for r in readers) > 1
            for c in readers
        }
        if not broken & parent.keys():
            return parent
        for c in broken:
            parent.pop(c, None)


def concat_in_place(net: g.Network, name: str, parent: dict[str, str]) -> bool:
    """Whether concat ``name``'s inputs can be stored into it: each is read by this concat
    alone, or by a chain of :func:`prefix_concats` (``parent``)."""
    for src in net.inputs(name):
        readers = [c for c in net.consumers(src) if isinstance(net.op(c), g.Concat)]
        if isinstance(net.op(src), g.Input) or sum(r not in parent for r in readers) > 1:
            return False
    return True


def plan_tensors(
    net: g.Network,
    *,
    keep_tensors: bool,
    keep: frozenset[str] = frozenset(),
    fused: dict[str, str] | None = None,
) -> tuple[dict[str, str], dict[str, int], dict[str, int], dict[str, int]]:
    """Assign every tensor a root (views: Flatten of 1x1, Concat inputs, the producers of
    ``fused`` Pointwise ops, :func:`channel_views`) and a lifetime.

    Returns ``(root, channel_offset, first_use, last_use)``.
    """
    fused = fused or {}
    root: dict[str, str] = {}
    channel_offset: dict[str, int] = {}
    order = net.order()
    position = {name: i for i, name in enumerate(order)}
    parent = prefix_concats(net)
    for name in order:
        op = net.op(name)
        root.setdefault(name, name)
        channel_offset.setdefault(name, 0)
        if isinstance(op, g.Concat):
            if not concat_in_place(net, name, parent):
                raise layer_error(
                    net,
                    name,
                    "its inputs must be computed layers used by one concat (or by "
                    "a chain of concats, each the channel prefix of the next)",
                )
            offset = 0
            for src in net.inputs(name):
                if root[src] == src:
                    root[src] = name
                    channel_offset[src] = offset
                else:  # an input of the prefix concat before: that concat is a view of this
                    shorter = root[src]
                    while root[shorter] != shorter:
                        shorter = root[shorter]
                    if shorter != name:
                        root[shorter] = name
                offset += chw(net, src)[0]
        if isinstance(op, g.Flatten):
            _, h, w = chw(net, net.inputs(name)[0])
            if h * w == 1:
                root[name] = root[net.inputs(name)[0]]
        if name in fused:
            root[name] = fused[name]
    # Concat inputs are processed before the concat in topological order, but their root
    # is only known once the concat is seen: resolve chains now.
    for name in order:
        top = root[name]
        while root[top] != top:
            top = root[top]
        root[name] = top
    for name in sorted(channel_views(net, keep_tensors=keep_tensors, keep=keep), key=position.get):
        src = net.inputs(name)[0]
        root[name] = root[src]
        channel_offset[name] = channel_offset[src] + net.op(name).start
    for producer, pointwise in fused.items():
        channel_offset[producer] = channel_offset[pointwise]
    first_use: dict[str, int] = {}
    last_use: dict[str, int] = {}
    for name in order:
        r = root[name]
        # The host writes every input before the run: inputs live from the start, wherever
        # the topological order puts their nodes.
        born = 0 if isinstance(net.op(name), g.Input) else position[name]
        first_use[r] = min(first_use.get(r, born), born)
        uses = [position[c] for c in net.consumers(name)] or [len(order)]
        if name in net.output_names or keep_tensors or name in keep:
            uses.append(len(order) + 1)
        last_use[r] = max(last_use.get(r, 0), *uses)
    return root, channel_offset, first_use, last_use


def allocate_dram(
    net: g.Network,
    root: dict[str, str],
    first_use: dict[str, int],
    last_use: dict[str, int],
    base: int,
) -> tuple[dict[str, int], dict[str, list[str]], int]:
    """Place every root tensor in DRAM, reusing the bytes of dead tensors (first fit).

    Returns ``(addr, reuses, top)``: each root's address, the dead roots whose bytes it
    overlaps, and the end of the activations.
    """
    roots = sorted({root[n] for n in net.order()}, key=lambda r: first_use[r])
    live: list[tuple[int, int, str]] = []  # (addr, size, root)
    dead: list[tuple[int, int, str]] = []
    addr: dict[str, int] = {}
    reuses: dict[str, list[str]] = {}
    top = base
    for r in roots:
        now = first_use[r]
        for entry in [e for e in live if last_use[e[2]] < now]:
            live.remove(entry)
            dead.append(entry)
        c, h, w = chw(net, r)
        size = ceil_div(c * h * w, CONST_ALIGN) * CONST_ALIGN
        at = _first_fit(live, size, base)
        if at is None:
            at = max([top] + [a + s for a, s, _ in live])
        top = max(top, at + size)
        live.append((at, size, r))
        addr[r] = at
        reuses[r] = [d for a, s, d in dead if a < at + size and at < a + s]
    return addr, reuses, top


def _first_fit(live: list[tuple[int, int, str]], size: int, base: int) -> int | None:
    cursor = base
    for addr, used, _ in sorted(live):
        if addr - cursor >= size:
            return cursor
        cursor = max(cursor, addr + used)
    return None


def plan_im2col(qnet: QuantizedNetwork, rows: int) -> dict[str, Im2col]:
    """Convs reading a network input with few channels get a host-side im2col copy.

    The copies' addresses are 0 here; :func:`plan_dram` places them after the activations.
    """
    net = qnet.network
    im2col_for: dict[str, Im2col] = {}
    for node in net.order():
        op = net.op(node)
        if not isinstance(op, g.Conv2d):
            continue
        src = net.inputs(node)[0]
        if not isinstance(net.op(src), g.Input) or op.groups != 1:
            continue
        taps = op.kernel[0] * op.kernel[1]
        if op.in_channels >= rows or taps == 1:
            continue
        _, p, q = net.shape(node)
        src_q = qnet.tensors[src]
        im2col_for[node] = Im2col(
            source=src,
            target=TensorLayout(  # address assigned after DRAM allocation
                name=node + ".im2col",
                addr=0,
                height=p,
                width=q,
                channels=taps * op.in_channels,
                pixel_stride=taps * op.in_channels,
                zero_point=src_q.zero_point,
                scale=src_q.scale,
            ),
            kernel=op.kernel,
            stride=op.stride,
            dilation=op.dilation,
            padding=op.padding,
        )
    return im2col_for


def constant_bound(net: g.Network, config: AccelConfig, im2col: dict[str, Im2col]) -> int:
    """An upper bound of the constants' size: packed weight tiles plus parameters."""
    rows, cols = config.array.rows, config.array.cols
    total = 0
    for node in net.order():
        op = net.op(node)
        k = c = taps = 0
        parts = 1  # weight blocks (each aligned), each with its parameters
        if isinstance(op, g.Conv2d):
            k, c, taps = op.out_channels, op.in_channels, op.kernel[0] * op.kernel[1]
            if node in im2col:
                c, taps = c * taps, 1
        elif isinstance(op, g.PRelu):  # an identity depthwise 1x1 conv
            k = c = op.channels
            taps = 1
        elif isinstance(op, g.ConvTranspose2d):
            # One convolution per output phase; their sub-kernels share the R*S taps, and a
            # phase no tap reaches has a 1x1 kernel.
            parts = op.stride[0] * op.stride[1]
            k, c, taps = op.out_channels, op.in_channels, op.kernel[0] * op.kernel[1] + parts
        elif isinstance(op, g.Linear):
            src = net.inputs(node)[0]
            if isinstance(net.op(src), g.Flatten):
                src = net.inputs(src)[0]
            c, h, w = chw(net, src)
            k, taps = op.out_features, h * w
        elif isinstance(op, g.AvgPool2d | g.GlobalAvgPool | g.Add | g.Mul):
            total += ceil_div(config.param_word_bytes, CONST_ALIGN) * CONST_ALIGN
            continue
        elif isinstance(op, g.Pointwise):
            total += ceil_div(TABLE_ENTRIES, CONST_ALIGN) * CONST_ALIGN
            continue
        else:
            continue
        n_kt, n_ct = ceil_div(k, cols), ceil_div(c, rows)
        weights = n_kt * n_ct * taps * rows * cols
        total += ceil_div(weights, CONST_ALIGN) * CONST_ALIGN + parts * CONST_ALIGN
        total += parts * ceil_div(n_kt * config.param_word_bytes, CONST_ALIGN) * CONST_ALIGN
    return total
