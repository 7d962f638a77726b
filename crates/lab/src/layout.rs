//! Where things are: the checkout, the built binaries, the state directory; and the per-run
//! values that fill the placeholders of the process table.

use std::path::{Path, PathBuf};

use rand::Rng as _;

/// The directory `lab up` recognises as the checkout's root: it holds this path.
pub const REPO_MARKER: &str = "crates/collector/configs";

#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error(
        "no otel-lab checkout found at or above {0} (looked for a directory containing \
         {REPO_MARKER}); run `lab up` inside the checkout or pass --repo"
    )]
    RepoNotFound(PathBuf),
    #[error("--repo {0}: not an otel-lab checkout (it has no {REPO_MARKER})")]
    NotARepo(PathBuf),
    #[error("cannot find the directory of the lab executable: {0}")]
    OwnExe(std::io::Error),
    #[error("cannot create the state directory {0}: {1}")]
    StateDir(PathBuf, std::io::Error),
}

/// The three directories `lab up` works with, all absolute.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The checkout: configs are read from here, and processes run in it.
    pub repo: PathBuf,
    /// `.lab/` by default: SQLite files, the gateway's files, `logs/<process>.log`.
    pub state: PathBuf,
    /// Where the workspace binaries are (by default, next to `lab` itself).
    pub bin: PathBuf,
}

impl Layout {
    /// Resolves the directories from the command line's choices, creating the state
    /// directory and its `logs/`.
    pub fn resolve(
        repo: Option<&Path>,
        state: Option<&Path>,
        bin: Option<&Path>,
    ) -> Result<Self, LayoutError> {
        let cwd = std::env::current_dir().map_err(LayoutError::OwnExe)?;
        let repo = Self::find_checkout(repo)?;
        let state = state.map_or_else(|| repo.join(".lab"), |dir| absolute(&cwd, dir));
        let bin = match bin {
            Some(dir) => absolute(&cwd, dir),
            None => own_exe_dir()?,
        };
        std::fs::create_dir_all(state.join("logs"))
            .map_err(|e| LayoutError::StateDir(state.clone(), e))?;
        Ok(Self { repo, state, bin })
    }

    /// The checkout: `repo` when given (it must be one), else the nearest one at or above
    /// the current directory. `lab check` reads the learner's files there.
    pub fn find_checkout(repo: Option<&Path>) -> Result<PathBuf, LayoutError> {
        let cwd = std::env::current_dir().map_err(LayoutError::OwnExe)?;
        match repo {
            Some(dir) => {
                let dir = absolute(&cwd, dir);
                if !dir.join(REPO_MARKER).is_dir() {
                    return Err(LayoutError::NotARepo(dir));
                }
                Ok(dir)
            }
            None => find_repo(&cwd).ok_or(LayoutError::RepoNotFound(cwd)),
        }
    }

    pub fn log_file(&self, process: &str) -> PathBuf {
        self.state.join("logs").join(format!("{process}.log"))
    }
}

/// The nearest directory at or above `start` that holds [`REPO_MARKER`].
pub fn find_repo(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .find(|dir| dir.join(REPO_MARKER).is_dir())
        .map(Path::to_path_buf)
}

fn absolute(cwd: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        cwd.join(path)
    }
}

fn own_exe_dir() -> Result<PathBuf, LayoutError> {
    let exe = std::env::current_exe().map_err(LayoutError::OwnExe)?;
    // Canonical, so a symlinked `lab` still finds its real siblings.
    let exe = exe.canonicalize().unwrap_or(exe);
    exe.parent().map(Path::to_path_buf).ok_or_else(|| {
        LayoutError::OwnExe(std::io::Error::other(format!(
            "{} has no parent directory",
            exe.display()
        )))
    })
}

/// Values substituted into the process table's strings.
#[derive(Debug, Clone)]
pub struct Placeholders {
    pub repo: String,
    pub state: String,
    pub bin: String,
    /// Like a ReplicaSet's pod: `order-service-<10 chars>-<5 chars>`, new each run, as a
    /// restarted pod would be.
    pub pod_name: String,
    /// Like an ECS task id: 32 hex digits, new each run.
    pub ecs_task_id: String,
}

impl Placeholders {
    pub fn new(layout: &Layout) -> Self {
        let mut rng = rand::rng();
        // The alphabet Kubernetes uses for generated names (no vowels, no look-alikes).
        const K8S: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
        let mut k8s = |n: usize| -> String {
            (0..n)
                .map(|_| K8S[rng.random_range(0..K8S.len())] as char)
                .collect()
        };
        let pod_name = format!("order-service-{}-{}", k8s(10), k8s(5));
        let ecs_task_id = format!("{:032x}", rand::rng().random::<u128>());
        Self {
            repo: layout.repo.display().to_string(),
            state: layout.state.display().to_string(),
            bin: layout.bin.display().to_string(),
            pod_name,
            ecs_task_id,
        }
    }

    pub fn expand(&self, template: &str) -> String {
        template
            .replace("{repo}", &self.repo)
            .replace("{state}", &self.state)
            .replace("{bin}", &self.bin)
            .replace("{pod_name}", &self.pod_name)
            .replace("{ecs_task_id}", &self.ecs_task_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_checkout_from_a_subdirectory() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join(REPO_MARKER)).unwrap();
        let deep = root.path().join("crates/lab/src");
        std::fs::create_dir_all(&deep).unwrap();
        assert_eq!(find_repo(&deep).as_deref(), Some(root.path()));
    }

    #[test]
    fn expands_every_placeholder() {
        let layout = Layout {
            repo: "/r".into(),
            state: "/r/.lab".into(),
            bin: "/t/release".into(),
        };
        let values = Placeholders::new(&layout);
        let expanded =
            values.expand("{repo}/x {state}/orders.db {bin}/bootstrap {pod_name} {ecs_task_id}");
        assert!(!expanded.contains('{'), "{expanded}");
        assert!(expanded.starts_with("/r/x /r/.lab/orders.db /t/release/bootstrap order-service-"));
        assert_eq!(values.ecs_task_id.len(), 32);
    }
}
