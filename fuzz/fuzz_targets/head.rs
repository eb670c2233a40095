//! Request heads: any bytes, with the default limits and small ones. Never a panic; a head
//! that parses keeps its promises (the fields lie inside it, limits hold, framing is one of
//! the allowed shapes), and what follows it stays in the buffer.
#![no_main]
use libfuzzer_sys::fuzz_target;
use wsgihost::http::body::Framing;
use wsgihost::http::request::{HeadLimits, parse_head};

const SMALL: HeadLimits = HeadLimits {
    request_line: 64,
    header_block: 256,
    field_size: 48,
    fields: 4,
};

fuzz_target!(|data: &[u8]| {
    for limits in [HeadLimits::DEFAULT, SMALL] {
        let mut buf = data.to_vec();
        let Ok(Some(head)) = parse_head(&mut buf, limits) else {
            continue;
        };
        let line = head.request_line_bytes();
        assert!(!line.contains(&b'\n') && !line.contains(&b'\r'));
        assert!(head.headers().count() <= limits.fields);
        for (name, value) in head.headers() {
            assert!(name.len() + 2 + value.len() <= limits.field_size);
            assert!(!value.contains(&b'\n') && !value.contains(&b'\0'));
        }
        if let Framing::Length(length) = head.framing {
            assert!(length > 0);
        }
        let consumed = data.len() - buf.len();
        assert!(data[..consumed].ends_with(b"\n"));
        assert_eq!(&data[consumed..], &buf[..]);
    }
});
