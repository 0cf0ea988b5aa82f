//! The crate's errors: [`RenderError`] when drawing, [`ScanError`] when reading.

/// Why a payload could not be drawn.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RenderError {
    /// The payload does not fit the largest symbol at the chosen error-correction level.
    #[error("payload of {len} bytes does not fit a QR symbol (at most {max} at this level)")]
    TooLong {
        /// The payload's length.
        len: usize,
        /// The most this level carries in byte mode.
        max: usize,
    },
    /// The pixels per module are 0, or the image would exceed [`crate::MAX_PIXELS`].
    #[error("scale {scale} with quiet zone {quiet_zone} gives no usable image")]
    Size {
        /// Pixels per module.
        scale: u32,
        /// Quiet zone in modules.
        quiet_zone: u32,
    },
    /// The PNG encoder failed.
    #[error("PNG encoding failed")]
    Png(#[source] image::ImageError),
}

/// Why an image is not a usable picture (before any symbol is looked for).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImageError {
    /// Neither a PNG signature nor a `P5` header.
    #[error("not a PNG or binary PGM (P5) image")]
    UnknownFormat,
    /// The PNG decoder refused the bytes (truncated, corrupt, unsupported).
    #[error("unreadable PNG")]
    Png(#[source] image::ImageError),
    /// The PGM header is malformed (magic, width, height or maximum value).
    #[error("malformed PGM header: {0}")]
    PgmHeader(&'static str),
    /// Fewer pixel bytes than the header or the given dimensions ask for.
    #[error("image data is {actual} bytes, {expected} expected")]
    Truncated {
        /// Bytes the dimensions need.
        expected: usize,
        /// Bytes given.
        actual: usize,
    },
    /// A width or height of 0.
    #[error("empty image ({width}×{height})")]
    Empty {
        /// Width in pixels.
        width: usize,
        /// Height in pixels.
        height: usize,
    },
    /// More pixels than [`crate::MAX_PIXELS`].
    #[error("image of {width}×{height} pixels is too large")]
    TooLarge {
        /// Width in pixels.
        width: usize,
        /// Height in pixels.
        height: usize,
    },
}

/// Why a symbol that was found could not be read (the decoder's reason).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeFailure {
    /// The format information (level and mask) is unreadable in both copies.
    #[error("format information unreadable")]
    FormatInformation,
    /// The version information or the grid size is invalid.
    #[error("invalid symbol version or size")]
    Version,
    /// Too many codeword errors for the Reed–Solomon correction.
    #[error("too many errors to correct")]
    ErrorCorrection,
    /// The corrected bit stream is not a valid sequence of segments.
    #[error("corrupt data segments")]
    Data,
    /// The decoder failed internally on this image (it is treated as unreadable).
    #[error("decoder failure")]
    Internal,
}

impl From<rqrr::DeQRError> for DecodeFailure {
    fn from(e: rqrr::DeQRError) -> Self {
        use rqrr::DeQRError as E;
        match e {
            E::FormatEcc => Self::FormatInformation,
            E::InvalidVersion | E::InvalidGridSize => Self::Version,
            E::DataEcc => Self::ErrorCorrection,
            E::DataUnderflow | E::DataOverflow | E::UnknownDataType | E::EncodingError => {
                Self::Data
            }
            E::IoError => Self::Internal,
        }
    }
}

/// Why no payload came out of an image.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScanError {
    /// The bytes are not a usable image.
    #[error("bad image: {0}")]
    BadImage(#[from] ImageError),
    /// No QR symbol was found in the image.
    #[error("no QR symbol found")]
    NoSymbol,
    /// More than one symbol with different contents: the terminal cannot tell which is meant.
    #[error("{0} different QR symbols in one image")]
    SeveralSymbols(usize),
    /// A symbol was found but could not be read.
    #[error("QR symbol unreadable: {0}")]
    Decode(#[from] DecodeFailure),
}
