//! A piece of an exposition (usually one family), rendered once in both
//! formats and compressed at the same time. A snapshot is a list of shared
//! pieces: a family whose samples did not change is neither rendered nor
//! compressed again, and the gzip body of any list of pieces is still one
//! gzip member (some clients, curl among them, read only the first).
//!
//! How pieces compress separately into one member: each piece is a raw
//! deflate stream of its own (no reference to earlier bytes) ended by a
//! sync flush, which leaves it on a byte boundary and not final. Such
//! streams concatenate into one valid deflate stream; a final empty block
//! ends it, and the gzip trailer's CRC-32 is combined from the pieces'.

use super::{openmetrics, text, Format};
use crate::metrics::Family;
use flate2::{Compress, Compression, Crc, FlushCompress, Status};
use std::cell::RefCell;

/// One format of a piece.
pub struct Encoded {
    pub bytes: Vec<u8>,
    /// Raw deflate of `bytes`, sync-flushed, not final.
    pub deflate: Vec<u8>,
    crc: Crc,
}

pub struct Part {
    text: Encoded,
    openmetrics: Encoded,
}

/// gzip's member header: deflate, no name, no time, unknown OS.
pub const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

impl Part {
    /// Renders families in both formats (OpenMetrics without `# EOF`: the
    /// snapshot ends with it).
    pub fn render(families: &[&Family]) -> Part {
        let encode = |write: fn(&[&Family], &mut Vec<u8>)| {
            let mut bytes = Vec::new();
            write(families, &mut bytes);
            Encoded::new(bytes)
        };
        Part {
            text: encode(text::write),
            openmetrics: encode(openmetrics::write_families),
        }
    }

    /// OpenMetrics' last line; nothing in the text format.
    pub fn eof() -> Part {
        Part {
            text: Encoded::new(Vec::new()),
            openmetrics: Encoded::new(openmetrics::EOF.to_vec()),
        }
    }

    pub fn get(&self, format: Format) -> &Encoded {
        match format {
            Format::Text => &self.text,
            Format::OpenMetrics => &self.openmetrics,
        }
    }
}

impl Encoded {
    fn new(bytes: Vec<u8>) -> Encoded {
        let mut crc = Crc::new();
        crc.update(&bytes);
        Encoded {
            deflate: if bytes.is_empty() {
                Vec::new()
            } else {
                deflate_flushed(&bytes)
            },
            bytes,
            crc,
        }
    }
}

thread_local! {
    /// One compressor per rendering thread, reset for each piece: a new
    /// one allocates and clears some 300 KB of tables, more than most
    /// pieces cost to compress (a steady cycle renders a few small ones).
    static COMPRESSOR: RefCell<Compress> = RefCell::new(Compress::new(Compression::fast(), false));
}

/// Raw deflate of `input` ended by a sync flush.
fn deflate_flushed(input: &[u8]) -> Vec<u8> {
    COMPRESSOR.with_borrow_mut(|c| {
        c.reset();
        deflate_flushed_with(c, input)
    })
}

fn deflate_flushed_with(c: &mut Compress, input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len() / 4 + 64);
    loop {
        let done = c.total_in() as usize;
        if out.capacity() - out.len() < 64 {
            out.reserve(out.capacity() + 64);
        }
        match c.compress_vec(&input[done..], &mut out, FlushCompress::Sync) {
            // The flush is complete once all input is in and the output
            // was not filled to the brim (zlib's rule for flushes).
            Ok(Status::Ok | Status::BufError)
                if c.total_in() as usize == input.len() && out.len() < out.capacity() =>
            {
                return out;
            }
            Ok(_) => {}
            // Only on a bug in the compressor: serve the piece stored.
            Err(_) => return stored(input),
        }
    }
}

/// `input` as stored (uncompressed) deflate blocks, not final.
fn stored(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len() + input.len() / 65535 * 5 + 5);
    for chunk in input.chunks(65535) {
        let n = chunk.len() as u16;
        out.push(0); // BFINAL 0, BTYPE 00; the rest of the byte is padding
        out.extend_from_slice(&n.to_le_bytes());
        out.extend_from_slice(&(!n).to_le_bytes());
        out.extend_from_slice(chunk);
    }
    out
}

/// What follows the pieces' deflate streams: a final empty block, the
/// CRC-32 and the length (mod 2^32) of everything uncompressed.
pub fn gzip_trailer<'a>(pieces: impl Iterator<Item = &'a Encoded>) -> [u8; 10] {
    let mut crc = Crc::new();
    for p in pieces {
        crc.combine(&p.crc);
    }
    let mut t = [0u8; 10];
    // A final block of fixed Huffman codes holding only end-of-block.
    t[0] = 0x03;
    t[1] = 0x00;
    t[2..6].copy_from_slice(&crc.sum().to_le_bytes());
    t[6..10].copy_from_slice(&crc.amount().to_le_bytes());
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn family(name: &str, n: usize) -> Family {
        let mut f = Family::gauge(name, "help", &["node"]);
        for i in 0..n {
            f.add(&[format!("node{i}")], i as f64);
        }
        f
    }

    /// The whole gzip body of some pieces, as the HTTP front writes it.
    fn gzip(parts: &[&Part], format: Format) -> Vec<u8> {
        let mut out = GZIP_HEADER.to_vec();
        for p in parts {
            out.extend_from_slice(&p.get(format).deflate);
        }
        out.extend_from_slice(&gzip_trailer(parts.iter().map(|p| p.get(format))));
        out
    }

    #[test]
    fn pieces_compressed_apart_read_back_as_one_gzip_member() {
        let (a, b, c) = (family("a", 3000), family("b", 1), family("c", 0));
        let parts = [
            Part::render(&[&a]),
            Part::render(&[&b]),
            Part::render(&[&c]),
            Part::eof(),
        ];
        let refs: Vec<&Part> = parts.iter().collect();
        for format in [Format::Text, Format::OpenMetrics] {
            let mut whole = Vec::new();
            crate::expose::render(format, &[&a, &b, &c], &mut whole);
            if format == Format::Text {
                assert!(!whole.ends_with(openmetrics::EOF));
            }
            let body = gzip(&refs, format);
            // flate2's single-member decoder: it stops at the first
            // member's end, so everything must be in that one member.
            let mut back = Vec::new();
            flate2::read::GzDecoder::new(&body[..])
                .read_to_end(&mut back)
                .expect("a valid gzip member");
            assert_eq!(back, whole, "{format:?}");
            assert!(
                body.len() < whole.len() / 3,
                "compressed {} of {}",
                body.len(),
                whole.len()
            );
        }
    }

    #[test]
    fn stored_blocks_are_valid_deflate_too() {
        let input: Vec<u8> = (0..150_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut body = GZIP_HEADER.to_vec();
        body.extend_from_slice(&stored(&input));
        let piece = Encoded {
            bytes: input.clone(),
            deflate: Vec::new(),
            crc: {
                let mut c = Crc::new();
                c.update(&input);
                c
            },
        };
        body.extend_from_slice(&gzip_trailer(std::iter::once(&piece)));
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&body[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, input);
    }
}
