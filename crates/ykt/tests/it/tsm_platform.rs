//! The SEI-TSM and the SP-TSM as two `ykt tsm serve` processes joined by the inter-platform API.
