//! The chunked decoder: never a panic, and the same body and the same verdict however the
//! input is split (the first byte picks the split size) and however little room each call
//! may fill.
#![no_main]
use libfuzzer_sys::fuzz_target;
use wsgihost::http::body::ChunkedDecoder;

/// Decodes `input` fed in pieces of `step` bytes, each call producing at most `room`.
fn decode(input: &[u8], step: usize, room: usize) -> (Vec<u8>, Option<bool>) {
    let mut decoder = ChunkedDecoder::default();
    let mut body = Vec::new();
    let mut pending: Vec<u8> = Vec::new();
    for piece in input.chunks(step) {
        pending.extend_from_slice(piece);
        loop {
            match decoder.decode(&pending, &mut body, room) {
                Ok(0) => break,
                Ok(used) => {
                    pending.drain(..used);
                    if decoder.is_done() {
                        return (body, Some(true));
                    }
                }
                Err(_) => return (body, Some(false)),
            }
        }
    }
    (body, decoder.is_done().then_some(true))
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, input)) = data.split_first() else {
        return;
    };
    let whole = decode(input, input.len().max(1), usize::MAX);
    let split = decode(
        input,
        usize::from(first % 7) + 1,
        usize::from(first % 5) + 1,
    );
    assert_eq!(whole.1, split.1, "verdict depends on the split");
    if whole.1 == Some(true) {
        assert_eq!(whole.0, split.0, "body depends on the split");
    }
});
