//! [`PcscChannel`]: a card in a PC/SC reader, through libpcsclite and pcscd.

use std::ffi::CString;

use pcsc::{Context, Disposition, Protocols, Scope, ShareMode};
use tracing::debug;
use ykt_apdu::{CommandApdu, ResponseApdu};

use crate::channel::CardChannel;
use crate::error::TransportError;
use crate::redact;

/// A [`CardChannel`] to a card in a PC/SC reader (a real reader, or `ykt se serve` behind pcscd's
/// vpcd driver). Connected in shared mode with T=0 or T=1, whichever the card offers.
pub struct PcscChannel {
    // Field order matters: the card handle is released before its context.
    card: pcsc::Card,
    _context: Context,
    reader: String,
    buffer: Vec<u8>,
}

impl PcscChannel {
    /// Names of the readers pcscd knows, in its order.
    pub fn list_readers() -> Result<Vec<String>, TransportError> {
        let context = Context::establish(Scope::User)?;
        reader_names(&context)
    }

    /// Connects to the card in the reader named exactly `reader`.
    pub fn connect(reader: &str) -> Result<Self, TransportError> {
        let context = Context::establish(Scope::User)?;
        let available = reader_names(&context)?;
        if !available.iter().any(|r| r == reader) {
            return Err(TransportError::ReaderNotFound {
                name: reader.to_owned(),
                available,
            });
        }
        let name = CString::new(reader).map_err(|_| TransportError::ReaderNotFound {
            name: reader.to_owned(),
            available: available.clone(),
        })?;
        let card = context.connect(&name, ShareMode::Shared, Protocols::ANY)?;
        debug!(reader, "PC/SC connected");
        Ok(PcscChannel {
            card,
            _context: context,
            reader: reader.to_owned(),
            buffer: vec![0u8; pcsc::MAX_BUFFER_SIZE_EXTENDED],
        })
    }

    /// Connects to the card in the first reader that has one.
    pub fn connect_first() -> Result<Self, TransportError> {
        let readers = Self::list_readers()?;
        let mut last_error = TransportError::NoReaders;
        for reader in &readers {
            match Self::connect(reader) {
                Ok(channel) => return Ok(channel),
                Err(e) => last_error = e,
            }
        }
        Err(last_error)
    }

    /// The reader this channel is connected through.
    pub fn reader(&self) -> &str {
        &self.reader
    }

    /// The card's ATR as pcscd reports it (`SCardStatus`).
    pub fn atr(&self) -> Result<Vec<u8>, TransportError> {
        Ok(self.card.status2_owned()?.atr().to_vec())
    }
}

fn reader_names(context: &Context) -> Result<Vec<String>, TransportError> {
    match context.list_readers_owned() {
        Ok(names) => Ok(names
            .into_iter()
            .map(|n| n.to_string_lossy().into_owned())
            .collect()),
        Err(pcsc::Error::NoReadersAvailable) => Ok(Vec::new()),
        Err(e) => Err(e.into()),
    }
}

impl core::fmt::Debug for PcscChannel {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PcscChannel")
            .field("reader", &self.reader)
            .finish_non_exhaustive()
    }
}

impl CardChannel for PcscChannel {
    fn transmit(&mut self, command: &CommandApdu) -> Result<ResponseApdu, TransportError> {
        let bytes = command.to_bytes();
        if bytes.len() > pcsc::MAX_BUFFER_SIZE_EXTENDED {
            return Err(TransportError::FrameTooLong {
                len: bytes.len(),
                max: pcsc::MAX_BUFFER_SIZE_EXTENDED,
            });
        }
        let response = self.card.transmit(&bytes, &mut self.buffer)?;
        debug!(header = %redact::Header(&bytes), sw = %redact::status_of(response), "APDU");
        ResponseApdu::parse(response).map_err(TransportError::MalformedResponse)
    }

    /// `SCardReconnect` with `SCARD_RESET_CARD` (pcscd sends vpcd a `02` reset), then the new ATR.
    fn reset(&mut self) -> Result<Vec<u8>, TransportError> {
        self.card
            .reconnect(ShareMode::Shared, Protocols::ANY, Disposition::ResetCard)?;
        self.atr()
    }
}
