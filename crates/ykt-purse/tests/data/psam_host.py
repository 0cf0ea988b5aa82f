#!/usr/bin/env python3
"""Independent PSAM-side values for the psam_*.apdu transcripts in this folder.

Builds on purse_host.py (Python `cryptography` only, not ykt-crypto): the §8.2 purchase through the
PSAM (e-purse.md §5.1, §5.4, §6) for 3DES and SM4 (Sm4Rules::BRIEF, L), the two-level
diversification of the 36-byte 80 70 (issuer id first, then the card diversifier: our L order,
ykt_purse::psam::TWO_LEVEL_ORDER), and the secure-messaging MACs of 80 FA 05 00 (e-purse.md §4.10,
§5.3) over data the terminal padded itself.
Run: python3 psam_host.py  (prints every value the PSAM transcripts use, with its label).
"""
from purse_host import DIV, MASTERS, inv, pad80, sm4, sm_mac, tdes, xor, des, sm4_mac

ISSUER = bytes.fromhex("01011000FFFFFFFF")  # EF15[0..8] of the test card
TERMINAL = bytes.fromhex("112233445566")
RANDOM = bytes.fromhex("5E6F7A8B")
AMOUNT = bytes.fromhex("000000C8")
DATETIME = bytes.fromhex("20240115103500")


def div1(alg, mk, d):
    if alg == "tdes":
        return tdes(mk, d) + tdes(mk, inv(d))
    return sm4(mk, d + inv(d))


def session_key(alg, dpk, counter, ttsn):
    data = RANDOM + counter + ttsn[2:]
    if alg == "tdes":
        return tdes(dpk, data)
    return sm4(dpk, data + b"\x80" + bytes(7))


def session_mac(alg, sk, data):
    if alg == "tdes":
        h = bytes(8)
        p = pad80(data, 8)
        for i in range(0, len(p), 8):
            h = des(sk, xor(h, p[i:i + 8]))
        return h[:4]
    return sm4_mac(sk, bytes(16), data)


def main():
    for alg in ("tdes", "sm4"):
        print(f"== {alg}")
        mk = bytes.fromhex(MASTERS["DPK"])
        single = div1(alg, mk, DIV)
        two = div1(alg, div1(alg, mk, ISSUER), DIV)
        for label, dpk in (("single-level", single), ("two-level", two)):
            for ty in ("06", "09"):
                for ttsn in ("00000001", "00000002"):
                    sk = session_key(alg, dpk, bytes(2), bytes.fromhex(ttsn))
                    m1 = AMOUNT + bytes.fromhex(ty) + TERMINAL + DATETIME
                    print(f"{label} DPK {dpk.hex().upper()} type {ty} TTSN {ttsn}: "
                          f"MAC1 {session_mac(alg, sk, m1).hex().upper()} "
                          f"MAC2 {session_mac(alg, sk, AMOUNT).hex().upper()}")
        damk = bytes.fromhex(MASTERS["DAMK"])
        for label, key in (("single-level", div1(alg, damk, DIV)),
                           ("two-level", div1(alg, div1(alg, damk, ISSUER), DIV))):
            for ch in ("1A2B3C4D", "5E6F7A8B"):
                for hdr in ("841E000004", "8418000004"):
                    print(f"{label} DAMK MAC {hdr} challenge {ch} = "
                          f"{sm_mac(alg, key, bytes.fromhex(ch), bytes.fromhex(hdr)).hex().upper()}")


if __name__ == "__main__":
    main()
