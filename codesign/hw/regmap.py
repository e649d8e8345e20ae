"""The one register-map definition of the OQA overlay, rendered into every view.

The AXI-lite register file follows the Vitis HLS ``s_axilite`` layout for its first four
words (ap_ctrl, global interrupt enable, IER, ISR) so that a PYNQ ``DefaultIP`` driver and the
HLS-generated cores agree. It then holds the layer descriptor, the post-process window for
per-channel parameters, 64-bit per-stage and activity counters (two words each, low word
first, latched when the low word is read) and read-only identification registers including
the 32-bit config hash.

Views rendered from :data:`REGMAP`: a C header (``regmap.h``), Verilog localparams
(``regmap.vh``) and a Python constants module (``regmap.py``) -- see :func:`render_views`.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Field:
    """A bit field inside a 32-bit register."""

    name: str
    lsb: int
    width: int
    doc: str = ""

    @property
    def mask(self) -> int:
        """Mask of the field in its register."""
        return ((1 << self.width) - 1) << self.lsb


@dataclass(frozen=True)
class Register:
    """One register (32-bit) or counter (64-bit, two consecutive words, low first)."""

    name: str
    offset: int
    access: str  # "RW", "RO", "WO", "W1C"
    doc: str
    width: int = 32
    fields: tuple[Field, ...] = field(default_factory=tuple)

    @property
    def words(self) -> int:
        """Number of 32-bit words the register occupies."""
        return self.width // 32


# Per-stage counters, in the order the cycle_counter core numbers its stages.
STAGES = ("TRANSFER_IN", "COMPUTE", "POSTPROC", "WRITEBACK", "TOTAL")
ACTIVITY = ("MACS", "BRAM_READS", "BRAM_WRITES", "BEATS_IN", "BEATS_OUT")


def _build() -> tuple[Register, ...]:
    regs: list[Register] = [
        Register("AP_CTRL", 0x00, "RW", "ap_ctrl_hs handshake", fields=(
            Field("AP_START", 0, 1, "write 1 to start one layer"),
            Field("AP_DONE", 1, 1, "set when the layer finished (clear on read)"),
            Field("AP_IDLE", 2, 1, "engine idle"),
            Field("AP_READY", 3, 1, "ready for a new descriptor"),
            Field("AUTO_RESTART", 7, 1, "restart automatically after done"),
        )),
        Register("GIE", 0x04, "RW", "global interrupt enable", fields=(Field("ENABLE", 0, 1),)),
        Register("IER", 0x08, "RW", "interrupt enable", fields=(
            Field("DONE", 0, 1, "interrupt on done"), Field("READY", 1, 1, "interrupt on ready"))),
        Register("ISR", 0x0C, "W1C", "interrupt status (write 1 to clear)", fields=(
            Field("DONE", 0, 1, "a layer finished"), Field("READY", 1, 1, "ready for a descriptor"))),
        # Layer descriptor.
        Register("DESC_M", 0x10, "RW", "GEMM rows = OH*OW"),
        Register("DESC_N", 0x14, "RW", "GEMM columns = Cout"),
        Register("DESC_K", 0x18, "RW", "GEMM depth = KH*KW*Cin"),
        Register("DESC_IN_HW", 0x1C, "RW", "input height/width", fields=(
            Field("IN_H", 0, 16), Field("IN_W", 16, 16))),
        Register("DESC_IN_C", 0x20, "RW", "input channels"),
        Register("DESC_KERNEL", 0x24, "RW", "kernel, stride, padding and img2col mode", fields=(
            Field("KH", 0, 4), Field("KW", 4, 4), Field("STRIDE", 8, 4),
            Field("PAD", 12, 4, "padding (left padding of a hardware-img2col job)"),
            Field("IMG2COL", 16, 1, "hardware img2col: the stream carries the feature map, not im2col rows"),
            Field("PAD_TOP", 20, 4, "top padding of a hardware-img2col job"))),
        Register("DESC_BITS", 0x28, "RW", "operand and output formats", fields=(
            Field("W_BITS", 0, 4, "weight bits 2..8 (selects the engine)"),
            Field("A_BITS", 4, 4, "activation bits 2..8"),
            Field("OUT_BITS", 8, 4, "output bits 2..8"),
            Field("A_SIGNED", 12, 1, "activations are signed"),
            Field("OUT_SIGNED", 13, 1, "outputs are signed"),
        )),
        Register("DESC_ACT", 0x2C, "RW", "activation code", fields=(
            Field("CODE", 0, 2, "codesign.quant.dyadic.Act"),)),
        Register("DESC_ACT_SIX", 0x30, "RW", "ReLU6/h-swish 'six' constant"),
        Register("DESC_ACT_THREE", 0x34, "RW", "h-swish 'three' constant"),
        Register("DESC_HS_MULT", 0x38, "RW", "h-swish dyadic multiplier"),
        Register("DESC_HS_SHIFT", 0x3C, "RW", "h-swish dyadic shift", fields=(Field("SHIFT", 0, 6),)),
        # Per-channel post-process parameters, written through a window.
        Register("PP_ADDR", 0x40, "RW", "output channel index of the next parameter write"),
        Register("PP_BIAS", 0x44, "RW", "int32 bias of channel PP_ADDR"),
        Register("PP_MULT", 0x48, "RW", "requant multiplier of channel PP_ADDR"),
        Register("PP_SHIFT", 0x4C, "WO", "requant shift; writing it commits the triple and increments PP_ADDR",
                 fields=(Field("SHIFT", 0, 6),)),
        Register("CNT_CTRL", 0x50, "RW", "counter control", fields=(
            Field("CLEAR", 0, 1, "write 1 to clear every counter"),
            Field("FREEZE", 1, 1, "hold every counter"),
        )),
        Register("DESC_OUT_HW", 0x54, "RW", "output height/width (hardware img2col)", fields=(
            Field("OUT_H", 0, 16), Field("OUT_W", 16, 16))),
    ]
    offset = 0x60
    for name in STAGES:
        regs.append(Register(f"CYC_{name}", offset, "RO", f"cycles the {name.lower()} stage was busy", 64))
        offset += 8
    for name in ACTIVITY:
        regs.append(Register(f"CNT_{name}", offset, "RO", f"activity counter: {name.lower().replace('_', ' ')}", 64))
        offset += 8
    regs += [
        Register("CONFIG_HASH", 0xC0, "RO", "32-bit hash of the overlay spec (sha256 of canonical JSON)"),
        Register("IP_VERSION", 0xC4, "RO", "spec format version"),
        Register("BITS_SUPPORTED", 0xC8, "RO", "bit b set when an engine for b-bit weights exists"),
        Register("ENGINE_LANES", 0xCC, "RO", "lanes of the selected engine"),
        # Job geometry computed by the host (no run-time division or chained multiply in the
        # overlay: codesign.hw.mapping computes these from the layer and the engine).
        Register("DESC_KB", 0xD0, "RW", "k-beats per dot product = ceil(K/TREE) of the engine"),
        Register("DESC_G", 0xD4, "RW", "lane groups = ceil(N/LANES) of the engine"),
        Register("DESC_WWORDS", 0xD8, "RW", "weight words of the job = G*KB*LANES"),
        Register("DESC_CODES", 0xDC, "RW", "output codes of the job = M*N"),
        Register("DESC_CW", 0xE0, "RW", "channel words per pixel = Cin/TREE (hardware img2col)"),
        Register("DESC_IFM_WORDS", 0xE4, "RW", "feature-map words = H*W*CW (hardware img2col)"),
        Register("DESC_ROW_PITCH", 0xE8, "RW", "words per image row = W*CW (hardware img2col)"),
        Register("DESC_X_STEP", 0xEC, "RW", "words between horizontal windows = STRIDE*CW (hardware img2col)"),
        Register("DESC_Y_STEP", 0xF0, "RW", "words between output rows = STRIDE*W*CW (hardware img2col)"),
        Register("DESC_I2C_ADDR0", 0xF4, "RW", "address of the first window = -(PAD_TOP*W + PAD)*CW, two's complement"),
        Register("DESC_I2C_FLOOR0", 0xF8, "RW", "first word the first output row needs = -PAD_TOP*W*CW, two's complement"),
    ]
    return tuple(regs)


REGMAP: tuple[Register, ...] = _build()
ADDR_WIDTH = 8  # byte address bits of the AXI-lite slave (0x00..0xFF)


def by_name() -> dict[str, Register]:
    """Registers keyed by name."""
    return {r.name: r for r in REGMAP}


class RegmapError(ValueError):
    """The register map is malformed (a programming error in REGMAP, not a user error)."""


def check_regmap(regs: tuple[Register, ...] = REGMAP) -> None:
    """Raise RegmapError unless the map is well formed: aligned, non-overlapping, inside the
    address space, fields inside their register and disjoint (a real check, not an assert that
    ``python -O`` would drop)."""
    used: dict[int, str] = {}
    for r in regs:
        if r.offset % 4 or (r.width == 64 and r.offset % 8):
            raise RegmapError(f"{r.name} at 0x{r.offset:02X} is not aligned to its width")
        for w in range(r.words):
            addr = r.offset + 4 * w
            if addr >= (1 << ADDR_WIDTH):
                raise RegmapError(f"{r.name} at 0x{addr:02X} is outside the {ADDR_WIDTH}-bit address space")
            if addr in used:
                raise RegmapError(f"{r.name} overlaps {used[addr]} at 0x{addr:02X}")
            used[addr] = r.name
        bits = 0
        for f in r.fields:
            if f.lsb + f.width > 32 or bits & f.mask:
                raise RegmapError(f"field {r.name}.{f.name} leaves the register or overlaps another field")
            bits |= f.mask


def pack_fields(reg: str, **values: int) -> int:
    """The 32-bit word of register ``reg`` holding the named field values (positions from REGMAP)."""
    fields = {f.name: f for f in by_name()[reg].fields}
    word = 0
    for name, value in values.items():
        f = fields[name]
        if not 0 <= int(value) < (1 << f.width):
            raise ValueError(f"{reg}.{name} = {value} does not fit its {f.width}-bit field")
        word |= int(value) << f.lsb
    return word


def field_value(reg: str, name: str, word: int) -> int:
    """Field ``name`` of register ``reg`` read out of ``word``."""
    f = next(f for f in by_name()[reg].fields if f.name == name)
    return (int(word) >> f.lsb) & ((1 << f.width) - 1)


def as_dict(regs: tuple[Register, ...] = REGMAP) -> dict[str, dict[str, object]]:
    """Plain-data view written into ip.json and the Python constants module."""
    return {
        r.name: {
            "offset": r.offset, "width": r.width, "access": r.access, "doc": r.doc,
            "fields": {f.name: {"lsb": f.lsb, "width": f.width, "doc": f.doc} for f in r.fields},
        }
        for r in regs
    }
