"""``IPSpec``: everything that defines one generated IP core at one bit-width.

An ``IPSpec`` is plain data. Every view (HLS C++, Verilog, TCL, ip.json, C header, Python
constants) is rendered from it, and its ``config_hash`` (sha256 of the canonical JSON,
truncated to 32 bits for the overlay's config-hash register) names it in every generated file.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

from codesign.hw.budget import ACC_BITS, MAX_TILE, elems_per_word
from codesign.hw.device import DeviceBudgetError, DeviceProfile, get_device
from codesign.hw.plan import EnginePlan, budget, estimate, plan_overlay
from codesign.quant.dyadic import check_bits

DEFAULT_BUS_WIDTH = 64
DEFAULT_TILE = 128
DEFAULT_POST_LANES = 4
SPEC_VERSION = 1


@dataclass(frozen=True)
class IPSpec:
    """One core at one bit-width on one device budget."""

    core: str
    bits: int
    device: str = "xc7z020"
    bus_width: int = DEFAULT_BUS_WIDTH
    tile_m: int = DEFAULT_TILE
    tile_n: int = DEFAULT_TILE
    tile_k: int = DEFAULT_TILE
    lanes: int = 0  # output channels computed in parallel (derived from the budget)
    tree: int = 0  # products summed per lane per cycle = elements per bus word
    post_lanes: int = DEFAULT_POST_LANES
    mult: str = "lut"  # where the engine's products live: "dsp" (operand-packed slices) or "lut"
    widths: tuple[int, ...] = ()  # the overlay's candidate widths the lanes were planned for
    acc_bits: int = ACC_BITS
    version: int = SPEC_VERSION
    extra: dict[str, int] = field(default_factory=dict)  # core-specific knobs (kept in the hash)

    @property
    def name(self) -> str:
        """Directory / module name, e.g. ``mac_tree_w4``."""
        return f"{self.core}_w{self.bits}"

    @property
    def elems_per_word(self) -> int:
        """Elements of ``bits`` bits in one bus word."""
        return elems_per_word(self.bits, self.bus_width)

    @property
    def device_profile(self) -> DeviceProfile:
        """The device budget profile this spec was derived for."""
        return get_device(self.device)

    def to_dict(self) -> dict[str, object]:
        """Canonical plain-data view (sorted keys when serialised)."""
        return asdict(self)

    def canonical_json(self) -> str:
        """The exact text hashed by :attr:`config_hash`."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @property
    def config_hash_hex(self) -> str:
        """Full sha256 of the canonical JSON."""
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()

    @property
    def config_hash(self) -> int:
        """32-bit config hash (the value of the overlay's CONFIG_HASH register)."""
        return int(self.config_hash_hex[:8], 16)

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> IPSpec:
        """Inverse of :meth:`to_dict` (used by testbenches reading ip.json)."""
        data = dict(data)
        data["widths"] = tuple(data.get("widths", ()))  # type: ignore[arg-type]
        return cls(**data)  # type: ignore[arg-type]


def default_mult(bits: int) -> str:
    """Where an engine's products go: fabric up to 4 bit (a 4x4 product is 8 bits, below the
    width at which synthesis maps a multiply to a DSP slice anyway), operand-packed DSP48
    slices above (2 products per slice at 5..8 bit; see ``budget.dsp_products_per_slice``)."""
    return "lut" if 2 * bits < 9 else "dsp"


def make_spec(
    core: str,
    bits: int,
    device: str = "xc7z020",
    *,
    widths: tuple[int, ...] | list[int] | None = None,
    bus_width: int = DEFAULT_BUS_WIDTH,
    tile_m: int = DEFAULT_TILE,
    tile_n: int = DEFAULT_TILE,
    tile_k: int = DEFAULT_TILE,
    lanes: int | None = None,
    post_lanes: int = DEFAULT_POST_LANES,
    extra: dict[str, int] | None = None,
) -> IPSpec:
    """Validate the knobs and return the spec of ``core`` at ``bits``.

    Lanes and the multiplier placement come from the whole-overlay plan of ``widths`` (the
    overlay's candidate widths, default ``(bits,)``): every engine of an overlay must be made
    with the same ``widths`` so that they are sized together (:mod:`codesign.hw.plan`).
    Explicit ``lanes`` bypass the plan (products placed by :func:`default_mult`).
    Raises ``BitWidthError`` for bits outside 2..8 and ``DeviceBudgetError`` when the plan
    does not fit the device.
    """
    bits = check_bits(bits)
    profile = get_device(device)
    want = tuple(sorted({check_bits(b) for b in (widths or (bits,))} | {bits}))
    if bus_width not in (32, 64, 128):
        raise DeviceBudgetError(f"bus width {bus_width} is not supported; use 32, 64 or 128.")
    for name, value in (("tile_m", tile_m), ("tile_n", tile_n), ("tile_k", tile_k)):
        if not 1 <= value <= MAX_TILE:
            raise DeviceBudgetError(f"{name}={value} is outside 1..{MAX_TILE}.")
    tree = elems_per_word(bits, bus_width)
    if lanes is None:
        engine = plan_overlay(want, profile.name, post_lanes).engine(bits)
        lanes, mult = min(engine.lanes, tile_n), engine.mult
    else:
        if not 1 <= lanes <= min(MAX_TILE, tile_n):
            raise DeviceBudgetError(f"lanes={lanes} is outside 1..{min(MAX_TILE, tile_n)}; use a power of two "
                                    f"between {post_lanes} and {min(MAX_TILE, tile_n)}.")
        mult = default_mult(bits)
        est, cap = estimate(profile.name, (EnginePlan(bits, lanes, mult),), post_lanes), budget(profile.name)
        over = [f"{n} {getattr(est, n):,.0f} > {getattr(cap, n):,.0f}" for n in ("lut", "ff", "dsp", "bram36")
                if getattr(est, n) > getattr(cap, n)]
        if over:
            raise DeviceBudgetError(f"a {bits}-bit engine with {lanes} lanes does not fit {profile.name}: "
                                    f"{'; '.join(over)} (estimate, after the DMA allowance). Use fewer lanes.")
    return IPSpec(
        core=core, bits=bits, device=profile.name, bus_width=bus_width, tile_m=tile_m, tile_n=tile_n,
        tile_k=tile_k, lanes=int(lanes), tree=tree, post_lanes=post_lanes, mult=mult, widths=want,
        extra=dict(extra or {}),
    )
