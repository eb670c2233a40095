//! The master process: binds the listeners, forks the workers and supervises them. It
//! runs no threads, and no Python unless --preload (or a gunicorn configuration's server
//! hooks) brought the interpreter in; forking then goes through `interpreter::fork`, which
//! runs Python's own before/after-fork steps. Signals (as gunicorn):
//! TERM/INT graceful stop (a second INT, or QUIT: at once), HUP rolling reload,
//! TTIN/TTOU one worker more/less. Crashed workers are replaced; workers that cannot start
//! stop the master with a clear message instead of a restart loop.
use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use pyo3::prelude::*;

use super::Exit;
use super::control::{self, Message, Reporter};
use super::exporter::Exporter;
use super::health::{self, Readiness};
use super::hooks;
use super::listeners::{
    Bound, TcpOptions, accept_queue, bind_all, refuse_new_connections, remove_socket_files,
};
use super::notify::Notifier;
use super::pidfile::PidFile;
use super::reload::SourceWatcher;
use super::signals::{self, SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGTTIN, SIGTTOU, SIGUSR1, SIGUSR2};
use super::upgrade::{self, Progress, Upgrade};
use super::worker::{self, EXIT_BOOT_FAILED, Preloaded, WorkerSetup};
use crate::config::Config;
use crate::instrument::activity::Scoreboard;
use crate::instrument::{metrics, statsd};
use crate::net::stream::Listener;
use crate::wsgi::interpreter;
use std::sync::atomic::Ordering::Relaxed;

const MASTER_SIGNALS: [i32; 8] = [
    SIGINT, SIGTERM, SIGHUP, SIGTTIN, SIGTTOU, SIGQUIT, SIGUSR1, SIGUSR2,
];
const TICK: Duration = Duration::from_millis(50);
/// With no worker serving, workers that die before they are ready this many times in a row
/// stop the master (a worker that cannot import the app stops it at once).
const MAX_BOOT_FAILURES: u32 = 5;
/// Waits before starting a worker again after one could not start: 0.5 s, doubling, at most
/// 30 s (0.5, 1, 2, 4, 8, 16, 30, 30, ...). Workers still serving meanwhile keep serving.
const FIRST_RETRY: Duration = Duration::from_millis(500);
const LONGEST_RETRY: Duration = Duration::from_secs(30);
/// A ready worker silent for this long (no heartbeat) is wedged beyond --timeout's reach.
const SILENCE_LIMIT: Duration = Duration::from_secs(30);
/// How often the master sends its statsd gauges.
const GAUGES_EVERY: Duration = Duration::from_secs(1);

struct WorkerProcess {
    pid: i32,
    pipe: File,
    generation: u64,
    /// Its place among the workers, 0..workers-1: a replacement takes the one it replaces.
    slot: usize,
    /// The object server hooks know it by (with a Python configuration file).
    hook: Option<Py<PyAny>>,
    /// Its slot in the shared metrics region (with --metrics).
    metrics_slot: Option<usize>,
    ready: bool,
    /// What its threads are doing, in memory shared with it.
    scoreboard: Scoreboard,
    /// It asked to be replaced (--max-requests, --max-rss, --timeout): it keeps serving
    /// until its replacement is ready.
    replace: bool,
    /// Told to stop (or killed): it finishes its requests and exits.
    leaving: bool,
    last_heard: Instant,
}

struct Master<'c> {
    config: &'c Config,
    /// With --preload: Python and the app, loaded once here and inherited by each fork.
    preloaded: Option<Preloaded>,
    bound: Bound,
    workers: Vec<WorkerProcess>,
    target: usize,
    generation: u64,
    /// Workers in a row that died before they were ready, and when to try again.
    boot_failures: u32,
    retry_at: Instant,
    stopping: Option<Instant>,
    /// SIGTERM with --shutdown-delay: when the graceful stop begins (readiness probes
    /// answer 503 meanwhile, and the workers serve on).
    shutdown_at: Option<Instant>,
    /// --reload: watches the app's sources; a change starts a rolling reload.
    watcher: Option<SourceWatcher>,
    /// --metrics: the exporter and the metrics slots not in use.
    metrics: Option<Exporter>,
    free_slots: Vec<usize>,
    spawned: usize,
    /// $NOTIFY_SOCKET (systemd Type=notify, the pytest plugin), and whether the workers
    /// reported as serving now are all ready (false while starting and reloading).
    notifier: Option<Notifier>,
    announced_ready: bool,
    /// With --certfile: the certificate and key new workers serve (re-read on SIGHUP).
    tls: Option<Arc<rustls::ServerConfig>>,
    /// 1 once a master-side hook raised (the server then stops).
    exit_code: i32,
    /// A second SIGINT, or SIGQUIT: the workers were killed; the master leaves now.
    exit_now: bool,
    /// When the statsd gauges were last sent.
    gauges_sent: Instant,
    /// SIGUSR2: the new master while it starts.
    upgrade: Option<Upgrade>,
    /// --pid: written at start (as FILE.2 by a master an upgrade started, renamed to FILE
    /// once the old master has exited).
    pidfile: Option<PidFile>,
    /// Started by an upgrade: the old master's own $NOTIFY_SOCKET, reported to once it
    /// has gone (our $NOTIFY_SOCKET is its upgrade channel until then).
    later_notifier: Option<String>,
}

/// What supervising ends as: the master done, or, in a process just forked, a worker.
enum Role {
    Master,
    Worker(WorkerSetup),
}

/// Runs the server; returns the exit code of this process: the master's, or (in each
/// forked worker, which returns through here too) the worker's.
pub fn run(config: &Config) -> Result<Exit> {
    signals::catch(&MASTER_SIGNALS);
    crate::logging::mark::catch();
    if let Some(venv) = &config.venv {
        // Checked here too, so a version mismatch is one clear line before any fork.
        interpreter::venv_python(venv)?;
    }
    let tls = match config.tls_files() {
        Some(files) => match crate::net::tls::load(&files) {
            Ok(tls) => Some(tls),
            Err(message) => return Err(crate::config::UsageError(message).into()),
        },
        None => None,
    };
    let tcp = TcpOptions {
        backlog: config.backlog as i32,
        reuse_port: config.reuse_port,
        tls: tls.is_some(),
    };
    if let Some(addr) = &config.statsd_host {
        statsd::init(addr, &config.statsd_prefix, &config.dogstatsd_tags)?;
        metrics::create_region()?;
    }
    if config.health_path.is_some() {
        super::health::create_board()?;
    }
    hooks::install(config)?;
    super::python_logging::apply(config)?;
    gunicorn_hook(
        hooks::workers_changed(config.workers as usize, None),
        "nworkers_changed",
    )?;
    let preloaded = match config.preload {
        true => Some(Preloaded::start(config)?),
        false => None,
    };
    gunicorn_hook(hooks::server_hook("on_starting"), "on_starting")?;
    let bound = bind_all(&config.bind, config.unix_mode, tcp)?;
    let pidfile = match (&config.pidfile, upgrade::is_upgrade()) {
        (Some(path), true) => Some(PidFile::create(&upgrade::pending_pid_path(path))?),
        (Some(path), false) => Some(PidFile::create(path)?),
        (None, _) => None,
    };
    super::privileges::hand_over(bound.socket_files(), config)?;
    if let Some(name) = &config.name {
        super::proctitle::set(&format!("wsgihost: master [{name}]"));
    }
    let shown: Vec<String> = bound.listeners.iter().map(Listener::describe).collect();
    let workers = match config.workers {
        1 => "1 worker".to_string(),
        n => format!("{n} workers"),
    };
    let read = config.origin.file.as_ref().map_or(String::new(), |file| {
        format!("; configuration {}", file.display())
    });
    crate::log_info!(
        "master {} listening on {} ({workers} x {} threads, {}); mounts: {}{read}",
        std::process::id(),
        shown.join(", "),
        config.threads,
        interpreter::describe(config.venv.as_deref()),
        config.describe_mounts(),
    );
    gunicorn_hook(hooks::server_hook("when_ready"), "when_ready")?;
    let mut master = Master {
        config,
        preloaded,
        bound,
        workers: Vec::new(),
        target: config.workers as usize,
        generation: 0,
        boot_failures: 0,
        retry_at: Instant::now(),
        stopping: None,
        shutdown_at: None,
        watcher: config
            .reload
            .then(|| SourceWatcher::new(watched_dirs(config), config.reload_extra_files.clone())),
        metrics: config.metrics.map(Exporter::bind).transpose()?,
        free_slots: (0..metrics::SLOTS).rev().collect(),
        spawned: 0,
        notifier: Notifier::from_environment(),
        announced_ready: false,
        tls,
        exit_code: 0,
        exit_now: false,
        gauges_sent: Instant::now(),
        upgrade: None,
        pidfile,
        later_notifier: upgrade::take_later_notify_socket(),
    };
    let result = master.supervise();
    if let Ok(Role::Worker(setup)) = result {
        // A worker just forked: what the master held is not its own (dropping it closes
        // the other workers' pipes and the metrics listener in this process).
        std::mem::forget(master.pidfile.take());
        drop(master);
        return Ok(worker::run(config, setup));
    }
    remove_socket_files(&master.bound);
    if let Some(preloaded) = master.preloaded.take() {
        Python::attach(|_| drop(preloaded.apps));
    }
    let exited = hooks::server_hook("on_exit");
    let code = master.exit_code;
    drop(master);
    interpreter::finalize();
    match (result, exited) {
        (Ok(_), Ok(())) => Ok(Exit::Code(code)),
        (Ok(_), Err(_)) => Ok(Exit::Code(1)),
        (Err(err), _) => Err(err),
    }
}

/// A master-side hook that raised stops the server, as gunicorn stops.
fn gunicorn_hook(result: hooks::HookResult, name: &str) -> Result<()> {
    result.map_err(|_| {
        anyhow::anyhow!("the {name} hook raised (see above); stopping, as gunicorn does")
    })
}

impl Master<'_> {
    fn supervise(&mut self) -> Result<Role> {
        loop {
            self.take_over_from_old_master();
            for signal in signals::take() {
                self.on_signal(signal);
            }
            if self.exit_now {
                return Ok(Role::Master);
            }
            self.read_messages();
            self.reap()?;
            if let Some(exporter) = &self.metrics {
                exporter.serve_pending(self.workers.len(), &self.bound.listeners);
            }
            self.send_gauges();
            if self.stopping.is_none() && self.shutdown_at.is_some_and(|at| Instant::now() >= at) {
                crate::log_info!("the shutdown delay is over, stopping gracefully");
                self.stop_gracefully();
            }
            if let Some(deadline) = self.stopping {
                if self.workers.is_empty() {
                    crate::log_info!("master {}: all workers stopped", std::process::id());
                    return Ok(Role::Master);
                }
                if Instant::now() >= deadline {
                    crate::log_error!(
                        "workers still running after --graceful-timeout; killing them"
                    );
                    self.signal_all(libc::SIGKILL);
                }
            } else if !self.follow_upgrade() {
                self.reload_if_sources_changed();
                self.kill_silent_workers();
                self.finish_replacements();
                // Readiness first: a probe sent on READY=1 must find it.
                self.publish_readiness();
                self.announce_readiness();
                if let Some(setup) = self.spawn_missing()? {
                    return Ok(Role::Worker(setup));
                }
            }
            std::thread::sleep(TICK);
        }
    }

    fn on_signal(&mut self, signal: i32) {
        match signal {
            SIGTERM if self.stopping.is_none() && self.shutdown_at.is_none() => {
                let delay = self.config.shutdown_delay();
                if delay.is_zero() {
                    crate::log_info!("SIGTERM received, stopping gracefully");
                    return self.stop_gracefully();
                }
                crate::log_info!(
                    "SIGTERM received: readiness probes answer 503; serving {delay:?} more (--shutdown-delay), then stopping gracefully"
                );
                self.shutdown_at = Some(Instant::now() + delay);
                health::publish(Readiness::Draining);
                if let Some(notifier) = &self.notifier {
                    notifier.stopping();
                }
            }
            SIGINT | SIGTERM if self.stopping.is_none() => {
                crate::log_info!("{} received, stopping gracefully", signals::name(signal));
                self.stop_gracefully();
            }
            SIGINT | SIGQUIT => {
                crate::log_info!("{} received, stopping now", signals::name(signal));
                self.signal_all(libc::SIGKILL);
                self.exit_code = 1;
                self.exit_now = true;
            }
            SIGHUP | SIGTTIN | SIGTTOU if self.shutdown_at.is_some() => crate::log_info!(
                "{} ignored: the server is stopping (--shutdown-delay)",
                signals::name(signal)
            ),
            SIGHUP if self.stopping.is_none() => {
                if let Some(files) = self.config.tls_files() {
                    match crate::net::tls::load(&files) {
                        Ok(tls) => self.tls = Some(tls),
                        Err(message) => {
                            crate::log_error!(
                                "SIGHUP: {message}; the workers keep serving the certificate they have"
                            );
                            return;
                        }
                    }
                }
                if self.hook_failed(hooks::server_hook("on_reload"), "on_reload") {
                    return;
                }
                self.new_generation();
                crate::log_info!(
                    "SIGHUP received, starting {} new workers before stopping the old ones",
                    self.target
                );
            }
            SIGUSR1 => {
                crate::log_info!("SIGUSR1 received, opening the log files again");
                crate::logging::reopen();
                for worker in &self.workers {
                    // SAFETY: signalling our own child.
                    unsafe { libc::kill(worker.pid, SIGUSR1) };
                }
            }
            SIGUSR2 => self.start_upgrade(),
            SIGTTIN if self.stopping.is_none() => {
                self.target += 1;
                crate::log_info!("SIGTTIN: {} workers", self.target);
                let changed = hooks::workers_changed(self.target, Some(self.target - 1));
                self.hook_failed(changed, "nworkers_changed");
            }
            SIGTTOU if self.target > 1 && self.stopping.is_none() => {
                self.target -= 1;
                crate::log_info!("SIGTTOU: {} workers", self.target);
                if let Some(worker) = self.workers.iter_mut().rev().find(|w| !w.leaving) {
                    stop_worker(worker);
                }
                let changed = hooks::workers_changed(self.target, Some(self.target + 1));
                self.hook_failed(changed, "nworkers_changed");
            }
            _ => {}
        }
    }

    /// With --statsd-host, once a second: the workers, their threads busy and in all, and
    /// the listeners' accept queues (gunicorn.backlog with --enable-backlog-metric).
    fn send_gauges(&mut self) {
        if !statsd::enabled() || self.gauges_sent.elapsed() < GAUGES_EVERY {
            return;
        }
        self.gauges_sent = Instant::now();
        statsd::gauge("gunicorn.workers", self.workers.len() as u64);
        let live = metrics::slots().iter().filter(|s| s.pid.load(Relaxed) != 0);
        let (busy, threads) = live.fold((0, 0), |(busy, threads), stats| {
            (
                busy + stats.in_flight(),
                threads + stats.threads.load(Relaxed),
            )
        });
        statsd::gauge("wsgihost.busy_threads", busy);
        statsd::gauge("wsgihost.threads", threads);
        let waiting: u64 = self
            .bound
            .listeners
            .iter()
            .filter_map(accept_queue)
            .map(|(waiting, _)| u64::from(waiting))
            .sum();
        statsd::gauge("wsgihost.listen_queue", waiting);
        if self.config.enable_backlog_metric {
            statsd::histogram("gunicorn.backlog", waiting);
        }
        statsd::flush();
    }

    /// The graceful stop of SIGTERM: new connections refused, workers finish what they
    /// have, the master exits once they have.
    fn stop_gracefully(&mut self) {
        health::publish(Readiness::Draining);
        self.stopping =
            Some(Instant::now() + self.config.graceful_timeout() + Duration::from_secs(5));
        refuse_new_connections(&self.bound);
        if let Some(notifier) = self
            .notifier
            .as_ref()
            .filter(|_| self.shutdown_at.is_none())
        {
            notifier.stopping();
        }
        self.signal_all(SIGTERM);
        // The workers take what is queued, then close their copies: the sockets close.
        self.bound.listeners.clear();
    }

    /// A master-side hook that raised stops the server (gracefully, exit code 1), as
    /// gunicorn stops. True when it raised.
    fn hook_failed(&mut self, result: hooks::HookResult, name: &str) -> bool {
        if result.is_ok() {
            return false;
        }
        crate::log_error!("the {name} hook raised (see above); stopping, as gunicorn does");
        self.exit_code = 1;
        if self.stopping.is_none() {
            self.stop_gracefully();
        }
        true
    }

    fn read_messages(&mut self) {
        for worker in &mut self.workers {
            let (messages, _) = control::drain(&mut worker.pipe);
            for message in messages {
                worker.last_heard = Instant::now();
                match message {
                    Message::Ready => {
                        worker.ready = true;
                        self.boot_failures = 0;
                    }
                    Message::Retiring => worker.replace = true,
                    Message::Heartbeat => {}
                }
            }
        }
    }

    /// Collects exited workers and says how each ended.
    fn reap(&mut self) -> Result<()> {
        loop {
            let mut status = 0;
            // SAFETY: non-blocking wait for any child.
            let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
            if pid <= 0 {
                return Ok(());
            }
            let Some(index) = self.workers.iter().position(|w| w.pid == pid) else {
                if self.upgrade.as_ref().is_some_and(|u| u.child == pid) {
                    self.upgrade = None;
                    crate::log_error!(
                        "the new master {pid} exited before it was ready ({}); this master serves on",
                        exit_cause(status)
                    );
                }
                continue;
            };
            let worker = self.workers.remove(index);
            if let Some(slot) = worker.metrics_slot {
                match &self.metrics {
                    Some(exporter) => exporter.retire_slot(slot),
                    None => metrics::clear_slot(slot),
                }
                self.free_slots.push(slot);
            }
            let cause = exit_cause(status);
            if let Some(hook) = &worker.hook {
                let exited = hooks::child_exit(hook, pid);
                self.hook_failed(exited, "child_exit");
            }
            let expected = worker.leaving || self.stopping.is_some();
            if expected {
                crate::log_info!("worker {pid} stopped ({cause})");
            } else if worker.ready {
                crate::log_error!("worker {pid} died ({cause}); starting a replacement");
            }
            if !expected || libc::WIFSIGNALED(status) {
                // Their access-log lines were never written: name them here.
                for request in worker.scoreboard.requests_in_progress() {
                    crate::log_error!("worker {pid} was answering {request} when it died");
                }
            }
            if expected || worker.ready {
                continue;
            }
            self.boot_failed(
                pid,
                &cause,
                libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == EXIT_BOOT_FAILED,
            )?;
        }
    }

    /// A worker died before it was ready. While other workers serve, they go on and the
    /// start is retried with growing waits (the code on disk is read again each time, so a
    /// fix is picked up); with none serving, the master gives up.
    fn boot_failed(&mut self, pid: i32, cause: &str, cannot_import: bool) -> Result<()> {
        if Instant::now() < self.retry_at {
            // A sibling started in the same attempt failed first: the wait is set.
            return Ok(());
        }
        self.boot_failures += 1;
        let serving = self
            .workers
            .iter()
            .filter(|w| w.ready && !w.leaving)
            .count();
        if serving == 0 {
            if cannot_import {
                self.shutdown_after_boot_failure();
                bail!("the worker could not load the application (see the error above)");
            }
            if self.boot_failures >= MAX_BOOT_FAILURES {
                self.shutdown_after_boot_failure();
                bail!("workers died {MAX_BOOT_FAILURES} times in a row while starting; giving up");
            }
        }
        let wait = FIRST_RETRY
            .saturating_mul(1 << (self.boot_failures - 1).min(16))
            .min(LONGEST_RETRY);
        self.retry_at = Instant::now() + wait;
        let what = match cannot_import {
            true => "the code does not load (see the error above)".to_string(),
            false => format!("it died while starting ({cause})"),
        };
        crate::log_error!(
            "worker {pid} could not start: {what}; {serving} worker(s) keep serving; trying again in {wait:?} (attempt {})",
            self.boot_failures + 1
        );
        Ok(())
    }

    fn shutdown_after_boot_failure(&mut self) {
        self.signal_all(SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        while !self.workers.is_empty() && Instant::now() < deadline {
            std::thread::sleep(TICK);
            let _ = self.reap_quietly();
        }
        self.signal_all(libc::SIGKILL);
    }

    fn reap_quietly(&mut self) -> Option<()> {
        let mut status = 0;
        // SAFETY: a non-blocking wait for any child, writing into a local.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        (pid > 0).then(|| self.workers.retain(|w| w.pid != pid))
    }

    /// Stops workers that are to be replaced (an older generation after SIGHUP or a source
    /// change, or asking to be recycled) as their replacements become ready, one for one, so
    /// the number serving never drops below the target.
    fn finish_replacements(&mut self) {
        let current = self.generation;
        let fresh = |w: &WorkerProcess| w.generation == current && !w.replace;
        let ready = self
            .workers
            .iter()
            .filter(|w| fresh(w) && w.ready && !w.leaving)
            .count();
        let mut replaceable: Vec<&mut WorkerProcess> = self
            .workers
            .iter_mut()
            .filter(|w| !w.leaving && !fresh(w))
            .collect();
        let surplus = (ready + replaceable.len()).saturating_sub(self.target);
        // Those not serving yet go first, then the oldest.
        replaceable.sort_by_key(|w| (w.ready, w.generation));
        for worker in replaceable.into_iter().take(surplus) {
            stop_worker(worker);
        }
    }

    /// READY=1 (sd_notify) once the target number of current workers serve and none wait
    /// to be replaced: at start, and at the end of each rolling reload.
    fn announce_readiness(&mut self) {
        let Some(notifier) = &self.notifier else {
            return;
        };
        let current = self.generation;
        let serving = self
            .workers
            .iter()
            .filter(|w| w.generation == current && w.ready && !w.leaving && !w.replace)
            .count();
        let replacing = self
            .workers
            .iter()
            .any(|w| !w.leaving && w.generation != current);
        let ready = serving >= self.target && !replacing;
        if ready && !self.announced_ready {
            notifier.ready();
        }
        self.announced_ready = ready || (self.announced_ready && serving > 0);
    }

    /// In a master an upgrade started, once the old master is gone: the pid file takes its
    /// name, and the old master's service manager (systemd) hears from us from now on.
    /// Checked before signals, so a SIGHUP right after the hand-over is reported there.
    fn take_over_from_old_master(&mut self) {
        if !upgrade::is_upgrade() || upgrade::old_master_running() {
            return;
        }
        if let (Some(pidfile), Some(path)) = (&mut self.pidfile, &self.config.pidfile) {
            pidfile.rename(path);
        }
        if let Some(target) = self.later_notifier.take() {
            self.notifier = Notifier::to(&target);
        }
    }

    /// SIGUSR2: starts the new master (see `upgrade`), unless one is starting already or
    /// this server is stopping.
    fn start_upgrade(&mut self) {
        if self.stopping.is_some() || self.shutdown_at.is_some() {
            return crate::log_info!("SIGUSR2 ignored: the server is stopping");
        }
        if let Some(upgrade) = &self.upgrade {
            return crate::log_info!(
                "SIGUSR2 ignored: an upgrade is under way (new master {})",
                upgrade.child
            );
        }
        if hooks::server_hook("pre_exec").is_err() {
            return crate::log_error!("the pre_exec hook raised (see above); no upgrade");
        }
        let notify_socket = self.notifier.as_ref().map(|n| n.target.as_str());
        match Upgrade::start(self.bound.owned_listeners(), notify_socket) {
            Ok(upgrade) => {
                crate::log_info!(
                    "SIGUSR2 received: started a new master ({}); this one serves until it is ready",
                    upgrade.child
                );
                self.upgrade = Some(upgrade);
            }
            Err(err) => {
                crate::log_error!("SIGUSR2: cannot start a new master: {err}; this one serves on")
            }
        }
    }

    /// An upgrade under way: once the new master is ready this one hands over (its workers
    /// finish and it exits, the sockets staying open in the new one); one not ready in time
    /// is stopped. True once this master has handed over.
    fn follow_upgrade(&mut self) -> bool {
        let Some(upgrade) = &self.upgrade else {
            return false;
        };
        match upgrade.progress() {
            Progress::Waiting => false,
            Progress::TimedOut => {
                crate::log_error!(
                    "the new master {} was not ready in time; sent it SIGQUIT; this master serves on",
                    upgrade.child
                );
                self.upgrade = None;
                false
            }
            Progress::Ready => {
                crate::log_info!(
                    "the new master {} is ready; this master stops its workers and exits",
                    upgrade.child
                );
                if let Some(notifier) = &self.notifier {
                    notifier.main_pid(upgrade.child);
                }
                health::publish(Readiness::Draining);
                self.stopping =
                    Some(Instant::now() + self.config.graceful_timeout() + Duration::from_secs(5));
                self.signal_all(SIGTERM);
                // The new master has the sockets: ours close, theirs stay open.
                self.bound.listeners.clear();
                self.upgrade = None;
                true
            }
        }
    }

    /// What readiness probes answer (--health-path): ready while the target number of
    /// workers serve; starting while fewer do (at start, or replacing one that died).
    fn publish_readiness(&self) {
        if self.shutdown_at.is_some() {
            return;
        }
        let serving = self
            .workers
            .iter()
            .filter(|w| w.ready && !w.leaving)
            .count();
        health::publish(match serving >= self.target {
            true => Readiness::Ready,
            false => Readiness::Starting,
        });
    }

    fn kill_silent_workers(&mut self) {
        for worker in &mut self.workers {
            if worker.ready && worker.last_heard.elapsed() > SILENCE_LIMIT {
                crate::log_error!(
                    "worker {} sent no heartbeat for {SILENCE_LIMIT:?}; killing it",
                    worker.pid
                );
                // SAFETY: signalling our own child.
                unsafe { libc::kill(worker.pid, libc::SIGKILL) };
                worker.leaving = true;
            }
        }
    }

    fn reload_if_sources_changed(&mut self) {
        let Some(path) = self.watcher.as_mut().and_then(SourceWatcher::changed) else {
            return;
        };
        self.new_generation();
        crate::log_info!("{} changed; reloading the workers", path.display());
    }

    /// New workers (with the code on disk now) are to replace the running ones; a start that
    /// failed before is tried again at once.
    fn new_generation(&mut self) {
        if let Some(notifier) = &self.notifier {
            notifier.reloading();
        }
        self.announced_ready = false;
        self.generation += 1;
        self.boot_failures = 0;
        self.retry_at = Instant::now();
    }

    /// Starts the workers missing from the target. Some(setup) in a worker just forked.
    fn spawn_missing(&mut self) -> Result<Option<WorkerSetup>> {
        if Instant::now() < self.retry_at {
            return Ok(None);
        }
        let current = self.generation;
        let starting_or_serving = self
            .workers
            .iter()
            .filter(|w| !w.leaving && !w.replace && w.generation == current)
            .count();
        for _ in starting_or_serving..self.target {
            if let Some(setup) = self.spawn()? {
                return Ok(Some(setup));
            }
        }
        Ok(None)
    }

    /// The lowest slot no current worker holds: a replacement (of a recycled, reloaded or
    /// dead worker) takes the slot of the one it replaces.
    fn free_slot(&self) -> usize {
        let held = |slot: usize| {
            self.workers.iter().any(|w| {
                w.slot == slot && !w.leaving && !w.replace && w.generation == self.generation
            })
        };
        (0..).find(|slot| !held(*slot)).unwrap_or(0)
    }

    /// Forks a worker. Some(setup) in the new worker, None in the master.
    fn spawn(&mut self) -> Result<Option<WorkerSetup>> {
        let (read_end, write_end) = control::pipe()?;
        let scoreboard = Scoreboard::map(self.config.worker_threads())?;
        let metrics_slot = match metrics::region_exists() {
            true => self.free_slots.pop(),
            false => None,
        };
        self.spawned += 1;
        if let Some(exporter) = &mut self.metrics
            && self.spawned > self.config.workers as usize
        {
            exporter.restarts += 1;
        }
        let slot = self.free_slot();
        let hook = hooks::new_worker(self.spawned as u64, slot);
        if let Some(hook) = &hook
            && self.hook_failed(hooks::pre_fork(hook), "pre_fork")
        {
            return Ok(None);
        }
        let pid = interpreter::fork()?;
        if pid == 0 {
            drop(read_end);
            signals::reset(&MASTER_SIGNALS);
            // SAFETY: ask the kernel to stop us gracefully if the master dies.
            unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, SIGTERM) };
            if let Some(hook) = hook {
                hooks::become_worker(hook);
            }
            return Ok(Some(WorkerSetup {
                listeners: std::mem::take(&mut self.bound.listeners),
                reporter: Reporter(Some(write_end)),
                multiprocess: self.config.workers > 1,
                preloaded: self.preloaded.take(),
                metrics_slot,
                scoreboard,
                tls: self.tls.clone(),
                slot,
            }));
        }
        drop(write_end);
        crate::log_info!("worker {pid} started (slot {slot})");
        if let Some(hook) = &hook {
            hooks::forked(hook, pid);
        }
        self.workers.push(WorkerProcess {
            pid,
            pipe: read_end,
            generation: self.generation,
            slot,
            hook,
            metrics_slot,
            ready: false,
            scoreboard,
            replace: false,
            leaving: false,
            last_heard: Instant::now(),
        });
        Ok(None)
    }

    fn signal_all(&mut self, signal: i32) {
        for worker in &mut self.workers {
            worker.leaving = true;
            // SAFETY: signalling our own child.
            unsafe { libc::kill(worker.pid, signal) };
        }
    }
}

/// What --reload watches: the working directory and every --pythonpath folder.
fn watched_dirs(config: &Config) -> Vec<PathBuf> {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    std::iter::once(cwd)
        .chain(config.pythonpath.iter().cloned())
        .collect()
}

/// How a child ended, for the log.
fn exit_cause(status: i32) -> String {
    if libc::WIFSIGNALED(status) {
        format!("killed by {}", signals::name(libc::WTERMSIG(status)))
    } else {
        format!("exit code {}", libc::WEXITSTATUS(status))
    }
}

fn stop_worker(worker: &mut WorkerProcess) {
    worker.leaving = true;
    // SAFETY: signalling our own child.
    unsafe { libc::kill(worker.pid, SIGTERM) };
}
