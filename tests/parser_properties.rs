//! Property tests (run by `cargo test`, so in CI): the request-head parser and the chunked
//! decoder never panic on random or mutated input, and a chunked body decodes to the same
//! bytes however it is split.
use proptest::prelude::*;
use wsgihost::http::body::ChunkedDecoder;
use wsgihost::http::request::{HeadLimits, parse_head};

const LIMITS: HeadLimits = HeadLimits {
    request_line: 256,
    header_block: 1024,
    field_size: 200,
    fields: 20,
};

const SEED_REQUEST: &[u8] =
    b"POST /a%20b?x=1 HTTP/1.1\r\nHost: example\r\nTransfer-Encoding: chunked\r\nX: y\r\n\r\n";

fn encode_chunked(body: &[u8], sizes: &[usize]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = body;
    let mut sizes = sizes.iter().cycle();
    while !rest.is_empty() {
        let size = (*sizes.next().unwrap_or(&1)).clamp(1, rest.len());
        out.extend_from_slice(format!("{size:x};ext=1\r\n").as_bytes());
        out.extend_from_slice(&rest[..size]);
        out.extend_from_slice(b"\r\n");
        rest = &rest[size..];
    }
    out.extend_from_slice(b"0\r\nTrailer: t\r\n\r\n");
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn head_parser_never_panics_on_random_bytes(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let mut buf = data;
        let _ = parse_head(&mut buf, LIMITS);
    }

    #[test]
    fn head_parser_never_panics_on_mutated_requests(
        flips in proptest::collection::vec((0..SEED_REQUEST.len(), any::<u8>()), 1..8),
        cut in 0..SEED_REQUEST.len() + 1,
    ) {
        let mut buf = SEED_REQUEST.to_vec();
        for (position, byte) in flips {
            buf[position] = byte;
        }
        buf.truncate(cut.max(1));
        if let Ok(Some(head)) = parse_head(&mut buf, LIMITS) {
            prop_assert!(!head.method().is_empty());
        }
    }

    #[test]
    fn chunked_decoder_never_panics(data in proptest::collection::vec(any::<u8>(), 0..2048), step in 1usize..64) {
        let mut decoder = ChunkedDecoder::default();
        let mut out = Vec::new();
        for piece in data.chunks(step) {
            if decoder.decode(piece, &mut out, usize::MAX).is_err() {
                break;
            }
        }
    }

    #[test]
    fn chunked_body_same_at_every_split(
        body in proptest::collection::vec(any::<u8>(), 0..600),
        sizes in proptest::collection::vec(1usize..200, 1..6),
        max_out in 1usize..300,
    ) {
        let wire = encode_chunked(&body, &sizes);
        for split in 0..=wire.len() {
            let mut decoder = ChunkedDecoder::default();
            let mut out = Vec::new();
            for part in [&wire[..split], &wire[split..]] {
                let mut part = part;
                while !part.is_empty() && !decoder.is_done() {
                    let used = decoder.decode(part, &mut out, max_out).expect("valid framing");
                    part = &part[used..];
                }
            }
            prop_assert!(decoder.is_done());
            prop_assert_eq!(&out, &body);
        }
    }
}
