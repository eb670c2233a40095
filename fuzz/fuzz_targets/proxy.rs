//! The PROXY protocol parser: never a panic, never a header longer than the limits, and
//! the same verdict whether the bytes come at once or one more at a time (a prefix of a
//! header is "not yet", never a different answer). The first byte picks the versions.
#![no_main]
use libfuzzer_sys::fuzz_target;
use wsgihost::net::proxy_protocol::{V2_MAX_PAYLOAD, Versions, looks_like_header, parse};

fuzz_target!(|data: &[u8]| {
    let Some((&first, input)) = data.split_first() else {
        return;
    };
    let versions = [Versions::V1, Versions::V2, Versions::Any][usize::from(first % 3)];
    let whole = parse(input, versions);
    if let Ok(Some((_, used))) = &whole {
        assert!(*used <= input.len());
        assert!(*used <= 16 + V2_MAX_PAYLOAD, "a header of {used} bytes");
        assert_eq!(looks_like_header(input), Some(true));
    }
    // Growing the input one byte at a time: "not yet" until the verdict, which must be
    // the whole input's (for a header complete before the end, the one it takes).
    for end in 0..=input.len() {
        match parse(&input[..end], versions) {
            Ok(None) => continue,
            Ok(Some((header, used))) => {
                assert_eq!(whole, Ok(Some((header, used))), "verdict at {end} bytes differs");
                return;
            }
            Err(err) => {
                assert_eq!(whole, Err(err), "error at {end} bytes differs");
                return;
            }
        }
    }
    assert_eq!(whole, Ok(None));
});
