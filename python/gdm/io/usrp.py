"""USRP helpers for the radio flowgraphs (grc/examples/usrp_*.grc).

- ``require_usrp(args)``: called from the flowgraphs' "Init - Before Blocks" snippet, before
  ``uhd.usrp_source``/``usrp_sink`` are constructed; without a matching device the program ends
  with one clear line instead of a UHD traceback.
- ``check_rate(sample_rate, preset)``: the receiver runs at the frame preset's rate.
- ``setup_channels(usrp, ...)``: after the UHD block is made: optional subdevice spec, shared LO
  (TwinRX companion LO, external LO, or a timed retune), and a one-line report per channel.

``find_devices`` uses ``gnuradio.uhd.find_devices``; GNU Radio 3.10.5's Python wrapper of it is
broken (it calls a ``find_devices_raw`` that its pybind module does not export), so it falls
back to UHD's C API (``uhd_usrp_find`` in libuhd) through ctypes.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import sys
import time

NO_USRP = "no USRP found for device args '{args}': connect one or check uhd_find_devices"
LO_MODES = ("none", "twinrx", "external", "timed_tune")


class NoUsrpError(RuntimeError):
    """No USRP matches the device arguments."""


def _parse(addr: str) -> dict:
    out = {}
    for part in str(addr).replace("\n", ",").split(","):
        if "=" in part:
            k, v = part.split("=", 1)
            out[k.strip()] = v.strip()
    return out


def _find_gr(args: str) -> list[dict]:
    from gnuradio import uhd
    found = uhd.find_devices(uhd.device_addr_t(args))
    return [_parse(d.to_string()) if hasattr(d, "to_string") else _parse(str(d)) for d in found]


def _find_c_api(args: str) -> list[dict]:
    name = ctypes.util.find_library("uhd")
    if name is None:
        import glob
        libs = sorted(glob.glob("/usr/lib/*/libuhd.so*") + glob.glob("/usr/local/lib*/libuhd.so*"))
        if not libs:
            raise OSError("libuhd not found")
        name = libs[0]
    lib = ctypes.CDLL(name)
    vp = ctypes.c_void_p
    lib.uhd_string_vector_make.argtypes = [ctypes.POINTER(vp)]
    lib.uhd_string_vector_free.argtypes = [ctypes.POINTER(vp)]
    lib.uhd_string_vector_size.argtypes = [vp, ctypes.POINTER(ctypes.c_size_t)]
    lib.uhd_string_vector_at.argtypes = [vp, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t]
    lib.uhd_usrp_find.argtypes = [ctypes.c_char_p, ctypes.POINTER(vp)]
    h = vp()
    if lib.uhd_string_vector_make(ctypes.byref(h)):
        raise OSError("uhd_string_vector_make failed")
    try:
        if lib.uhd_usrp_find(str(args).encode(), ctypes.byref(h)):
            raise OSError("uhd_usrp_find failed")
        n = ctypes.c_size_t()
        lib.uhd_string_vector_size(h, ctypes.byref(n))
        buf = ctypes.create_string_buffer(4096)
        out = []
        for i in range(n.value):
            lib.uhd_string_vector_at(h, i, buf, len(buf))
            out.append(_parse(buf.value.decode(errors="replace")))
        return out
    finally:
        lib.uhd_string_vector_free(ctypes.byref(h))


def find_devices(args: str = "") -> list[dict]:
    """USRPs matching UHD device arguments (``""``: any), as dicts (type, serial, name, addr...)."""
    try:
        return _find_gr(args)
    except AttributeError:  # GNU Radio 3.10.5: find_devices_raw missing from the pybind module
        return _find_c_api(args)


def check_usrp(args: str = "") -> list[dict]:
    """The matching devices; raises NoUsrpError (message: NO_USRP) when there is none."""
    try:
        found = find_devices(args)
    except ImportError as e:
        raise NoUsrpError(f"gr-uhd is not importable ({e}); install gnuradio's UHD support "
                          "(Debian: apt-get install gnuradio)") from None
    if not found:
        raise NoUsrpError(NO_USRP.format(args=args))
    return found


def require_usrp(args: str = "") -> list[dict]:
    """For flowgraphs: ends the program with the NO_USRP message (exit status 1, no traceback)
    when no device matches ``args``; otherwise prints what was found and returns it."""
    try:
        found = check_usrp(args)
    except NoUsrpError as e:
        raise SystemExit(f"gr-gdm: {e}") from None
    for d in found:
        desc = ", ".join(f"{k}={d[k]}" for k in ("type", "product", "serial", "name", "addr") if d.get(k))
        print(f"gr-gdm: using USRP {desc}", file=sys.stderr, flush=True)
    return found


def check_rate(sample_rate: float, preset: str) -> None:
    """Ends the program when the radio's sample rate differs from the frame preset's."""
    from ..frame import FrameSpec
    want = FrameSpec.preset(preset).sample_rate
    if abs(float(sample_rate) - want) > 1e-6 * want:
        raise SystemExit(f"gr-gdm: sample rate {float(sample_rate):g} Sps does not match frame preset "
                         f"{preset!r} ({want:g} Sps); use --samp-rate {want:g} or another preset")


def setup_channels(usrp, n_ch: int, freq: float | None = None, subdev: str = "", lo_share: str = "none",
                   gains=None, antenna: str = "", tx: bool = False, report: bool = True) -> None:
    """Per-session channel setup of a gr-uhd usrp_source/usrp_sink, before the flowgraph starts.

    subdev: a subdevice spec ("A:0 A:1" TwinRX in slot A, "A:0 B:0" two daughterboards of an
    X310; B210 default "A:A A:B"); frequency, gain and antenna are set again after it, because
    the channel mapping changes.
    lo_share:
    - "none": nothing to do (B210/B200mini: both channels of the AD9361 share one RX LO).
    - "twinrx": X310 + TwinRX: channel 0 uses its internal LO and exports it, the others take
      the "companion" LO: all channels of the board tune from one synthesizer.
    - "external": every channel uses the LO input ports (TwinRX LO IN, or boards with external
      LO inputs fed from one splitter-driven synthesizer).
    - "timed_tune": X310 with UBX/SBX: retune all channels with one timed command, so the
      synthesizers' dividers reset together (relative phase repeatable per tune; still
      calibrate with gnuradio.gdm.io.phase_cal after each start).
    """
    if lo_share not in LO_MODES:
        raise SystemExit(f"gr-gdm: lo_share must be one of {', '.join(LO_MODES)}, got {lo_share!r}")
    pre = "tx" if tx else "rx"
    if subdev:
        usrp.set_subdev_spec(subdev, 0)
        for ch in range(n_ch):
            if freq is not None:
                usrp.set_center_freq(float(freq), ch)
            if gains is not None:
                usrp.set_gain(float(gains[ch]), ch)
            if antenna:
                usrp.set_antenna(antenna, ch)
    if lo_share != "none":
        from gnuradio import uhd
        if lo_share == "twinrx":
            usrp.set_lo_source("internal", uhd.ALL_LOS, 0)
            usrp.set_lo_export_enabled(True, uhd.ALL_LOS, 0)
            for ch in range(1, n_ch):
                usrp.set_lo_source("companion", uhd.ALL_LOS, ch)
        elif lo_share == "external":
            for ch in range(n_ch):
                usrp.set_lo_source("external", uhd.ALL_LOS, ch)
        if freq is not None:
            # Retune all channels with one timed command (after an LO change, and for
            # timed_tune): the synthesizers settle from the same instant.
            usrp.set_command_time(usrp.get_time_now() + uhd.time_spec(0.1), 0)
            for ch in range(n_ch):
                usrp.set_center_freq(float(freq), ch)
            usrp.clear_command_time(0)
            time.sleep(0.15)
    if report:
        for ch in range(n_ch):
            try:
                line = (f"gr-gdm: {pre}{ch}: {usrp.get_center_freq(ch) / 1e6:.6f} MHz, gain "
                        f"{usrp.get_gain(ch):.1f} dB, antenna {usrp.get_antenna(ch)}, rate "
                        f"{usrp.get_samp_rate() / 1e6:.6f} Msps")
            except Exception as e:  # noqa: BLE001 - a report only
                line = f"gr-gdm: {pre}{ch}: ({e})"
            print(line, file=sys.stderr, flush=True)
