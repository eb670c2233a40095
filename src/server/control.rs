//! The pipe from a worker to the master: one byte per message. The master learns that a
//! worker is ready (booted, app imported), alive (a heartbeat a second) or retiring (it
//! stops accepting and will exit after its requests, so a replacement should start now).
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message {
    Ready,
    Heartbeat,
    Retiring,
}

impl Message {
    fn byte(self) -> u8 {
        match self {
            Message::Ready => b'R',
            Message::Heartbeat => b'H',
            Message::Retiring => b'X',
        }
    }
    fn from_byte(byte: u8) -> Option<Message> {
        match byte {
            b'R' => Some(Message::Ready),
            b'H' => Some(Message::Heartbeat),
            b'X' => Some(Message::Retiring),
            _ => None,
        }
    }
}

/// A new pipe: (the master's non-blocking read end, the worker's write end).
pub fn pipe() -> io::Result<(File, File)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two fresh descriptors that we then own.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 succeeded: both descriptors are open and nobody else owns them.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    Ok((File::from(read), File::from(write)))
}

/// The worker's side.
pub struct Reporter(pub Option<File>);

impl Reporter {
    pub fn send(&self, message: Message) {
        if let Some(mut pipe) = self.0.as_ref() {
            // A full pipe means the master is not reading; dropping a heartbeat is fine.
            let _ = pipe.write(&[message.byte()]);
        }
    }
}

/// Reads every message waiting in the master's end. `Ok(None)` inside means EOF: the
/// worker has exited (or closed its end).
pub fn drain(pipe: &mut File) -> (Vec<Message>, bool) {
    let mut messages = Vec::new();
    let mut buf = [0u8; 64];
    loop {
        match pipe.read(&mut buf) {
            Ok(0) => return (messages, true),
            Ok(n) => messages.extend(buf[..n].iter().filter_map(|&b| Message::from_byte(b))),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return (messages, false),
        }
    }
}
