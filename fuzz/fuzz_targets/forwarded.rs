//! Trusted proxy headers: any Forwarded / X-Forwarded-For / X-Forwarded-Proto values from a
//! trusted or an untrusted peer. Never a panic; an untrusted peer changes nothing; an
//! address taken from the headers is an IP address, and the scheme http or https.
#![no_main]
use std::net::{IpAddr, SocketAddr};

use libfuzzer_sys::fuzz_target;
use wsgihost::http::forwarded::{Proxies, client_view};
use wsgihost::http::request::{HeadLimits, parse_head};

fuzz_target!(|data: &[u8]| {
    // The input is the header block: "Name: value" lines.
    let mut request = b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec();
    request.extend_from_slice(data);
    request.extend_from_slice(b"\r\n\r\n");
    let Ok(Some(head)) = parse_head(&mut request, HeadLimits::DEFAULT) else {
        return;
    };
    let trusted = Proxies {
        trusted: "127.0.0.1,::1,10.0.0.0/8".parse().expect("a valid list"),
        secure_headers: "X-FORWARDED-PROTOCOL=ssl,X-FORWARDED-SSL=on"
            .parse()
            .expect("valid headers"),
    };
    let proxy: SocketAddr = "127.0.0.1:4000".parse().unwrap();
    let stranger: SocketAddr = "192.0.2.1:4000".parse().unwrap();
    assert_eq!(
        client_view(&head, Some(stranger), &trusted),
        Default::default()
    );
    for peer in [Some(proxy), None] {
        let view = client_view(&head, peer, &trusted);
        if let Some(addr) = &view.addr {
            assert!(addr.parse::<IpAddr>().is_ok(), "client address {addr:?}");
        }
        assert!(matches!(view.scheme, None | Some("http") | Some("https")));
    }
});
