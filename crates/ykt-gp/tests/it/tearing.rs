//! tearing
