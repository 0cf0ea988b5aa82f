//! Transit e-purse applet (JT/T 978 / PBOC ED/EP) with composite purchase and a second ticket type; no I/O
#![no_std]
