//! Card channels: in-process, the simulator as a vpcd card behind pcscd, and a PC/SC client
