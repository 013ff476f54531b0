"""A tiny DNS server for fault tests: answers A queries for the names it
is given, after a delay the test sets, and everything else at once
(NXDOMAIN), so that only the lookups under test are slow.

UDP only, on port 53 of a 127.x address of the test's choosing (glibc's
resolv.conf takes no port). AAAA queries for a known name get an empty
NOERROR answer (no IPv6 address) after the same delay: glibc asks A and
AAAA together and waits for both. Counters say what reached the server
and what is still waiting for its answer, so a test can act while a
lookup is known to be in progress.

Python 3 standard library only. Not a general DNS server: one question
per query, no EDNS, no TCP, no compression in questions.
"""

import random
import socket
import struct
import threading
import time

TYPE_A, TYPE_AAAA = 1, 28
RCODE_OK, RCODE_NXDOMAIN, RCODE_FORMERR = 0, 3, 1


def parse_query(pkt):
    """(id, flags, qname lower-case, qtype, question bytes) or None."""
    if len(pkt) < 12:
        return None
    qid, flags, qd = struct.unpack("!HHH", pkt[:6])
    if qd != 1 or flags & 0x8000:
        return None
    i, labels = 12, []
    while True:
        if i >= len(pkt):
            return None
        n = pkt[i]
        i += 1
        if n == 0:
            break
        if n > 63 or i + n > len(pkt):
            return None
        labels.append(pkt[i:i + n].decode("ascii", "replace").lower())
        i += n
    if i + 4 > len(pkt):
        return None
    qtype, _ = struct.unpack("!HH", pkt[i:i + 4])
    return qid, flags, ".".join(labels), qtype, pkt[12:i + 4]


def bind_socket():
    """A UDP socket on port 53 of a random 127.53.x.y (loopback covers
    127/8), so that parallel runs do not collide. Root only."""
    last = None
    for _ in range(20):
        a = "127.53.%d.%d" % (random.randint(1, 254), random.randint(1, 254))
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.bind((a, 53))
            return s
        except OSError as e:
            s.close()
            last = e
    raise RuntimeError("dnsstub: cannot bind port 53 on 127.53.x.y: %s" % last)


def build_reply(qid, qflags, question, rcode, addr=None, ttl=60):
    flags = 0x8000 | (qflags & 0x0100) | 0x0080 | rcode  # QR, RD copied, RA
    an = 1 if addr else 0
    out = struct.pack("!HHHHHH", qid, flags, 1, an, 0, 0) + question
    if addr:
        out += struct.pack("!HHHIH", 0xC00C, TYPE_A, 1, ttl, 4) + socket.inet_aton(addr)
    return out


class DnsStub:
    """names: {name: IPv4 address}. delay: seconds before those answers
    (settable at any time; a query takes the delay in force when it came)."""

    def __init__(self, names, delay=0.0, sock=None):
        self.names = {k.lower().rstrip("."): v for k, v in names.items()}
        self.delay = float(delay)
        self.lock = threading.Lock()
        self.received = 0      # queries for our names
        self.lookups = 0       # ... of which A queries (one per getaddrinfo)
        self.answered = 0      # ... of which answered
        self.other = 0         # queries for other names (answered at once)
        self.log = []          # (monotonic time, name, qtype, event)
        self.sock = sock if sock is not None else bind_socket()
        self.addr = self.sock.getsockname()[0]
        self.stopping = False
        self.timers = []
        self.thread = threading.Thread(target=self._loop, name="dnsstub", daemon=True)
        self.thread.start()

    @property
    def pending(self):
        with self.lock:
            return self.received - self.answered

    def counts(self):
        with self.lock:
            return {"received": self.received, "answered": self.answered,
                    "lookups": self.lookups, "other": self.other}

    def wait_lookups(self, n, timeout):
        """Wait until at least n A queries for our names arrived; True if so."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self.lock:
                if self.lookups >= n:
                    return True
            time.sleep(0.01)
        return False

    def wait_idle(self, timeout):
        """Wait until every query for our names has been answered."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.pending == 0:
                return True
            time.sleep(0.05)
        return False

    def _send(self, reply, peer, name, qtype):
        if self.stopping:
            return
        try:
            self.sock.sendto(reply, peer)
        except OSError:
            pass
        with self.lock:
            self.answered += 1
            self.log.append((time.monotonic(), name, qtype, "answered"))

    def _loop(self):
        self.sock.settimeout(0.2)
        while not self.stopping:
            try:
                pkt, peer = self.sock.recvfrom(4096)
            except socket.timeout:
                continue
            except OSError:
                break
            q = parse_query(pkt)
            if q is None:
                continue
            qid, qflags, name, qtype, question = q
            if name not in self.names:
                with self.lock:
                    self.other += 1
                self.sock.sendto(build_reply(qid, qflags, question, RCODE_NXDOMAIN), peer)
                continue
            addr = self.names[name] if qtype == TYPE_A else None
            reply = build_reply(qid, qflags, question, RCODE_OK, addr)
            with self.lock:
                self.received += 1
                self.lookups += qtype == TYPE_A
                self.log.append((time.monotonic(), name, qtype, "received"))
                delay = self.delay
            t = threading.Timer(delay, self._send, (reply, peer, name, qtype))
            t.daemon = True
            self.timers.append(t)
            t.start()

    def close(self):
        self.stopping = True
        for t in self.timers:
            t.cancel()
        self.thread.join(2)
        self.sock.close()


def resolv_conf(addr, timeout=30):
    """resolv.conf text: only addr, one attempt, a long per-try timeout (so a
    lookup takes exactly the stub's delay, not glibc's retry schedule)."""
    return "nameserver %s\noptions timeout:%d attempts:1\n" % (addr, timeout)


NSSWITCH_HOSTS = "hosts: files dns\n"
