//! A worker: binds, starts Python, runs `--threads` threads over one event loop, and stops
//! gracefully on SIGINT/SIGTERM (a second signal stops at once).
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use anyhow::{Context as _, Result};
use mio::Events;
use pyo3::prelude::*;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use super::context::{Context, MountedApp};
use super::listeners::bind_all;
use super::serve::serve;
use crate::config::Config;
use crate::http::request::HeadLimits;
use crate::net::event_loop::{EventLoop, LoopSettings};
use crate::route::{Mount, Router, Target};
use crate::wsgi::call::CallSettings;
use crate::wsgi::environ::{ServerTraits, template};
use crate::wsgi::interpreter::{self, BUILD_VERSION};
use crate::wsgi::scripts::ScriptCache;

/// How long in-flight requests may take to finish after SIGINT/SIGTERM.
const GRACEFUL_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the loop may go without a poller before an idle thread takes it over.
const HANDOFF: Duration = Duration::from_millis(1);

pub fn run(config: Config) -> Result<()> {
    // Before Python starts, so Python never installs its own SIGINT handler over ours.
    let mut signals = Signals::new([SIGINT, SIGTERM]).context("installing signal handlers")?;
    let listeners = bind_all(&config.bind)?;
    let cwd = std::env::current_dir()?;
    let mut sys_path: Vec<&Path> = vec![&config.scripts];
    if config.app.is_some() {
        sys_path.insert(0, &cwd);
    }
    let interpreter = interpreter::start(&sys_path)?;
    let context = Arc::new(build_context(&config, listeners)?);
    print_banner(&config);

    let running = Arc::new((Mutex::new(config.threads as usize), Condvar::new()));
    for index in 0..config.threads {
        let (context, running) = (context.clone(), running.clone());
        std::thread::Builder::new()
            .name(format!("wsgihost-{index}"))
            .spawn(move || {
                // Attached once for the thread's life; the GIL is only held while Python runs.
                Python::attach(|py| py.detach(|| thread_main(&context)));
                let (count, done) = &*running;
                *count.lock().unwrap_or_else(|p| p.into_inner()) -= 1;
                done.notify_all();
            })?;
    }
    let monitor_context = context.clone();
    std::thread::Builder::new()
        .name("wsgihost-monitor".into())
        .spawn(move || monitor_context.event_loop.monitor())?;

    let first = signals.forever().next();
    eprintln!(
        "wsgihost: signal {} received, finishing in-flight requests",
        first.unwrap_or(0)
    );
    context.event_loop.stop();
    std::thread::spawn(move || {
        if signals.forever().next().is_some() {
            eprintln!("wsgihost: second signal, exiting now");
            std::process::exit(1);
        }
    });
    let (count, done) = &*running;
    let guard = count.lock().unwrap_or_else(|p| p.into_inner());
    let (guard, timeout) = done
        .wait_timeout_while(guard, GRACEFUL_TIMEOUT, |running| *running > 0)
        .unwrap_or_else(|p| p.into_inner());
    if timeout.timed_out() {
        eprintln!(
            "wsgihost: {} requests still running after {GRACEFUL_TIMEOUT:?}; exiting",
            *guard
        );
        std::process::exit(1);
    }
    drop(guard);
    // Python objects in the context are released with the GIL held, then Python ends.
    Python::attach(|_| drop(context));
    interpreter.finalize();
    Ok(())
}

fn thread_main(context: &Context) {
    let mut events = Events::with_capacity(256);
    while let Some(work) = context.event_loop.next_work(&mut events) {
        let token = work.token;
        // A bug in the server must cost one connection, never the thread.
        if catch_unwind(AssertUnwindSafe(|| serve(context, work))).is_err() {
            eprintln!("wsgihost: internal error while serving a connection; it was closed");
            context.event_loop.close(token);
        }
    }
}

fn build_context(config: &Config, listeners: Vec<mio::net::TcpListener>) -> Result<Context> {
    let mut mounts = Vec::new();
    let mut apps = Vec::new();
    let (environ_template, loaded) = Python::attach(|py| -> Result<_> {
        let traits = ServerTraits {
            multithread: config.threads > 1,
            multiprocess: false,
        };
        let template = template(py, &traits)?;
        let loaded = match &config.app {
            Some(spec) => Some(interpreter::load_app(py, spec)?),
            None => None,
        };
        Ok((template, loaded))
    })?;
    if let (Some(spec), Some(callable)) = (&config.app, loaded) {
        apps.push(MountedApp {
            name: spec.clone(),
            callable,
        });
        mounts.push(Mount {
            prefix: Vec::new(),
            target: Target::App(0),
        });
    }
    if config.app.is_none() || config.html_given {
        let root = config.html.canonicalize().unwrap_or_else(|_| {
            eprintln!(
                "wsgihost: warning: static folder {} does not exist",
                config.html.display()
            );
            std::path::absolute(&config.html).unwrap_or_else(|_| config.html.clone())
        });
        mounts.push(Mount {
            prefix: Vec::new(),
            target: Target::Static(root),
        });
    }
    if config.app.is_none() || config.scripts_given {
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
    };
    Ok(Context {
        event_loop: EventLoop::new(listeners, settings)?,
        router: Router::new(mounts),
        scripts: ScriptCache::new(&config.scripts),
        apps,
        environ_template,
        limits: HeadLimits {
            request_line: config.limit_request_line,
            header_block: config.limit_request_headers,
        },
        call: CallSettings {
            io_timeout: config.io_timeout(),
            max_body: config.max_body,
            debug: config.debug,
        },
        header_timeout: config.header_timeout(),
    })
}

fn print_banner(config: &Config) {
    let addrs: Vec<String> = config.bind.iter().map(|a| format!("http://{a}")).collect();
    let python = BUILD_VERSION
        .split_whitespace()
        .next()
        .unwrap_or(BUILD_VERSION);
    let serving = match &config.app {
        Some(app) => format!("app {app}"),
        None => format!(
            "html {} and scripts {}",
            config.html.display(),
            config.scripts.display()
        ),
    };
    eprintln!(
        "wsgihost: serving {serving} on {} ({} threads, Python {python}, pid {})",
        addrs.join(", "),
        config.threads,
        std::process::id()
    );
}
