//! Response APDUs (ISO/IEC 7816-4 §5.1: optional data field, then SW1 SW2).

use alloc::vec::Vec;

use crate::{ParseError, StatusWord};

/// A response APDU: response data followed by the status word.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ResponseApdu {
    /// Response data field (possibly empty).
    pub data: Vec<u8>,
    /// Trailing status word.
    pub sw: StatusWord,
}

impl ResponseApdu {
    /// A response with data and a status word.
    pub fn new(data: impl Into<Vec<u8>>, sw: StatusWord) -> Self {
        Self {
            data: data.into(),
            sw,
        }
    }

    /// A response made of a status word alone.
    pub fn status(sw: StatusWord) -> Self {
        Self {
            data: Vec::new(),
            sw,
        }
    }

    /// Splits `data || SW1 SW2`. Fails only on fewer than two bytes.
    pub fn parse(bytes: &[u8]) -> Result<Self, ParseError> {
        match bytes {
            [data @ .., sw1, sw2] => Ok(Self {
                data: data.to_vec(),
                sw: StatusWord::new(*sw1, *sw2),
            }),
            _ => Err(ParseError::TooShort { len: bytes.len() }),
        }
    }

    /// `data || SW1 SW2`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.data.len() + 2);
        out.extend_from_slice(&self.data);
        out.extend_from_slice(&self.sw.to_bytes());
        out
    }

    /// True when the status word is `9000` or `61xx`.
    pub fn is_success(&self) -> bool {
        self.sw.is_success()
    }
}
