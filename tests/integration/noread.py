#!/usr/bin/env python3
"""A raw raftq client for the integration tests (daemon.sh, noread.sh): speaks the transport (a
client hello, then envelopes, docs/protocol.md "Transport") and FETCH_REQ frames by hand.

  noread.py HOST PORT TOPIC check
      one fetch of partition 0 from offset 0, and its answer read and decoded: prints
      "answer: records N" (proves the bytes below are what a broker serves)
  noread.py HOST PORT TOPIC slow
      one fetch per envelope every 20 ms, never reading any answer, until a send fails (the
      broker closed the connection) or FETCHES_MAX fetches were sent
  noread.py HOST PORT TOPIC burst
      BURST_FETCHES fetches in ONE envelope (about BURST_FETCHES MiB of answers asked at once),
      then, never reading, one more fetch every 20 ms until a send fails, as above

Every fetch asks for up to 1 MiB (from_follower 2: any replica answers at once with what it has).
Exit 0 when the broker closed the connection (prints how many fetches were sent before), 1 when
it did not within the bound, 2 on bad usage or an unexpected answer."""
import socket
import struct
import sys
import time

FETCHES_MAX = 1000          # slow/trickle sends, 20 ms apart: at most 20 s
BURST_FETCHES = 2000        # one envelope: ~2,000 MiB of answers asked for
PAUSE_S = 0.02
CLIENT_ID = 4000            # client node ids are above 255
FETCH_REQ, FETCH_RESP = 5, 6
MAX_BYTES = 1 << 20


def crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


TABLE = crc32c_table()


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283   # the published check value


def varint(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def read_varint(buf, at):
    v = shift = 0
    while True:
        b = buf[at]
        at += 1
        v |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return v, at


def hello():
    head = struct.pack("<IHBBI", 0x484E5152, 1, 2, 0, CLIENT_ID)
    return head + struct.pack("<I", crc32c(head))


def frame(ftype, correlation, payload):
    tail = struct.pack("<BBHI", 1, ftype, 0, correlation) + payload   # after length and CRC
    return struct.pack("<II", 4 + len(tail), crc32c(tail)) + tail


def fetch_frame(topic, correlation):
    payload = (varint(len(topic)) + topic + varint(0) + varint(0) + varint(4096) +
               varint(MAX_BYTES) + varint(0) + bytes([2]))
    return frame(FETCH_REQ, correlation, payload)


def envelope(message):
    return struct.pack("<II", len(message), crc32c(message)) + message


def connect(host, port, small_buffer):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if small_buffer:   # little kernel buffering on our side: the broker's own bound decides
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    s.settimeout(10)
    s.connect((host, port))
    s.sendall(hello())
    return s


def recv_exact(s, n):
    data = bytearray()
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            raise EOFError("closed")
        data += chunk
    return bytes(data)


def check(host, port, topic):
    s = connect(host, port, False)
    s.sendall(envelope(fetch_frame(topic, 1)))
    length, crc = struct.unpack("<II", recv_exact(s, 8))
    message = recv_exact(s, length)
    if crc32c(message) != crc:
        print("bad envelope CRC")
        return 2
    flen, _, version, ftype, _, corr = struct.unpack("<IIBBHI", message[:16])
    payload = message[16:4 + flen]
    if ftype != FETCH_RESP or corr != 1 or payload[0] != 0:
        print("unexpected answer: type %d correlation %d error byte %d" % (ftype, corr, payload[0]))
        return 2
    at = 1
    for _ in range(3):   # leader_hint, log_start, high_watermark
        _, at = read_varint(payload, at)
    count, at = read_varint(payload, at)
    print("answer: records %d, %d bytes" % (count, len(message)))
    s.close()
    return 0


def never_read(host, port, topic, burst):
    s = connect(host, port, True)
    sent = 0
    try:
        if burst:
            s.sendall(envelope(b"".join(fetch_frame(topic, i + 1) for i in range(BURST_FETCHES))))
            sent = BURST_FETCHES
        for _ in range(FETCHES_MAX):
            time.sleep(PAUSE_S)
            s.sendall(envelope(fetch_frame(topic, sent + 1)))
            sent += 1
    except (BrokenPipeError, ConnectionResetError) as e:
        print("closed by the broker after %d fetches (~%d MiB of answers asked): %s" %
              (sent, sent * MAX_BYTES >> 20, type(e).__name__))
        return 0
    except socket.timeout:
        print("a send blocked for 10 s after %d fetches: the broker stopped reading" % sent)
        return 1
    print("still open after %d fetches" % sent)
    return 1


def main():
    if len(sys.argv) != 5 or sys.argv[4] not in ("check", "slow", "burst"):
        print(__doc__)
        return 2
    host, port, topic, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3].encode(), sys.argv[4]
    if mode == "check":
        return check(host, port, topic)
    return never_read(host, port, topic, mode == "burst")


if __name__ == "__main__":
    sys.exit(main())
