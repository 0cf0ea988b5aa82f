//! ISO/IEC 7816-4 APDUs, status words and BER-TLV.
#![no_std]
