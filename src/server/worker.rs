//! A worker process: its own interpreter, `--threads` threads over one event loop, and a
//! main thread that watches signals, heartbeats to the master and decides when to retire
//! (--max-requests, --max-rss, --timeout) or stop (SIGTERM/SIGINT; SIGQUIT or a second
//! SIGINT stops at once).
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use mio::Events;
use pyo3::prelude::*;

use super::Exit;
use super::context::{Context, MountedApp};
use super::control::{Message, Reporter};
use super::health::HealthProbes;
use super::hooks;
use super::preface::ProxyPolicy;
use super::serve::serve;
use super::signals::{self, SIGINT, SIGQUIT, SIGTERM, SIGUSR1};
use crate::config::Config;
use crate::http::forwarded::Proxies;
use crate::instrument::{activity, statsd};
use crate::net::event_loop::{EventLoop, LoopSettings};
use crate::net::stream::Listener;
use crate::route::{Mount, Router, Target};
use crate::wsgi::call::CallSettings;
use crate::wsgi::environ::{ServerTraits, template};
use crate::wsgi::interpreter;
use crate::wsgi::scripts::ScriptCache;

/// How long the loop may go without a poller before an idle thread takes it over.
const HANDOFF: Duration = Duration::from_millis(1);
/// How often the main thread looks at signals, limits and stuck calls.
const TICK: Duration = Duration::from_millis(50);
const HEARTBEAT_EVERY: Duration = Duration::from_secs(1);

/// Exit code of a worker whose application could not be loaded: the master stops.
pub const EXIT_BOOT_FAILED: i32 = 3;

/// The environment variable that tells the app its worker's slot (0..workers-1): a
/// replacement gets the slot of the worker it replaces (per-worker files, metrics dirs).
pub const WORKER_SLOT_VARIABLE: &str = "WSGIHOST_WORKER_SLOT";

/// What a worker gets from the master.
pub struct WorkerSetup {
    pub listeners: Vec<Listener>,
    pub reporter: Reporter,
    pub multiprocess: bool,
    /// With --preload: the interpreter and app the master loaded before forking.
    pub preloaded: Option<Preloaded>,
    /// With --metrics: this worker's slot in the shared counters.
    pub metrics_slot: Option<usize>,
    /// Where its threads record what they are doing (read by the master if it dies).
    pub scoreboard: activity::Scoreboard,
    /// With --certfile: what its HTTPS listeners serve.
    pub tls: Option<std::sync::Arc<rustls::ServerConfig>>,
    /// Its place among the workers (0..workers-1), which a replacement takes over.
    pub slot: usize,
}

/// The applications, imported (in the master with --preload, else in the worker).
pub struct Preloaded {
    /// One per `Config::app_mounts`, in that order.
    pub apps: Vec<Py<PyAny>>,
}

impl Preloaded {
    /// Starts Python (scripts folder, and for an APP the working directory, on sys.path)
    /// and imports the application.
    pub fn start(config: &Config) -> Result<Preloaded> {
        let cwd = std::env::current_dir()?;
        let mut sys_path: Vec<&Path> = vec![&cwd];
        sys_path.extend(config.pythonpath.iter().map(PathBuf::as_path));
        sys_path.push(&config.scripts);
        interpreter::start(&sys_path, config.venv.as_deref())?;
        let apps = Python::attach(|py| {
            config
                .app_mounts()
                .into_iter()
                .map(|(_, spec)| interpreter::load_app(py, &spec))
                .collect::<Result<Vec<_>>>()
        })?;
        Ok(Preloaded { apps })
    }
}

/// Runs a worker until it stops; returns how the process ends.
pub fn run(config: &Config, setup: WorkerSetup) -> Exit {
    // Before Python starts, so Python never installs its own SIGINT handler over ours.
    signals::catch(&[SIGINT, SIGTERM, SIGQUIT, SIGUSR1]);
    if let Some(name) = &config.name {
        super::proctitle::set(&format!("wsgihost: worker [{name}]"));
    }
    crate::logging::start_writer_thread();
    crate::logging::mark::listen();
    if let Some(slot) = setup.metrics_slot {
        crate::instrument::metrics::use_slot(slot, config.worker_threads());
    }
    statsd::start_sender();
    let result = serve_until_stopped(config, setup);
    statsd::flush();
    crate::logging::flush();
    match result {
        Ok(exit) => exit,
        Err(err) => {
            crate::log_info!("worker {}: {err:#}", std::process::id());
            crate::logging::flush();
            Exit::Code(EXIT_BOOT_FAILED)
        }
    }
}

/// What runs between the fork and the first request, in gunicorn's order: post_fork,
/// the switch to --user, the app's import (unless preloaded), post_worker_init.
fn boot(config: &Config, slot: usize, preloaded: Option<Preloaded>) -> Result<Vec<Py<PyAny>>> {
    if let Err(err) = interpreter::set_env(WORKER_SLOT_VARIABLE, &slot.to_string()) {
        anyhow::bail!("setting {WORKER_SLOT_VARIABLE}: {err}");
    }
    if hooks::worker_hook("post_fork").is_err() {
        anyhow::bail!("the post_fork hook raised (see above)");
    }
    super::privileges::drop_privileges(config)?;
    let apps = match preloaded {
        Some(preloaded) => preloaded.apps,
        None => Preloaded::start(config)?.apps,
    };
    if config.app_timeout().is_some() {
        super::hang::prepare();
    }
    if hooks::worker_hook("post_worker_init").is_err() {
        anyhow::bail!("the post_worker_init hook raised (see above)");
    }
    hooks::booted();
    Ok(apps)
}

/// Why the worker stops taking requests.
enum Ending {
    /// Graceful: SIGTERM or SIGINT (from the master when this worker's replacement is
    /// ready, or when the server stops).
    Stop,
    Now,
}

fn serve_until_stopped(config: &Config, setup: WorkerSetup) -> Result<Exit> {
    let apps = boot(config, setup.slot, setup.preloaded)?;
    let max_requests = match config.max_requests {
        0 => 0,
        n => n.saturating_add(jitter(config.max_requests_jitter)),
    };
    let context = Arc::new(build_context(
        config,
        setup.listeners,
        setup.multiprocess,
        max_requests,
        setup.tls,
        apps,
    )?);
    activity::use_scoreboard(setup.scoreboard);
    let running = start_threads(&context, config.worker_threads())?;
    let monitor_context = context.clone();
    std::thread::Builder::new()
        .name("wsgihost-monitor".into())
        .spawn(move || {
            monitor_context
                .event_loop
                .monitor(activity::longest_request)
        })?;
    setup.reporter.send(Message::Ready);

    let pid = std::process::id();
    let mut last_heartbeat = Instant::now();
    let mut stuck_fds = Vec::new();
    let mut replacement_asked = false;
    let ending = loop {
        // Woken early when --max-requests is reached.
        std::thread::park_timeout(TICK);
        let received = signals::take();
        if received.contains(&SIGUSR1) {
            crate::logging::reopen();
        }
        if received.contains(&SIGQUIT) || received.contains(&SIGINT) {
            let _ = hooks::worker_hook("worker_int");
        }
        if received.contains(&SIGQUIT) {
            break Ending::Now;
        }
        if received.contains(&SIGINT) || received.contains(&SIGTERM) {
            break Ending::Stop;
        }
        if last_heartbeat.elapsed() >= HEARTBEAT_EVERY {
            setup.reporter.send(Message::Heartbeat);
            last_heartbeat = Instant::now();
        }
        let reason = retire_reason(config, &context, max_requests, &mut stuck_fds);
        if let Some(reason) = reason
            && !replacement_asked
        {
            // Recycling: this worker serves on until the master has a replacement ready
            // (then SIGTERM), so no gap opens, and none at all if the new one cannot start.
            crate::log_info!("worker {pid}: retiring ({reason}); serving until replaced");
            setup.reporter.send(Message::Retiring);
            replacement_asked = true;
        }
    };
    match &ending {
        Ending::Now => {
            crate::log_info!("worker {pid}: stopping now");
            let _ = hooks::worker_hook("worker_exit");
            return Ok(Exit::AtOnce(1));
        }
        Ending::Stop => crate::log_info!("worker {pid}: finishing in-flight requests"),
    }
    context.event_loop.stop();
    let waited = wait_for_threads(&running, config, &mut stuck_fds);
    if waited == Waited::Interrupted {
        return Ok(Exit::AtOnce(1));
    }
    let _ = hooks::worker_hook("worker_exit");
    if waited == Waited::TimedOut {
        crate::log_error!("worker {pid}: requests still running after --graceful-timeout; exiting");
        return Ok(Exit::AtOnce(1));
    }
    if !stuck_fds.is_empty() {
        // A stuck app call's thread may hold the GIL.
        return Ok(Exit::AtOnce(0));
    }
    // Python objects in the context are released with the GIL held, then Python ends.
    Python::attach(|_| drop(context));
    interpreter::finalize();
    Ok(Exit::Code(0))
}

/// App calls stuck past --timeout that were not seen before: their stacks are reported
/// (then worker_abort runs), their sockets shut down and added to `stuck_fds`. Returns
/// how many there were.
fn end_stuck_calls(config: &Config, stuck_fds: &mut Vec<i32>) -> usize {
    let Some(limit) = config.app_timeout() else {
        return 0;
    };
    let stuck: Vec<i32> = activity::stuck(limit)
        .into_iter()
        .filter(|fd| !stuck_fds.contains(fd))
        .collect();
    if stuck.is_empty() {
        return 0;
    }
    super::hang::report(limit);
    for &fd in &stuck {
        // SAFETY: shutting down (not closing) a socket a stuck thread still owns.
        unsafe { libc::shutdown(fd, libc::SHUT_RDWR) };
    }
    stuck_fds.extend(&stuck);
    stuck.len()
}

/// Why this worker should be replaced, if it should (stuck calls are ended on the way).
fn retire_reason(
    config: &Config,
    context: &Context,
    max_requests: u64,
    stuck_fds: &mut Vec<i32>,
) -> Option<String> {
    let stuck = end_stuck_calls(config, stuck_fds);
    if stuck > 0 {
        return Some(format!(
            "{stuck} app call(s) made no progress for over --timeout {}s; closing those connections",
            config.timeout
        ));
    }
    let served = context.requests.load(Ordering::Relaxed);
    if config.max_requests > 0 && served >= max_requests {
        return Some(format!(
            "served {served} requests, --max-requests {}",
            config.max_requests
        ));
    }
    if config.max_rss > 0
        && let Some(rss) = resident_mib()
        && rss > config.max_rss
    {
        return Some(format!(
            "RSS {rss} MiB is over --max-rss {}",
            config.max_rss
        ));
    }
    None
}

/// Resident memory of this process, from /proc/self/status.
fn resident_mib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}

/// A pseudo-random 0..=max from the clock and pid (good enough to spread restarts).
fn jitter(max: u64) -> u64 {
    if max == 0 {
        return 0;
    }
    let seed = Instant::now().elapsed().as_nanos() as u64
        ^ (std::process::id() as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mixed = seed
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
    mixed % (max + 1)
}

type Running = Arc<(Mutex<usize>, Condvar)>;

fn start_threads(context: &Arc<Context>, threads: usize) -> Result<Running> {
    let running: Running = Arc::new((Mutex::new(threads), Condvar::new()));
    for index in 0..threads {
        let (context, running) = (context.clone(), running.clone());
        std::thread::Builder::new()
            .name(format!("wsgihost-{index}"))
            .spawn(move || {
                activity::register_thread(index);
                // Attached once for the thread's life; the GIL is only held while Python runs.
                Python::attach(|py| {
                    interpreter::adopt_thread_hooks(py);
                    py.detach(|| thread_main(&context))
                });
                let (count, done) = &*running;
                *count.lock().unwrap_or_else(|p| p.into_inner()) -= 1;
                done.notify_all();
            })?;
    }
    Ok(running)
}

/// Waits until only the threads stuck in app calls still run (they are not waited for),
/// up to --graceful-timeout; calls that get stuck meanwhile are reported and ended as
/// while serving. A second SIGINT or a SIGQUIT meanwhile ends the wait at once.
fn wait_for_threads(running: &Running, config: &Config, stuck_fds: &mut Vec<i32>) -> Waited {
    let deadline = Instant::now() + config.graceful_timeout();
    let (count, done) = &**running;
    let mut guard = count.lock().unwrap_or_else(|p| p.into_inner());
    while *guard > stuck_fds.len() {
        let now = Instant::now();
        if now >= deadline {
            return Waited::TimedOut;
        }
        let signals = signals::take();
        if signals.contains(&SIGINT) || signals.contains(&SIGQUIT) {
            crate::log_info!("worker {}: second signal, exiting now", std::process::id());
            return Waited::Interrupted;
        }
        guard = done
            .wait_timeout(guard, TICK.min(deadline - now))
            .unwrap_or_else(|p| p.into_inner())
            .0;
        drop(guard);
        end_stuck_calls(config, stuck_fds);
        guard = count.lock().unwrap_or_else(|p| p.into_inner());
    }
    Waited::Finished
}

/// How waiting for the request threads of a stopping worker ended.
#[derive(Debug, PartialEq, Eq)]
enum Waited {
    /// Only threads stuck in app calls (if any) still run.
    Finished,
    /// --graceful-timeout passed first.
    TimedOut,
    /// A second SIGINT, or a SIGQUIT.
    Interrupted,
}

fn thread_main(context: &Context) {
    let mut events = Events::with_capacity(256);
    while let Some(work) = context.event_loop.next_work(&mut events) {
        let token = work.token;
        // A bug in the server must cost one connection, never the thread.
        if catch_unwind(AssertUnwindSafe(|| serve(context, work))).is_err() {
            crate::log_error!("internal error while serving a connection; it was closed");
            context.event_loop.close(token);
        }
    }
}

fn build_context(
    config: &Config,
    listeners: Vec<Listener>,
    multiprocess: bool,
    retire_after: u64,
    tls: Option<std::sync::Arc<rustls::ServerConfig>>,
    loaded: Vec<Py<PyAny>>,
) -> Result<Context> {
    let mut mounts = Vec::new();
    let mut apps = Vec::new();
    let environ_template = Python::attach(|py| {
        let traits = ServerTraits {
            multithread: config.threads > 1,
            multiprocess,
        };
        template(py, &traits)
    })?;
    for ((prefix, spec), callable) in config.app_mounts().into_iter().zip(loaded) {
        mounts.push(Mount {
            prefix: prefix.into_bytes(),
            target: Target::App(apps.len()),
        });
        apps.push(MountedApp {
            name: spec,
            callable,
        });
    }
    for (prefix, dir) in config.static_rows() {
        let root = dir.canonicalize().unwrap_or_else(|_| {
            crate::log_warn!("static folder {} does not exist", dir.display());
            std::path::absolute(&dir).unwrap_or(dir)
        });
        mounts.push(Mount {
            prefix: prefix.into_bytes(),
            target: Target::Static(root),
        });
    }
    if config.serves_scripts() {
        mounts.push(Mount {
            prefix: Vec::new(),
            target: Target::Scripts,
        });
    }
    let settings = LoopSettings {
        keep_alive: config.keep_alive(),
        header_timeout: config.header_timeout(),
        max_connections: config.max_connections,
        handoff: HANDOFF,
        share_accepts: multiprocess,
        threads: config.worker_threads(),
        write_timeout: config.io_timeout(),
        tls,
    };
    Ok(Context {
        event_loop: EventLoop::new(listeners, settings)?,
        router: Router::new(mounts),
        scripts: ScriptCache::new(&config.scripts),
        apps,
        environ_template,
        limits: config.head_limits(),
        call: CallSettings {
            io_timeout: config.io_timeout(),
            max_body: config.max_body,
            debug: config.debug,
            proxies: Proxies {
                trusted: config.forwarded_allow_ips.clone(),
                secure_headers: config.secure_scheme_headers.clone(),
            },
            around: hooks::request_hooks(),
        },
        header_timeout: config.header_timeout(),
        keep_alive: config.keep_alive > 0.0,
        slow_routes: Default::default(),
        health: (config.health_path.as_deref())
            .map(|prefix| HealthProbes::new(prefix, config.health_access_log)),
        proxy_policy: config.proxy_protocol.0.map(|versions| ProxyPolicy {
            versions,
            allowed: config.proxy_allow_from.clone(),
        }),
        requests: Default::default(),
        retire_after,
        main_thread: std::thread::current(),
    })
}
