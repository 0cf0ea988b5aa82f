//! Card runtime: applet dispatcher, ISO 7816-4 files, power-cut-safe persistent store with a tearing switch; no I/O
#![no_std]
