import pmt
import pytest
from gnuradio import gr


class MsgCollector(gr.basic_block):
    """Collects messages of one port into a list (python objects)."""

    def __init__(self):
        gr.basic_block.__init__(self, "collector", None, None)
        self.items = []
        self.message_port_register_in(pmt.intern("in"))
        self.set_msg_handler(pmt.intern("in"), self.handle)

    def handle(self, msg):
        self.items.append(msg)

    def drained(self):
        while self.nmsgs(pmt.intern("in")):
            self.items.append(self.delete_head_nowait(pmt.intern("in")))
        return self.items


@pytest.fixture
def collector():
    return MsgCollector
