//! Process titles for `--name`, as gunicorn sets them with setproctitle: `wsgihost: master
//! [NAME]` and `wsgihost: worker [NAME]`, shown by ps (the command line) and top (the
//! 15-byte thread name). The command line is rewritten in place, in the memory the kernel
//! shows as /proc/PID/cmdline, so a title longer than the original command line is cut.
use std::ffi::{c_char, c_int};
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

static ARGV: AtomicPtr<*mut c_char> = AtomicPtr::new(std::ptr::null_mut());
static ARGC: AtomicUsize = AtomicUsize::new(0);

/// glibc calls the functions of `.init_array` with the process's argc, argv and envp, both
/// for the program and for a shared object loaded later (the pip package's extension
/// module), so this finds the original command line either way.
#[used]
#[unsafe(link_section = ".init_array")]
static CAPTURE_ARGV: extern "C" fn(c_int, *mut *mut c_char, *mut *mut c_char) = capture_argv;

extern "C" fn capture_argv(argc: c_int, argv: *mut *mut c_char, _envp: *mut *mut c_char) {
    ARGC.store(argc.max(0) as usize, Ordering::Relaxed);
    ARGV.store(argv, Ordering::Relaxed);
}

/// Sets this process's title (call while single-threaded: at start, or just after a fork).
pub fn set(title: &str) {
    let short: Vec<u8> = title.bytes().filter(|&b| b != 0).take(15).collect();
    if let Ok(name) = std::ffi::CString::new(short) {
        let _ = nix::sys::prctl::set_name(&name);
    }
    let argv = ARGV.load(Ordering::Relaxed);
    let argc = ARGC.load(Ordering::Relaxed);
    if argv.is_null() || argc == 0 {
        return;
    }
    // SAFETY: argv and argc are what the C runtime passed at start: argc pointers to
    // NUL-terminated strings, which live (writable, on the initial stack) for the whole
    // process. Only the bytes of the strings that lie end to end from argv[0] are written,
    // never past the last one's NUL; the process is single-threaded and nothing reads the
    // original arguments after start-up (std's and Python's copies were made).
    unsafe {
        let start = *argv;
        if start.is_null() {
            return;
        }
        let mut end = start;
        for index in 0..argc {
            let arg = *argv.add(index);
            if arg != end {
                break;
            }
            end = arg.add(libc::strlen(arg) + 1);
        }
        let room = end.offset_from(start) as usize;
        if room == 0 {
            return;
        }
        let area = std::slice::from_raw_parts_mut(start.cast::<u8>(), room);
        let shown = title.len().min(room - 1);
        area[..shown].copy_from_slice(&title.as_bytes()[..shown]);
        area[shown..].fill(0);
    }
}
