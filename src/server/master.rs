//! The master process: binds the listeners, forks the workers and supervises them. It holds
//! no Python and no threads, so forking is always safe. Signals (as gunicorn):
//! TERM/INT graceful stop (a second INT, or QUIT: at once), HUP rolling reload,
//! TTIN/TTOU one worker more/less. Crashed workers are replaced; workers that cannot start
//! stop the master with a clear message instead of a restart loop.
use std::fs::File;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use pyo3::prelude::*;

use super::control::{self, Message, Reporter};
use super::exporter::Exporter;
use super::listeners::{Bound, bind_all, refuse_new_connections, remove_socket_files};
use super::reload::SourceWatcher;
use super::signals::{self, SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGTTIN, SIGTTOU};
use super::worker::{self, EXIT_BOOT_FAILED, Preloaded, WorkerSetup};
use crate::config::Config;
use crate::instrument::activity::Scoreboard;
use crate::instrument::metrics;
use crate::net::stream::Listener;
use crate::wsgi::interpreter::BUILD_VERSION;

const MASTER_SIGNALS: [i32; 6] = [SIGINT, SIGTERM, SIGHUP, SIGTTIN, SIGTTOU, SIGQUIT];
const TICK: Duration = Duration::from_millis(50);
/// Workers that die before they are ready this many times in a row stop the master.
const MAX_BOOT_FAILURES: u32 = 5;
/// A ready worker silent for this long (no heartbeat) is wedged beyond --timeout's reach.
const SILENCE_LIMIT: Duration = Duration::from_secs(30);

struct WorkerProcess {
    pid: i32,
    pipe: File,
    generation: u64,
    /// Its slot in the shared metrics region (with --metrics).
    metrics_slot: Option<usize>,
    ready: bool,
    /// What its threads are doing, in memory shared with it.
    scoreboard: Scoreboard,
    /// Stopping (retiring itself, or told to stop): no longer counts as serving.
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
    boot_failures: u32,
    stopping: Option<Instant>,
    /// --reload: watches the app's sources; a change starts a rolling reload.
    watcher: Option<SourceWatcher>,
    /// A generation whose workers could not load the app: the previous one keeps serving.
    failed_generation: Option<u64>,
    /// --metrics: the exporter and the metrics slots not in use.
    metrics: Option<Exporter>,
    free_slots: Vec<usize>,
    spawned: usize,
}

pub fn run(config: &Config) -> Result<()> {
    signals::catch(&MASTER_SIGNALS);
    if let Some(venv) = &config.venv {
        // Checked here too, so a version mismatch is one clear line before any fork.
        crate::wsgi::interpreter::venv_python(venv)?;
    }
    let bound = bind_all(&config.bind, config.unix_mode)?;
    let shown: Vec<String> = bound.listeners.iter().map(Listener::describe).collect();
    let python = BUILD_VERSION
        .split_whitespace()
        .next()
        .unwrap_or(BUILD_VERSION);
    let venv = config
        .venv
        .as_ref()
        .map_or("no venv".to_string(), |v| format!("venv {}", v.display()));
    crate::log_info!(
        "master {} listening on {} ({} workers x {} threads, Python {python}, {venv}); mounts: {}",
        std::process::id(),
        shown.join(", "),
        config.workers,
        config.threads,
        config.describe_mounts(),
    );
    let preloaded = match config.preload {
        true => Some(Preloaded::start(config)?),
        false => None,
    };
    let mut master = Master {
        config,
        preloaded,
        bound,
        workers: Vec::new(),
        target: config.workers as usize,
        generation: 0,
        boot_failures: 0,
        stopping: None,
        watcher: config
            .reload
            .then(|| SourceWatcher::new(watched_dirs(config))),
        failed_generation: None,
        metrics: config.metrics.map(Exporter::bind).transpose()?,
        free_slots: (0..metrics::SLOTS).rev().collect(),
        spawned: 0,
    };
    let result = master.supervise();
    remove_socket_files(&master.bound.listeners);
    if let Some(preloaded) = master.preloaded.take() {
        Python::attach(|_| drop(preloaded.apps));
        preloaded.interpreter.finalize();
    }
    result
}

impl Master<'_> {
    fn supervise(&mut self) -> Result<()> {
        loop {
            for signal in signals::take() {
                self.on_signal(signal);
            }
            self.read_messages();
            self.reap()?;
            if let Some(exporter) = &self.metrics {
                exporter.serve_pending(self.workers.len());
            }
            if let Some(deadline) = self.stopping {
                if self.workers.is_empty() {
                    crate::log_info!("master {}: all workers stopped", std::process::id());
                    return Ok(());
                }
                if Instant::now() >= deadline {
                    crate::log_error!(
                        "workers still running after --graceful-timeout; killing them"
                    );
                    self.signal_all(libc::SIGKILL);
                }
            } else {
                self.reload_if_sources_changed();
                self.kill_silent_workers();
                self.finish_reload();
                self.spawn_missing()?;
            }
            std::thread::sleep(TICK);
        }
    }

    fn on_signal(&mut self, signal: i32) {
        match signal {
            SIGINT | SIGTERM if self.stopping.is_none() => {
                crate::log_info!("{} received, stopping gracefully", signals::name(signal));
                self.stopping =
                    Some(Instant::now() + self.config.graceful_timeout() + Duration::from_secs(5));
                refuse_new_connections(&self.bound);
                self.signal_all(SIGTERM);
                // The workers take what is queued, then close their copies: the sockets close.
                self.bound.listeners.clear();
            }
            SIGINT | SIGQUIT => {
                crate::log_info!("{} received, stopping now", signals::name(signal));
                self.signal_all(libc::SIGKILL);
                remove_socket_files(&self.bound.listeners);
                std::process::exit(1);
            }
            SIGHUP if self.stopping.is_none() => {
                self.generation += 1;
                crate::log_info!(
                    "SIGHUP received, starting {} new workers before stopping the old ones",
                    self.target
                );
            }
            SIGTTIN => {
                self.target += 1;
                crate::log_info!("SIGTTIN: {} workers", self.target);
            }
            SIGTTOU if self.target > 1 => {
                self.target -= 1;
                crate::log_info!("SIGTTOU: {} workers", self.target);
                if let Some(worker) = self.workers.iter_mut().rev().find(|w| !w.leaving) {
                    stop_worker(worker);
                }
            }
            _ => {}
        }
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
                    Message::Retiring => worker.leaving = true,
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
                continue;
            };
            let worker = self.workers.remove(index);
            if let (Some(exporter), Some(slot)) = (&self.metrics, worker.metrics_slot) {
                exporter.retire_slot(slot);
                self.free_slots.push(slot);
            }
            let cause = if libc::WIFSIGNALED(status) {
                format!("killed by {}", signals::name(libc::WTERMSIG(status)))
            } else {
                format!("exit code {}", libc::WEXITSTATUS(status))
            };
            let expected = worker.leaving || self.stopping.is_some();
            if expected {
                crate::log_info!("worker {pid} stopped ({cause})");
            } else {
                crate::log_error!("worker {pid} died ({cause}); starting a replacement");
            }
            if !expected || libc::WIFSIGNALED(status) {
                // Their access-log lines were never written: name them here.
                for request in worker.scoreboard.requests_in_progress() {
                    crate::log_error!("worker {pid} was answering {request} when it died");
                }
            }
            if expected {
                continue;
            }
            let older_generation_serving = self
                .workers
                .iter()
                .any(|w| w.ready && !w.leaving && w.generation < worker.generation);
            if !worker.ready && older_generation_serving {
                crate::log_error!(
                    "the new code does not load (see above); the previous workers keep serving until it is fixed"
                );
                self.failed_generation = Some(worker.generation);
                continue;
            }
            if !worker.ready {
                if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == EXIT_BOOT_FAILED {
                    self.shutdown_after_boot_failure();
                    bail!("the worker could not load the application (see the error above)");
                }
                self.boot_failures += 1;
                if self.boot_failures >= MAX_BOOT_FAILURES {
                    self.shutdown_after_boot_failure();
                    bail!(
                        "workers died {MAX_BOOT_FAILURES} times in a row while starting; giving up"
                    );
                }
            }
        }
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
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        (pid > 0).then(|| self.workers.retain(|w| w.pid != pid))
    }

    /// After SIGHUP: once the new generation is all ready, the old workers stop.
    fn finish_reload(&mut self) {
        let current = self.generation;
        let new_ready = self
            .workers
            .iter()
            .filter(|w| w.generation == current && w.ready && !w.leaving)
            .count();
        if new_ready < self.target {
            return;
        }
        for worker in self
            .workers
            .iter_mut()
            .filter(|w| w.generation != current && !w.leaving)
        {
            stop_worker(worker);
        }
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
        self.generation += 1;
        crate::log_info!("{} changed; reloading the workers", path.display());
    }

    fn spawn_missing(&mut self) -> Result<()> {
        let current = self.generation;
        if self.failed_generation == Some(current) {
            return Ok(());
        }
        let serving = self
            .workers
            .iter()
            .filter(|w| !w.leaving && w.generation == current)
            .count();
        for _ in serving..self.target {
            if self.boot_failures > 0 {
                // Crashing at start: retry slowly rather than in a tight loop.
                std::thread::sleep(Duration::from_millis(200 * self.boot_failures as u64));
            }
            self.spawn()?;
        }
        Ok(())
    }

    fn spawn(&mut self) -> Result<()> {
        let (read_end, write_end) = control::pipe()?;
        let scoreboard = Scoreboard::map(self.config.worker_threads())?;
        let metrics_slot = self.metrics.as_ref().and_then(|_| self.free_slots.pop());
        self.spawned += 1;
        if let Some(exporter) = &mut self.metrics
            && self.spawned > self.config.workers as usize
        {
            exporter.restarts += 1;
        }
        let pid = match &mut self.preloaded {
            Some(preloaded) => preloaded.interpreter.fork()?,
            // SAFETY: the master is single-threaded, so the child starts in a consistent state.
            None => unsafe { libc::fork() },
        };
        if pid < 0 {
            bail!("fork failed: {}", std::io::Error::last_os_error());
        }
        if pid == 0 {
            drop(read_end);
            signals::reset(&MASTER_SIGNALS);
            // SAFETY: ask the kernel to stop us gracefully if the master dies.
            unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, SIGTERM) };
            let setup = WorkerSetup {
                listeners: std::mem::take(&mut self.bound.listeners),
                reporter: Reporter(Some(write_end)),
                multiprocess: self.config.workers > 1,
                preloaded: self.preloaded.take(),
                metrics_slot,
                scoreboard,
            };
            let code = worker::run(self.config, setup);
            std::process::exit(code);
        }
        drop(write_end);
        crate::log_info!("worker {pid} started");
        self.workers.push(WorkerProcess {
            pid,
            pipe: read_end,
            generation: self.generation,
            metrics_slot,
            ready: false,
            scoreboard,
            leaving: false,
            last_heard: Instant::now(),
        });
        Ok(())
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

fn stop_worker(worker: &mut WorkerProcess) {
    worker.leaving = true;
    // SAFETY: signalling our own child.
    unsafe { libc::kill(worker.pid, SIGTERM) };
}
