//! Typed access to an item's `params` table.

use crate::verdict::Stop;

/// An item's parameters, as the checker sees them.
#[derive(Clone, Copy, Debug)]
pub struct Params<'a>(pub &'a toml::Table);

impl Params<'_> {
    fn bad(key: &str, what: &str) -> Stop {
        Stop::Inconclusive(format!("catalogue parameter {key:?} is not {what}"))
    }

    /// An unsigned integer parameter, or `default` when absent.
    pub fn u32(&self, key: &str, default: u32) -> Result<u32, Stop> {
        match self.0.get(key) {
            None => Ok(default),
            Some(v) => v
                .as_integer()
                .and_then(|i| u32::try_from(i).ok())
                .ok_or_else(|| Self::bad(key, "a 32-bit unsigned integer")),
        }
    }

    /// A byte parameter, or `default` when absent.
    pub fn u8(&self, key: &str, default: u8) -> Result<u8, Stop> {
        let v = self.u32(key, u32::from(default))?;
        u8::try_from(v).map_err(|_| Self::bad(key, "a byte"))
    }

    /// A 16-bit parameter (e.g. a status word), or `default` when absent.
    pub fn u16(&self, key: &str, default: u16) -> Result<u16, Stop> {
        let v = self.u32(key, u32::from(default))?;
        u16::try_from(v).map_err(|_| Self::bad(key, "a 16-bit value"))
    }

    /// A string parameter, or `default` when absent.
    pub fn str<'b>(&'b self, key: &str, default: &'b str) -> Result<&'b str, Stop> {
        match self.0.get(key) {
            None => Ok(default),
            Some(v) => v.as_str().ok_or_else(|| Self::bad(key, "a string")),
        }
    }

    /// A boolean parameter, or `default` when absent.
    pub fn bool(&self, key: &str, default: bool) -> Result<bool, Stop> {
        match self.0.get(key) {
            None => Ok(default),
            Some(v) => v.as_bool().ok_or_else(|| Self::bad(key, "a boolean")),
        }
    }
}
