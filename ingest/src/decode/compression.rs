//! `Content-Encoding` handling: names the encodings we accept and decompresses bodies without
//! ever holding more than the decompressed-size limit. Every decoder stops reading one chunk
//! past the limit and fails with 413, so a zip bomb costs at most `limit` bytes of memory.
//!
//! `deflate` is zlib-wrapped per RFC 9110, but raw deflate streams (which some clients send)
//! are accepted too, told apart by the zlib header check. `snappy` is Loki's block format
//! (`snap::raw`); a body that starts with the snappy framing-format stream identifier is read as
//! framed instead.

use super::error::DecodeError;
use flate2::read::{DeflateDecoder, MultiGzDecoder, ZlibDecoder};
use std::borrow::Cow;
use std::io::{ErrorKind, Read};

/// A request body's content encoding, from its `Content-Encoding` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// No header, an empty one, or `identity`.
    Identity,
    /// `gzip` or `x-gzip`.
    Gzip,
    /// `deflate` (zlib-wrapped or raw).
    Deflate,
    /// `snappy` (block format, or framed when the stream identifier is present).
    Snappy,
}

impl Encoding {
    /// Parses a `Content-Encoding` header value (case-insensitive, surrounding spaces ignored).
    /// Stacked encodings such as `gzip, snappy` are not supported.
    pub fn from_header(value: Option<&str>) -> Result<Self, DecodeError> {
        let Some(value) = value.map(str::trim) else {
            return Ok(Self::Identity);
        };
        match value.to_ascii_lowercase().as_str() {
            "" | "identity" => Ok(Self::Identity),
            "gzip" | "x-gzip" => Ok(Self::Gzip),
            "deflate" => Ok(Self::Deflate),
            "snappy" => Ok(Self::Snappy),
            _ => Err(DecodeError::UnsupportedEncoding(super::error::clip(value))),
        }
    }

    /// The encoding's name as error messages print it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Identity => "identity",
            Self::Gzip => "gzip",
            Self::Deflate => "deflate",
            Self::Snappy => "snappy",
        }
    }
}

/// `body` decoded per `encoding`, at most `limit` bytes.
pub(crate) fn decompress(
    encoding: Encoding,
    body: &[u8],
    limit: usize,
) -> Result<Cow<'_, [u8]>, DecodeError> {
    match encoding {
        Encoding::Identity if body.len() > limit => Err(DecodeError::BodyTooLarge {
            len: body.len(),
            limit,
        }),
        Encoding::Identity => Ok(Cow::Borrowed(body)),
        Encoding::Gzip => read_bounded(MultiGzDecoder::new(body), "gzip", body.len(), limit),
        Encoding::Deflate if has_zlib_header(body) => {
            read_bounded(ZlibDecoder::new(body), "deflate", body.len(), limit)
        }
        Encoding::Deflate => read_bounded(DeflateDecoder::new(body), "deflate", body.len(), limit),
        Encoding::Snappy => snappy(body, limit),
    }
}

/// Snappy block data (or framed data, when it starts with the stream identifier).
pub(crate) fn snappy(body: &[u8], limit: usize) -> Result<Cow<'static, [u8]>, DecodeError> {
    const FRAME_MAGIC: &[u8] = b"\xff\x06\x00\x00sNaPpY";
    if body.starts_with(FRAME_MAGIC) {
        return read_bounded(
            snap::read::FrameDecoder::new(body),
            "snappy",
            body.len(),
            limit,
        );
    }
    let len = snap::raw::decompress_len(body).map_err(|e| DecodeError::corrupt("snappy", e))?;
    if len > limit {
        return Err(DecodeError::DecompressedTooLarge { limit });
    }
    snap::raw::Decoder::new()
        .decompress_vec(body)
        .map(Cow::Owned)
        .map_err(|e| DecodeError::corrupt("snappy", e))
}

/// RFC 1950: compression method 8 in the low nibble and a header checksum divisible by 31.
fn has_zlib_header(body: &[u8]) -> bool {
    match body {
        [cmf, flg, ..] => cmf & 0x0f == 8 && (u16::from(*cmf) << 8 | u16::from(*flg)) % 31 == 0,
        _ => false,
    }
}

/// Reads `reader` to the end into a buffer that never grows past `limit` bytes.
fn read_bounded(
    mut reader: impl Read,
    encoding: &'static str,
    compressed_len: usize,
    limit: usize,
) -> Result<Cow<'static, [u8]>, DecodeError> {
    let mut out = Vec::with_capacity(compressed_len.saturating_mul(4).min(limit));
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = match reader.read(&mut chunk) {
            Ok(0) => return Ok(Cow::Owned(out)),
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(DecodeError::corrupt(encoding, e)),
        };
        if n > limit - out.len() {
            return Err(DecodeError::DecompressedTooLarge { limit });
        }
        if out.capacity() - out.len() < n {
            // Double, but never past the limit: `reserve` alone could overshoot it.
            out.reserve_exact(out.capacity().max(n).min(limit - out.len()));
        }
        out.extend_from_slice(&chunk[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::Compression;
    use flate2::write::{DeflateEncoder, GzEncoder, ZlibEncoder};
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn header_values_map_to_encodings() {
        let cases = [
            (None, Encoding::Identity),
            (Some(""), Encoding::Identity),
            (Some(" Identity "), Encoding::Identity),
            (Some("GZIP"), Encoding::Gzip),
            (Some("x-gzip"), Encoding::Gzip),
            (Some("deflate"), Encoding::Deflate),
            (Some("snappy"), Encoding::Snappy),
        ];
        for (header, want) in cases {
            assert_eq!(Encoding::from_header(header).unwrap(), want, "{header:?}");
        }
    }

    #[test]
    fn unknown_encodings_are_415_and_named() {
        for header in ["br", "zstd", "gzip, snappy"] {
            let err = Encoding::from_header(Some(header)).unwrap_err();
            assert_eq!(err.status(), 415);
            assert!(err.to_string().contains(&format!("{header:?}")), "{err}");
        }
    }

    #[test]
    fn every_encoding_round_trips() {
        let data = b"hello hello hello hello".repeat(100);
        let mut zlib = ZlibEncoder::new(Vec::new(), Compression::fast());
        zlib.write_all(&data).unwrap();
        let mut raw = DeflateEncoder::new(Vec::new(), Compression::fast());
        raw.write_all(&data).unwrap();
        let mut framed = snap::write::FrameEncoder::new(Vec::new());
        framed.write_all(&data).unwrap();
        let cases = [
            (Encoding::Identity, data.clone()),
            (Encoding::Gzip, gzip(&data)),
            (Encoding::Deflate, zlib.finish().unwrap()),
            (Encoding::Deflate, raw.finish().unwrap()),
            (
                Encoding::Snappy,
                snap::raw::Encoder::new().compress_vec(&data).unwrap(),
            ),
            (Encoding::Snappy, framed.into_inner().unwrap()),
        ];
        for (encoding, body) in cases {
            let out = decompress(encoding, &body, 1 << 20).unwrap();
            assert_eq!(out.as_ref(), data.as_slice(), "{encoding:?}");
        }
    }

    #[test]
    fn corrupt_data_is_400_naming_the_encoding() {
        let mut truncated = gzip(&b"x".repeat(10_000));
        truncated.truncate(truncated.len() / 2);
        let cases = [
            (
                Encoding::Gzip,
                b"not gzip at all".to_vec(),
                "invalid gzip data: ",
            ),
            (Encoding::Gzip, truncated, "invalid gzip data: "),
            (Encoding::Deflate, vec![0xff; 16], "invalid deflate data: "),
            (Encoding::Snappy, vec![0xff; 16], "invalid snappy data: "),
        ];
        for (encoding, body, want) in cases {
            let err = decompress(encoding, &body, 1 << 20).unwrap_err();
            assert_eq!(err.status(), 400, "{err}");
            assert!(err.to_string().starts_with(want), "{err}");
        }
    }

    #[test]
    fn zip_bombs_stop_at_the_limit_with_413() {
        let limit = 1 << 20;
        let zeros = vec![0u8; 16 << 20];
        let mut framed = snap::write::FrameEncoder::new(Vec::new());
        framed.write_all(&zeros).unwrap();
        let bombs = [
            (Encoding::Gzip, gzip(&zeros)),
            (
                Encoding::Snappy,
                snap::raw::Encoder::new().compress_vec(&zeros).unwrap(),
            ),
            (Encoding::Snappy, framed.into_inner().unwrap()),
            (Encoding::Identity, zeros.clone()),
        ];
        for (encoding, body) in bombs {
            let err = decompress(encoding, &body, limit).unwrap_err();
            assert_eq!(err.status(), 413, "{encoding:?}: {err}");
        }
        let err = decompress(Encoding::Gzip, &gzip(&zeros), limit).unwrap_err();
        assert_eq!(
            err.to_string(),
            "body decompresses to more than 1048576 bytes (limit)"
        );
    }

    #[test]
    fn bounded_read_never_reserves_past_the_limit() {
        let limit = 1_000_003;
        let out = read_bounded(std::io::repeat(7).take(limit as u64), "test", 10, limit).unwrap();
        assert_eq!(out.len(), limit);
        assert!(matches!(&out, Cow::Owned(v) if v.capacity() == limit));
        let err = read_bounded(std::io::repeat(7), "test", 10, limit).unwrap_err();
        assert!(matches!(
            err,
            DecodeError::DecompressedTooLarge { limit: 1_000_003 }
        ));
    }
}
