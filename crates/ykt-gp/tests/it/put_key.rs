//! put_key
