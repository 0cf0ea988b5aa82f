//! vpcd framing: every message, both ways, is `len: u16 big-endian || len bytes`.
//!
//! [`FrameDecoder`] is sans-IO: feed it whatever a socket read returned and take whole frames out,
//! so a frame split over several reads (or several frames in one read) is handled in one place.

use crate::error::TransportError;

/// Largest payload one frame carries.
pub const MAX_PAYLOAD: usize = u16::MAX as usize;

/// Encodes one frame: the length prefix and the payload in one buffer, so that one `write` call
/// sends both (a split write costs a delayed-ACK round trip on the pcscd side).
pub fn encode(payload: &[u8]) -> Result<Vec<u8>, TransportError> {
    let len = u16::try_from(payload.len()).map_err(|_| TransportError::FrameTooLong {
        len: payload.len(),
        max: MAX_PAYLOAD,
    })?;
    let mut frame = Vec::with_capacity(2 + payload.len());
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(payload);
    Ok(frame)
}

/// Incremental decoder of the byte stream coming from pcscd.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buffer: Vec<u8>,
}

impl FrameDecoder {
    /// An empty decoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends bytes received from the socket.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    /// Takes the next complete frame's payload out, or `None` until more bytes arrive.
    pub fn next_frame(&mut self) -> Option<Vec<u8>> {
        let [hi, lo, ..] = self.buffer[..] else {
            return None;
        };
        let len = usize::from(u16::from_be_bytes([hi, lo]));
        if self.buffer.len() < 2 + len {
            return None;
        }
        let payload = self.buffer[2..2 + len].to_vec();
        self.buffer.drain(..2 + len);
        Some(payload)
    }

    /// Number of buffered bytes that do not yet form a whole frame.
    pub fn pending(&self) -> usize {
        self.buffer.len()
    }

    /// Drops any partial frame (after the connection was lost).
    pub fn clear(&mut self) {
        self.buffer.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_prefixes_big_endian_length() {
        assert_eq!(encode(&[0x3B, 0x80]).unwrap(), [0x00, 0x02, 0x3B, 0x80]);
        assert_eq!(encode(&[]).unwrap(), [0x00, 0x00]);
        let big = vec![0u8; 0x1234];
        assert_eq!(encode(&big).unwrap()[..2], [0x12, 0x34]);
    }

    #[test]
    fn encode_refuses_more_than_u16() {
        let too_big = vec![0u8; MAX_PAYLOAD + 1];
        assert!(matches!(
            encode(&too_big),
            Err(TransportError::FrameTooLong {
                len: 65536,
                max: 65535
            })
        ));
        assert!(encode(&too_big[1..]).is_ok());
    }

    #[test]
    fn decoder_handles_split_and_joined_frames() {
        let mut stream = encode(&[0x04]).unwrap();
        stream.extend(encode(&[0x00, 0xA4, 0x04, 0x00]).unwrap());
        stream.extend(encode(&[0x01]).unwrap());
        let mut decoder = FrameDecoder::new();
        let mut frames = Vec::new();
        // One byte at a time: the worst split a socket can produce.
        for b in &stream {
            decoder.push(core::slice::from_ref(b));
            while let Some(f) = decoder.next_frame() {
                frames.push(f);
            }
        }
        assert_eq!(
            frames,
            vec![vec![0x04], vec![0x00, 0xA4, 0x04, 0x00], vec![0x01]]
        );
        assert_eq!(decoder.pending(), 0);

        // All at once.
        decoder.push(&stream);
        assert_eq!(decoder.next_frame(), Some(vec![0x04]));
        assert_eq!(decoder.next_frame(), Some(vec![0x00, 0xA4, 0x04, 0x00]));
        assert_eq!(decoder.next_frame(), Some(vec![0x01]));
        assert_eq!(decoder.next_frame(), None);
    }

    #[test]
    fn decoder_waits_for_the_whole_payload() {
        let mut decoder = FrameDecoder::new();
        decoder.push(&[0x00, 0x05, 0x80, 0x5C]);
        assert_eq!(decoder.next_frame(), None);
        assert_eq!(decoder.pending(), 4);
        decoder.push(&[0x00, 0x02, 0x04]);
        assert_eq!(
            decoder.next_frame(),
            Some(vec![0x80, 0x5C, 0x00, 0x02, 0x04])
        );
    }

    #[test]
    fn empty_frame_is_a_frame() {
        let mut decoder = FrameDecoder::new();
        decoder.push(&[0x00, 0x00]);
        assert_eq!(decoder.next_frame(), Some(vec![]));
    }

    proptest::proptest! {
        #[test]
        fn round_trip_any_split(payloads in proptest::collection::vec(
            proptest::collection::vec(proptest::num::u8::ANY, 0..300), 0..8),
            chunk in 1usize..64)
        {
            let stream: Vec<u8> = payloads.iter().flat_map(|p| encode(p).unwrap()).collect();
            let mut decoder = FrameDecoder::new();
            let mut out = Vec::new();
            for c in stream.chunks(chunk) {
                decoder.push(c);
                while let Some(f) = decoder.next_frame() { out.push(f); }
            }
            proptest::prop_assert_eq!(out, payloads);
            proptest::prop_assert_eq!(decoder.pending(), 0);
        }
    }
}
