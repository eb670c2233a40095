//! Instrumentation the serving layers (net, wsgi, server) report into: Prometheus counters
//! in a region shared with the master, and what each request thread is doing (for
//! `--timeout` and the hand-off monitor).
pub mod activity;
pub mod metrics;
pub mod statsd;

/// `count` zero-filled values of `T` in anonymous memory shared with processes forked
/// after this, so a worker and the master see the same bytes.
///
/// # Safety
/// All-zero bytes must be a valid `T`, and `T` must need no more than page alignment
/// (atomics and arrays of them).
pub(crate) unsafe fn shared_zeroed<T>(count: usize) -> std::io::Result<&'static [T]> {
    let count = count.max(1);
    let size = std::mem::size_of::<T>() * count;
    // SAFETY: a fresh anonymous shared mapping, zero-filled by the kernel; nothing else
    // refers to it.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if ptr == libc::MAP_FAILED {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the mapping is page-aligned and holds `count` zeroed values of `T`, valid as
    // all-zero by the caller's promise; it stays mapped until `unmap_shared`, if ever.
    Ok(unsafe { std::slice::from_raw_parts(ptr as *const T, count) })
}

/// Unmaps what `shared_zeroed` mapped.
///
/// # Safety
/// `values` came from `shared_zeroed` and is not used afterwards (nor any copy of it).
pub(crate) unsafe fn unmap_shared<T>(values: &'static [T]) {
    // SAFETY: the caller's promise: our mapping, with its size, no longer referenced.
    unsafe {
        libc::munmap(
            values.as_ptr() as *mut libc::c_void,
            std::mem::size_of_val(values),
        );
    }
}
