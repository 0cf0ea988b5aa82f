#!/usr/bin/env python3
"""The minimal vpcd card of shared/env-notes.md §1 (stdlib only, TCP_QUICKACK after every read),
answering the three APDUs scripts/bench-vpcd sends with fixed bytes. It is the baseline that shows
what pcscd + vpcd cost on their own, without any card logic.

usage: minimal-vpcd-card.py [PORT]     (default 35963; 35964 is the second vpcd slot)
"""
import socket
import struct
import sys

ATR = bytes.fromhex("3B80800101")
FCI = bytes.fromhex("6F0A8408A000000632010105")
s = socket.create_connection(("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 35963))


def rx(n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise SystemExit
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        b += c
    return b


def tx(p):
    s.sendall(struct.pack(">H", len(p)) + p)


while True:
    (n,) = struct.unpack(">H", rx(2))
    m = rx(n)
    if n == 1:
        if m[0] == 0x04:
            tx(ATR)  # 0x00 off / 0x01 on / 0x02 reset: no reply
        continue
    ins = m[1]
    if ins == 0xA4:  # SELECT
        tx(FCI + b"\x90\x00")
    elif ins == 0x5C:  # GET BALANCE
        tx(bytes(4) + b"\x90\x00")
    elif ins == 0xB0:  # READ BINARY: Le bytes
        tx(bytes(m[4] or 256) + b"\x90\x00")
    else:
        tx(b"\x6D\x00")
