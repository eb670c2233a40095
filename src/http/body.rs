//! Request body framing: none, Content-Length, or chunked (decoded here, strictly).
use super::HttpError;

/// How the request body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    Empty,
    Length(u64),
    Chunked,
}

/// Longest chunk-size line (size + extensions) and trailer section accepted.
const MAX_LINE: usize = 4096;
const MAX_TRAILERS: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Size { digits: u8 },
    Extension,
    SizeLf,
    Data,
    DataCr,
    DataLf,
    TrailerLineStart,
    TrailerLine,
    TrailerLf { empty_line: bool },
    Done,
}

/// An incremental decoder for `Transfer-Encoding: chunked`: feed it bytes in any split.
#[derive(Debug, Clone)]
pub struct ChunkedDecoder {
    state: State,
    size: u64,
    line_len: usize,
    trailer_len: usize,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        ChunkedDecoder {
            state: State::Size { digits: 0 },
            size: 0,
            line_len: 0,
            trailer_len: 0,
        }
    }
}

fn malformed() -> HttpError {
    HttpError::new(400, "Bad Request")
}

impl ChunkedDecoder {
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Decodes from `input`, appending body bytes to `out` (at most `max_out` of them).
    /// Returns how many input bytes were consumed; stops early once `max_out` is reached
    /// or the final chunk and trailers are complete.
    pub fn decode(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        max_out: usize,
    ) -> Result<usize, HttpError> {
        let mut pos = 0;
        let mut produced = 0;
        while pos < input.len() && self.state != State::Done {
            if self.state == State::Data {
                let room = max_out - produced;
                if room == 0 {
                    break;
                }
                let take = (input.len() - pos).min(room).min(self.size as usize);
                out.extend_from_slice(&input[pos..pos + take]);
                pos += take;
                produced += take;
                self.size -= take as u64;
                if self.size == 0 {
                    self.state = State::DataCr;
                }
                continue;
            }
            self.step(input[pos])?;
            pos += 1;
        }
        Ok(pos)
    }

    /// Advances the framing state machine by one byte outside chunk data.
    fn step(&mut self, byte: u8) -> Result<(), HttpError> {
        self.state = match self.state {
            State::Size { digits } => {
                self.line_len += 1;
                match byte {
                    b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' if digits < 16 => {
                        let value = (byte as char).to_digit(16).unwrap_or(0) as u64;
                        self.size = self.size * 16 + value;
                        State::Size { digits: digits + 1 }
                    }
                    b';' | b' ' | b'\t' if digits > 0 => State::Extension,
                    b'\r' if digits > 0 => State::SizeLf,
                    _ => return Err(malformed()),
                }
            }
            State::Extension => {
                self.line_len += 1;
                if self.line_len > MAX_LINE {
                    return Err(malformed());
                }
                match byte {
                    b'\r' => State::SizeLf,
                    b'\n' | 0 => return Err(malformed()),
                    _ => State::Extension,
                }
            }
            State::SizeLf if byte == b'\n' => {
                self.line_len = 0;
                if self.size == 0 {
                    State::TrailerLineStart
                } else {
                    State::Data
                }
            }
            State::DataCr if byte == b'\r' => State::DataLf,
            State::DataLf if byte == b'\n' => State::Size { digits: 0 },
            State::TrailerLineStart | State::TrailerLine => {
                self.trailer_len += 1;
                if self.trailer_len > MAX_TRAILERS {
                    return Err(malformed());
                }
                let empty_line = self.state == State::TrailerLineStart;
                match byte {
                    b'\r' => State::TrailerLf { empty_line },
                    b'\n' | 0 => return Err(malformed()),
                    _ => State::TrailerLine,
                }
            }
            State::TrailerLf { empty_line } if byte == b'\n' => {
                if empty_line {
                    State::Done
                } else {
                    State::TrailerLineStart
                }
            }
            _ => return Err(malformed()),
        };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(input: &[u8]) -> Result<(Vec<u8>, usize, bool), HttpError> {
        let mut decoder = ChunkedDecoder::default();
        let mut out = Vec::new();
        let used = decoder.decode(input, &mut out, usize::MAX)?;
        Ok((out, used, decoder.is_done()))
    }

    #[test]
    fn decodes_chunks_extensions_and_trailers() {
        let body = b"4;name=v\r\nWiki\r\n5\r\npedia\r\n0\r\nX-Trailer: 1\r\n\r\nNEXT";
        let (out, used, done) = decode_all(body).unwrap();
        assert_eq!(out, b"Wikipedia");
        assert!(done);
        assert_eq!(&body[used..], b"NEXT");
    }

    #[test]
    fn same_bytes_at_every_split() {
        let body = b"3\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\n\r\n";
        for split in 0..body.len() {
            let mut decoder = ChunkedDecoder::default();
            let mut out = Vec::new();
            let first = decoder
                .decode(&body[..split], &mut out, usize::MAX)
                .unwrap();
            assert_eq!(first, split);
            decoder
                .decode(&body[split..], &mut out, usize::MAX)
                .unwrap();
            assert_eq!(out, b"abc0123456789abcdef");
            assert!(decoder.is_done());
        }
    }

    #[test]
    fn respects_output_bound() {
        let mut decoder = ChunkedDecoder::default();
        let mut out = Vec::new();
        let used = decoder
            .decode(b"a\r\n0123456789\r\n0\r\n\r\n", &mut out, 4)
            .unwrap();
        assert_eq!(out, b"0123");
        assert_eq!(used, 3 + 4);
    }

    #[test]
    fn refuses_malformed_framing() {
        for bad in [
            &b"x\r\n"[..],
            b"\r\n",
            b"-1\r\n",
            b"3\nabc\r\n",
            b"3\r\nabcX\r\n",
            b"11111111111111111\r\n",
            b"0\r\nX: a\n\r\n",
        ] {
            assert!(
                decode_all(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
