//! Integration tests of the e-purse applet: transcripts (tests/data/*.apdu), error paths with
//! state checks, tearing, properties, counters, the second ticket type.

mod commands;
mod counters;
mod properties;
mod second_ticket;
mod support;
mod tearing;
mod vectors;
