//! Passwords: what we accept, and hashing them with argon2 within bounds.
//!
//! An argon2 hash takes ~19 MiB and tens of milliseconds of a core. Unbounded, a storm of log-ins
//! runs hundreds at once and memory grows with them (docs/benchmarks.md, "Storms"). So hashes run
//! on a fixed set of `workers` threads of their own, with at most `queue` more waiting; anything
//! beyond is refused at once with "try again shortly", and memory stays flat whatever arrives.
//! Threads of their own, not tokio's blocking pool: that pool runs each hash on whichever of its
//! (many) threads is free, and the allocator keeps a 19 MiB block in each thread's arena, so
//! memory grew with the threads touched; a fixed set keeps one block per worker.
//!
//! Each worker also keeps its block between hashes ([`argon2_with_kept_memory`]) instead of
//! letting argon2 allocate and free 19 MiB per hash. On glibc, freeing that block taught the
//! allocator to keep every freed block up to 19 MiB, in every thread: under the benchmark's load
//! the app's RSS rose from 20 MB to 176 MB and stayed there (docs/benchmarks.md).

use std::sync::{
    Arc, LazyLock, Mutex,
    mpsc::{Receiver, SyncSender, TrySendError, sync_channel},
};

use std::cell::RefCell;

use argon2::{
    Algorithm, Argon2, Block, Params, Version,
    password_hash::phc::{Output, ParamsString, PasswordHash, Salt},
};

/// Hashing refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum HashingError {
    /// Every worker is busy and the queue is full.
    #[error("too many password checks at once")]
    Busy,
    #[error("password hashing failed: {0}")]
    Failed(String),
}

type HashJob = Box<dyn FnOnce() + Send>;

/// Runs argon2 on `workers` threads of its own, with at most `queue` jobs waiting.
pub struct PasswordHashing {
    jobs: SyncSender<HashJob>,
}

/// A hash to verify against when the account does not exist, so that the time taken does not
/// tell which emails have accounts.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$2SjyOpEBYHcXPzyy6TBBHcpdPL47J6UBQxeFv0EMXKA";

impl PasswordHashing {
    /// `workers` 0 means one per core. The threads end when this is dropped.
    pub fn new(workers: usize, queue: usize) -> PasswordHashing {
        let workers = if workers == 0 {
            std::thread::available_parallelism().map_or(1, usize::from)
        } else {
            workers
        };
        let (jobs, receiver) = sync_channel::<HashJob>(queue);
        let receiver = Arc::new(Mutex::new(receiver));
        for n in 0..workers {
            let receiver = receiver.clone();
            let started = std::thread::Builder::new()
                .name(format!("kalp-argon2-{n}"))
                .spawn(move || work(&receiver));
            if let Err(e) = started {
                tracing::error!(error = %e, "a password hashing thread could not start");
            }
        }
        PasswordHashing { jobs }
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HashingError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job: HashJob = Box::new(move || {
            let _ = reply.send(work());
        });
        // Admission is one atomic step: a full queue refuses at once.
        match self.jobs.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Err(HashingError::Busy),
            Err(TrySendError::Disconnected(_)) => {
                return Err(HashingError::Failed("no hashing thread is running".into()));
            }
        }
        answer
            .await
            .map_err(|_| HashingError::Failed("the hashing thread stopped".into()))
    }

    pub async fn hash(&self, password: &str) -> Result<String, HashingError> {
        let password = password.to_string();
        self.run(move || hash_phc(password.as_bytes()).map_err(HashingError::Failed))
            .await?
    }

    /// True when `password` matches `hash`; with no hash (no such account), a real check against
    /// a dummy hash, which never matches.
    pub async fn verify(&self, password: &str, hash: Option<String>) -> Result<bool, HashingError> {
        let password = password.to_string();
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| DUMMY_HASH.to_string());
        let matches = self
            .run(move || matches_phc(password.as_bytes(), &hash))
            .await?;
        Ok(known && matches)
    }
}

thread_local! {
    /// A hashing worker's argon2 memory, kept from one hash to the next.
    static MEMORY: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// Argon2 into `out`, in this thread's kept memory: allocated at the first hash, never freed
/// while the worker lives (a hash's parameters never need more than the default's 19 MiB).
fn argon2_with_kept_memory(
    argon2: &Argon2<'_>,
    params: &Params,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> Result<(), String> {
    MEMORY.with_borrow_mut(|memory| {
        let blocks = params.block_count();
        if memory.len() < blocks {
            *memory = vec![Block::default(); blocks];
        }
        argon2
            .hash_password_into_with_memory(password, salt, out, &mut memory[..blocks])
            .map_err(|e| e.to_string())
    })
}

/// A new PHC string (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`): argon2id, the crate's default
/// parameters, a random salt. What `Argon2::hash_password` gives, without its allocation.
fn hash_phc(password: &[u8]) -> Result<String, String> {
    let params = Params::default();
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let salt = Salt::generate();
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    argon2_with_kept_memory(&argon2, &params, password, &salt, &mut out)?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|e| e.to_string())?,
        salt: Some(salt),
        hash: Some(Output::new(&out).map_err(|e| e.to_string())?),
    };
    Ok(phc.to_string())
}

/// True when `password` matches the PHC string `hash`, compared in constant time (`Output`'s
/// equality); false for a string that is not an argon2 hash.
fn matches_phc(password: &[u8], hash: &str) -> bool {
    let check = || -> Option<bool> {
        let parsed = PasswordHash::new(hash).ok()?;
        let algorithm = Algorithm::try_from(parsed.algorithm.as_str()).ok()?;
        let version = match parsed.version {
            Some(v) => Version::try_from(v).ok()?,
            None => Version::default(),
        };
        let params = Params::try_from(&parsed).ok()?;
        let (salt, expected) = (parsed.salt?, parsed.hash?);
        let mut out = vec![0u8; expected.len()];
        let argon2 = Argon2::new(algorithm, version, params.clone());
        argon2_with_kept_memory(&argon2, &params, password, &salt, &mut out).ok()?;
        Some(Output::new(&out).ok()? == expected)
    };
    check().unwrap_or(false)
}

/// A worker: takes the next job until the sender is gone.
fn work(jobs: &Mutex<Receiver<HashJob>>) {
    loop {
        let job = match jobs.lock() {
            Ok(receiver) => receiver.recv(),
            Err(poisoned) => poisoned.into_inner().recv(),
        };
        match job {
            Ok(job) => job(),
            Err(_) => return,
        }
    }
}

/// Common passwords of 10 characters or more (shorter ones are refused by length):
/// `web/data/common-passwords.txt`, lower-cased.
static COMMON: LazyLock<std::collections::HashSet<String>> = LazyLock::new(|| {
    include_str!("../data/common-passwords.txt")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(str::to_lowercase)
        .collect()
});

/// A new password: 10 to 128 characters, not only spaces, not the email (or its name part), and
/// not one of the most common passwords. Every refusal is a sentence for the person.
pub fn check_new_password(password: &str, email: &str) -> Result<(), &'static str> {
    match password.chars().count() {
        0 => return Err("Choose a password."),
        1..=9 => return Err("Use at least 10 characters."),
        10..=128 => {}
        _ => return Err("Use at most 128 characters."),
    }
    if password.trim().is_empty() {
        return Err("A password can't be only spaces.");
    }
    let lowered = password.trim().to_lowercase();
    let email = email.trim().to_lowercase();
    let name = email.split('@').next().unwrap_or_default();
    if lowered == email || (!name.is_empty() && lowered == name) {
        return Err("Don't use your email address as your password.");
    }
    if COMMON.contains(&lowered) {
        return Err(
            "That password is one of the most common ones, and easy to guess. Choose another.",
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hashes made in the kept memory are the library's own PHC strings: each side verifies the
    /// other's, a wrong password or a string that is not a hash never matches, and one thread
    /// hashing twice reuses its memory.
    #[test]
    fn hashes_in_kept_memory_are_the_librarys_hashes() {
        use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
        let ours = hash_phc(b"correct horse battery").expect("hash");
        assert!(
            ours.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{ours}"
        );
        let parsed = PasswordHash::new(&ours).expect("a PHC string");
        assert!(
            Argon2::default()
                .verify_password(b"correct horse battery", &parsed)
                .is_ok()
        );
        let theirs = Argon2::default()
            .hash_password(b"correct horse battery")
            .expect("hash")
            .to_string();
        assert!(matches_phc(b"correct horse battery", &theirs));
        assert!(matches_phc(b"correct horse battery", &ours));
        assert!(!matches_phc(b"correct horse batterY", &ours));
        assert!(!matches_phc(b"correct horse battery", "not a hash"));
        assert!(!matches_phc(b"", DUMMY_HASH));
        let kept = MEMORY.with_borrow(|memory| memory.as_ptr());
        assert_ne!(hash_phc(b"another password").expect("hash"), ours);
        assert_eq!(
            MEMORY.with_borrow(|memory| memory.as_ptr()),
            kept,
            "the same memory"
        );
    }

    #[test]
    fn weak_passwords_are_refused_with_a_reason() {
        for (password, email, why) in [
            ("", "asha@example.com", "Choose"),
            ("short", "asha@example.com", "at least 10"),
            ("          ", "asha@example.com", "only spaces"),
            ("asha@example.com", "asha@example.com", "email"),
            ("ashaprasad1", "ashaprasad1@example.com", "email"),
            ("qwertyuiop", "asha@example.com", "common"),
            ("1234567890", "asha@example.com", "common"),
            ("Password123", "asha@example.com", "common"),
        ] {
            let err = check_new_password(password, email).expect_err(password);
            assert!(err.contains(why), "{password:?}: {err}");
        }
        assert!(check_new_password("correct horse battery", "asha@example.com").is_ok());
        assert!(
            COMMON.len() > 9_000,
            "the list is shipped: {}",
            COMMON.len()
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn beyond_the_queue_hashing_is_refused_at_once() {
        let hashing = Arc::new(PasswordHashing::new(1, 1));
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let hashing = hashing.clone();
                tokio::spawn(async move { hashing.hash("correct horse battery").await })
            })
            .collect();
        let mut busy = 0;
        let mut hashed = 0;
        for task in tasks {
            match task.await.expect("task") {
                Ok(_) => hashed += 1,
                Err(HashingError::Busy) => busy += 1,
                Err(e) => panic!("{e}"),
            }
        }
        assert!(hashed >= 1 && busy >= 1, "hashed {hashed}, refused {busy}");
        let hash = hashing.hash("correct horse battery").await.expect("hash");
        assert!(
            hashing
                .verify("correct horse battery", Some(hash.clone()))
                .await
                .expect("verify")
        );
        assert!(!hashing.verify("wrong", Some(hash)).await.expect("verify"));
        assert!(!hashing.verify("anything", None).await.expect("verify"));
    }
}
