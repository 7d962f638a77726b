//! One child process under the lab's care: started in its own process group with its output
//! streamed through the [`Console`], watched until it exits, stopped with SIGTERM and, past a
//! grace period, SIGKILL.
//!
//! Each child gets its own process group so that Ctrl-C on the terminal reaches only `lab`,
//! which then stops the children one by one in the order that lets telemetry drain; and it
//! gets SIGTERM if `lab` itself dies, so a killed lab leaves nothing behind holding ports.
//! (That parent-death signal follows the *thread* that spawned the child: spawn from a
//! thread that lives as long as the lab, such as a current-thread runtime's.)

use std::os::unix::process::ExitStatusExt as _;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::process::Command;
use tokio::sync::{mpsc, watch};

use crate::console::{Console, Prefix, ProcessLog, forward_lines};

/// Everything needed to start one process; built from the process table by [`crate::plan`].
#[derive(Debug, Clone, Default)]
pub struct Launch {
    pub name: String,
    pub program: PathBuf,
    pub args: Vec<String>,
    /// Set on top of the lab's own environment.
    pub env: Vec<(String, String)>,
    /// Removed from the inherited environment.
    pub env_remove: Vec<String>,
    pub cwd: Option<PathBuf>,
    /// GET until 2xx before the lab moves on; `None`: ready as soon as it is started.
    pub health: Option<String>,
    /// Where its output is kept (truncated at start).
    pub log_file: Option<PathBuf>,
    /// (URL, what it is) rows for the table printed once the lab is up.
    pub links: Vec<(String, String)>,
}

impl Launch {
    /// The command line, for messages.
    pub fn command_line(&self) -> String {
        std::iter::once(self.program.display().to_string())
            .chain(self.args.iter().cloned())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

#[derive(Debug, thiserror::Error)]
#[error("cannot start {name} ({program}): {source}")]
pub struct SpawnError {
    name: String,
    program: String,
    source: std::io::Error,
}

/// How [`Supervised::stop`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// It had exited before it was asked to.
    AlreadyExited(ExitStatus),
    /// It exited after SIGTERM within the grace period.
    Exited { status: ExitStatus, after: Duration },
    /// It outlived the grace period and got SIGKILL.
    Killed(ExitStatus),
}

/// A running (or exited) child process.
pub struct Supervised {
    name: String,
    pid: u32,
    prefix: Prefix,
    log: Arc<ProcessLog>,
    log_file: Option<PathBuf>,
    exit: watch::Receiver<Option<ExitStatus>>,
}

impl Supervised {
    /// Starts `launch`; `index` picks its prefix colour and is what it sends on `exits` when
    /// it exits (after its output has been drained, so its last lines are complete).
    pub fn spawn(
        launch: &Launch,
        index: usize,
        console: &Console,
        exits: mpsc::UnboundedSender<usize>,
    ) -> Result<Self, SpawnError> {
        let spawn_error = |source| SpawnError {
            name: launch.name.clone(),
            program: launch.program.display().to_string(),
            source,
        };
        let log = Arc::new(ProcessLog::create(launch.log_file.as_deref()).map_err(spawn_error)?);
        // The log then answers "what exactly did it get?" without re-reading the table.
        log.annotate(&launch.command_line());
        for (key, value) in &launch.env {
            log.annotate(&format!("with {key}={value}"));
        }
        let mut command = Command::new(&launch.program);
        command
            .args(&launch.args)
            .envs(launch.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        for key in &launch.env_remove {
            command.env_remove(key);
        }
        if let Some(dir) = &launch.cwd {
            command.current_dir(dir);
        }
        // SAFETY: the closure runs between fork and exec and only makes one
        // async-signal-safe system call.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = command.spawn().map_err(spawn_error)?;
        let pid = child
            .id()
            .expect("a child that was just spawned and not yet awaited has a pid");

        let prefix = console.prefix(&launch.name, index);
        let readers = [
            child.stdout.take().map(|out| {
                tokio::spawn(forward_lines(
                    out,
                    console.clone(),
                    prefix.clone(),
                    log.clone(),
                ))
            }),
            child.stderr.take().map(|err| {
                tokio::spawn(forward_lines(
                    err,
                    console.clone(),
                    prefix.clone(),
                    log.clone(),
                ))
            }),
        ];
        let (exit_tx, exit) = watch::channel(None);
        tokio::spawn(async move {
            let status = match child.wait().await {
                Ok(status) => status,
                // waitpid only fails if the child is not ours any more; report it as a
                // failure rather than pretending it is still running.
                Err(_) => ExitStatus::from_raw(255 << 8),
            };
            // A grandchild may still hold the pipes open; its output keeps flowing, but the
            // exit is reported without waiting for it.
            let drained = async {
                for reader in readers.into_iter().flatten() {
                    let _ = reader.await;
                }
            };
            let _ = tokio::time::timeout(Duration::from_secs(2), drained).await;
            let _ = exit_tx.send(Some(status));
            let _ = exits.send(index);
        });

        Ok(Self {
            name: launch.name.clone(),
            pid,
            prefix,
            log,
            log_file: launch.log_file.clone(),
            exit,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    pub fn prefix(&self) -> &Prefix {
        &self.prefix
    }

    pub fn log_file(&self) -> Option<&std::path::Path> {
        self.log_file.as_deref()
    }

    /// Its last lines of output (stdout and stderr interleaved as they came).
    pub fn last_lines(&self) -> Vec<String> {
        self.log.last_lines()
    }

    /// `Some` once it has exited and its output has been drained.
    pub fn exit_status(&self) -> Option<ExitStatus> {
        *self.exit.borrow()
    }

    /// Waits for it to exit.
    pub async fn wait(&self) -> ExitStatus {
        let mut exit = self.exit.clone();
        let status = exit.wait_for(Option::is_some).await.map(|s| *s);
        match status {
            Ok(Some(status)) => status,
            // The watcher task is gone only if the runtime is shutting down.
            _ => ExitStatus::from_raw(255 << 8),
        }
    }

    /// SIGTERM, then up to `grace` for it to exit, then SIGKILL to its whole process group.
    pub async fn stop(&self, grace: Duration) -> Stopped {
        if let Some(status) = self.exit_status() {
            return Stopped::AlreadyExited(status);
        }
        let started = Instant::now();
        send_signal(self.pid, libc::SIGTERM);
        match tokio::time::timeout(grace, self.wait()).await {
            Ok(status) => {
                // Whatever it started and left behind in its group goes with it.
                kill_group(self.pid, libc::SIGKILL);
                Stopped::Exited {
                    status,
                    after: started.elapsed(),
                }
            }
            Err(_) => Stopped::Killed(self.kill().await),
        }
    }

    /// SIGKILL to its process group, and wait for it.
    pub async fn kill(&self) -> ExitStatus {
        kill_group(self.pid, libc::SIGKILL);
        self.wait().await
    }
}

fn send_signal(pid: u32, signal: libc::c_int) {
    if let Ok(pid) = libc::pid_t::try_from(pid) {
        // SAFETY: kill(2) has no memory-safety preconditions. ESRCH (already gone) is fine.
        unsafe { libc::kill(pid, signal) };
    }
}

fn kill_group(pgid: u32, signal: libc::c_int) {
    if let Ok(pgid) = libc::pid_t::try_from(pgid) {
        // SAFETY: as for kill(2). The group id is the child's pid (process_group(0)); POSIX
        // does not reuse it while any member of the group is alive.
        unsafe { libc::killpg(pgid, signal) };
    }
}

/// "exit code 1", "killed by SIGKILL": how a person reads an exit status.
pub fn describe(status: ExitStatus) -> String {
    if let Some(code) = status.code() {
        return format!("exit code {code}");
    }
    match status.signal() {
        Some(signal) => format!("killed by {}", signal_name(signal)),
        None => status.to_string(),
    }
}

fn signal_name(signal: i32) -> String {
    let name = match signal {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGTERM => "SIGTERM",
        other => return format!("signal {other}"),
    };
    name.to_owned()
}
