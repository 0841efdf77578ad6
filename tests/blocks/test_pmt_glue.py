"""blocks._common's PMT glue: the serialized fast path of pdu() builds exactly the PDU the
generic conversion does, and falls back for values it does not handle."""
import hashlib

import numpy as np
import pmt
import pytest

from gnuradio.gdm.blocks._common import pdu, to_pmt


def _generic(meta, payload):
    return pmt.cons(to_pmt({k: v for k, v in meta.items() if v is not None}),
                    pmt.init_u8vector(len(payload), list(payload)))


@pytest.mark.parametrize("meta", [
    dict(index=5, sample_offset=2 ** 40, cfo_hz=-12.5, snr_db=24.1, seq=7, header_ok=True, crc_ok=False,
         evm_db=-23.3, reason="payload CRC mismatch", payload_sha256=hashlib.sha256(b"x").digest(), est_fallback=None),
    dict(index=-(2 ** 31), sample_offset=2 ** 31 - 1, reason="", crc_ok=True, cfo_hz=float("inf")),
    {},
])
@pytest.mark.parametrize("payload", [b"", bytes(range(256)) * 3])
def test_fast_pdu_equals_the_generic_conversion(meta, payload):
    a, b = pdu(meta, payload), _generic(meta, payload)
    assert pmt.equal(a, b) and pmt.serialize_str(a) == pmt.serialize_str(b)
    assert bytes(pmt.u8vector_elements(pmt.cdr(a))) == payload


def test_values_without_a_fast_form_take_the_generic_path():
    meta = dict(index=np.int64(3), H=np.ones(4, np.complex64))
    a = pdu(meta, b"abc")
    assert pmt.equal(a, _generic(meta, b"abc"))
    assert pmt.to_python(pmt.dict_ref(pmt.car(a), pmt.intern("index"), pmt.PMT_NIL)) == 3
