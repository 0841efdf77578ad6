"""Committed recordings replay to exactly what the live run that made them decoded."""
import hashlib
from pathlib import Path

from gnuradio.gdm.blocks.sim_link import ReplayLink
from gnuradio.gdm.io.recording import open_recording

REC = Path(__file__).resolve().parents[2] / "recordings"


def test_sim_1x2_15db_replays_bit_exact():
    base = REC / "sim_1x2_nr72_15dB"
    assert base.with_suffix(".sigmf-data").stat().st_size <= 2 * 2**20
    live = [a for a in open_recording(base).annotations if a["gdm:crc_ok"]]
    out = ReplayLink(str(base)).run_and_collect()
    got = [(seq, hashlib.sha256(p).hexdigest()) for seq, p in out["payloads"]]
    assert got == [(a["gdm:seq"], a["gdm:payload_sha256"]) for a in live]
    assert len(got) >= 45 and out["frames_sent"] == 50
