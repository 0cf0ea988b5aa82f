#!/usr/bin/env python3
"""Independent personalisation data for the perso_*.apdu transcripts in this folder.

Builds, from the e-purse.md §8 test card and the card keys of purse_host.py (Python
`cryptography` only, not ykt code), the DGIs of docs/purse-dgi.md ([PROPOSAL]) and packs them
into STORE DATA blocks the way ykt_purse::perso::Builder is specified to: plain DGIs first, then
PIN and keys in blocks flagged encrypted (P1 68), at most 200 data bytes per block, P2 from 00,
P1 b8 on the last block. Prints the transcript lines (through the test card manager of
tests/it/perso.rs: 80 E6 0C 00 install, 80 E6 20 00 for personalization, 80 E2 forwarded).
Run: python3 perso_host.py tdes|sm4
"""
import sys

from purse_host import MASTERS, diversify

EP_AID = "A000000632010105"
MANAGER_AID = "A000000151000000"
EF15 = "01011000FFFFFFFF" "02" "01" "31041000000012345678" "20240101" "20341231" "0000"
EF16 = "00" * 55
EF17 = "0000015600001000000100" + "00" * 49
PURSE = "00000000" "0000" "0000"  # balance, online counter, offline counter
PIN = "123456"
USAGES = [("DLK", 1), ("DPK", 2), ("DTK", 3), ("DAMK", 4), ("DPUK", 5), ("DRPK", 6)]
ALGORITHM = {"tdes": "000000000000", "sm4": "010400000000"}  # SM4: Sm4Rules::BRIEF
MAX_BLOCK = 200


def dgi(tag, value_hex):
    value = bytes.fromhex(value_hex)
    assert len(value) < 255
    return bytes.fromhex(tag) + bytes([len(value)]) + value


def main(alg):
    plain = [dgi("1500", EF15), dgi("1600", EF16), dgi("1700", EF17), dgi("9101", PURSE)]
    secret = [dgi("8010", PIN)]
    for name, usage in USAGES:
        key = diversify(alg, bytes.fromhex(MASTERS[name])).hex().upper()
        # usage, index 01, version 01, algorithm (6), card key (16)
        secret.append(dgi("8000", "%02X0101" % usage + ALGORITHM[alg] + key))
    blocks = []
    for encrypted, group in ((False, plain), (True, secret)):
        for d in group:
            if blocks and blocks[-1][0] == encrypted and len(blocks[-1][1]) + len(d) <= MAX_BLOCK:
                blocks[-1][1] += d
            else:
                blocks.append([encrypted, bytearray(d)])
    print("# Select the card manager, install an empty purse (no install parameters).")
    print(">> 00A4040008 " + MANAGER_AID)
    print("<< 9000")
    print(">> 80E60C0009 08" + EP_AID)
    print("<< 9000")
    for n, (encrypted, data) in enumerate(blocks):
        p1 = 0x08 | (0x60 if encrypted else 0) | (0x80 if n + 1 == len(blocks) else 0)
        if n == 0:
            print("# INSTALL [for personalization], then the STORE DATA blocks.")
            print(">> 80E6200008 " + EP_AID)
            print("<< 9000")
        print("# block %02X: %s" % (n, "PIN and keys (P1 b7-b6 = 11)" if encrypted else "plain DGIs"))
        print(">> 80E2%02X%02X%02X %s" % (p1, n, len(data), data.hex().upper()))
        print("<< 9000")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tdes")
