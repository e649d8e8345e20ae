"""The Xilinx AXI DMA's channel registers (PG021, direct register mode) and their status decode.

PYNQ's DMA driver only exposes ``idle``/``running``/``error`` booleans, and a channel that
hit an error halts: ``idle`` never comes, and the next ``transfer()`` raises a plain
``RuntimeError("DMA channel not started")``. The board glue therefore reads the status
register itself after every transfer and on a timeout, and names the error bits.
"""

from __future__ import annotations

from collections.abc import Callable

# Channel register blocks (PG021 table 2-5/2-6): MM2S at 0x00, S2MM at 0x30, same layout.
CHANNEL_BASE = {"MM2S": 0x00, "S2MM": 0x30}
REGISTERS = {"DMACR": 0x00, "DMASR": 0x04, "ADDR": 0x18, "ADDR_MSB": 0x1C, "LENGTH": 0x28}  # ADDR: SA / DA

# The overlay's DMA is built with c_sg_length_width 26 (vivado_scripts/overlay/bd_common.tcl): LENGTH
# counts bytes, so one transfer moves at most 2**26 - 1 bytes.
LENGTH_WIDTH = 26
MAX_TRANSFER_WORDS = ((1 << LENGTH_WIDTH) - 1) // 8  # 64-bit stream words

# DMASR bits (PG021 "MM2S_DMASR"/"S2MM_DMASR") with what each error usually means.
STATUS_BITS = {
    0: "Halted", 1: "Idle", 3: "SGIncld", 4: "DMAIntErr", 5: "DMASlvErr", 6: "DMADecErr",
    8: "SGIntErr", 9: "SGSlvErr", 10: "SGDecErr", 12: "IOC_Irq", 13: "Dly_Irq", 14: "Err_Irq",
}
ERROR_MEANING = {
    "DMAIntErr": "internal error: a zero LENGTH, or (S2MM) the stream's TLAST came before or after the programmed length",
    "DMASlvErr": "the memory answered SLVERR: the buffer address is not writable/readable DDR",
    "DMADecErr": "the address decodes to no slave: the buffer is not in the DMA's address map",
    "SGIntErr": "scatter-gather internal error (descriptor not complete)",
    "SGSlvErr": "scatter-gather descriptor fetch got SLVERR",
    "SGDecErr": "scatter-gather descriptor address decodes to no slave",
}
ERROR_MASK = sum(1 << b for b, n in STATUS_BITS.items() if n in ERROR_MEANING)


def decode(status: int) -> list[str]:
    """Names of the DMASR bits that are set, low bit first."""
    return [name for bit, name in STATUS_BITS.items() if status >> bit & 1]


def errors(status: int) -> list[str]:
    """The error bits of a DMASR value (empty when the channel is healthy)."""
    return [n for n in decode(status) if n in ERROR_MEANING]


def dump(read: Callable[[int], int], channel: str) -> dict[str, int]:
    """Every register of one channel, read through ``read(offset)``."""
    base = CHANNEL_BASE[channel]
    return {f"{channel}_{name}": int(read(base + off)) & 0xFFFFFFFF for name, off in REGISTERS.items()}


def describe(channel: str, regs: dict[str, int]) -> str:
    """One paragraph: the decoded status, what the errors mean and the register dump."""
    status = regs[f"{channel}_DMASR"]
    errs = errors(status)
    what = "; ".join(f"{e} ({ERROR_MEANING[e]})" for e in errs) if errs else "no error bit set"
    regs_txt = " ".join(f"{k}=0x{v:08X}" for k, v in regs.items())
    return (f"AXI DMA {channel} status 0x{status:08X} [{', '.join(decode(status)) or 'running'}]: {what}. "
            f"Registers: {regs_txt}")


__all__ = ["CHANNEL_BASE", "ERROR_MASK", "REGISTERS", "STATUS_BITS", "decode", "describe", "dump", "errors"]
