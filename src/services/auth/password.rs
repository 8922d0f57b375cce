//! Passwords: argon2id with explicit parameters (so a library default changing never silently
//! weakens or slows hashing), PHC strings in the database, and a policy that welcomes long
//! passphrases while refusing the passwords attackers try first.
//!
//! Verification of an unknown account runs against a fixed dummy hash, so a sign-in attempt
//! takes the same time whether or not the email has an account.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, OnceLock, PoisonError};

use argon2::password_hash::{
    self, rand_core::OsRng, Decimal, Ident, Output, ParamsString, PasswordHash, PasswordHasher,
    Salt, SaltString,
};
use argon2::{Algorithm, Argon2, Block, Params, PasswordVerifier, Version};

/// OWASP's recommended argon2id setting: 19 MiB of memory, 2 passes, 1 lane.
fn params() -> Params {
    // These constants are valid parameters; `Params::new` only fails for out-of-range values.
    Params::new(19 * 1024, 2, 1, Some(32)).unwrap_or_default()
}

/// argon2 that keeps its working memory (19 MiB) per thread and reuses it through a burst of
/// sign-ins. With a fresh allocation per hash, glibc kept about three spare copies in each
/// thread's arena (measured: 160 MB resident after a handful of sign-ins); reused, it is one
/// copy per hashing thread, and a hashing thread with nothing queued hands it back
/// ([`release_memory`]), so a server at rest does not hold 19 MiB per core for the next
/// sign-in. The output is exactly argon2's (the same PHC strings; the tests check both ways).
struct ReusedMemory;

thread_local! {
    static BLOCKS: std::cell::RefCell<Vec<Block>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Give this thread's argon2 memory back. An allocation this large is mapped on its own (the
/// binary fixes glibc's threshold below it, `src/main.rs`), so freeing it returns it to the
/// system at once rather than to a malloc arena.
fn release_memory() {
    BLOCKS.with(|blocks| *blocks.borrow_mut() = Vec::new());
}

impl PasswordHasher for ReusedMemory {
    type Params = Params;

    fn hash_password<'a>(
        &self,
        password: &[u8],
        salt: impl Into<Salt<'a>>,
    ) -> password_hash::Result<PasswordHash<'a>> {
        self.hash_password_customized(password, None, None, params(), salt)
    }

    fn hash_password_customized<'a>(
        &self,
        password: &[u8],
        alg_id: Option<Ident<'a>>,
        version: Option<Decimal>,
        params: Params,
        salt: impl Into<Salt<'a>>,
    ) -> password_hash::Result<PasswordHash<'a>> {
        let algorithm = alg_id
            .map(Algorithm::try_from)
            .transpose()?
            .unwrap_or(Algorithm::Argon2id);
        let version = version
            .map(Version::try_from)
            .transpose()?
            .unwrap_or(Version::V0x13);
        let salt = salt.into();
        let mut salt_buffer = [0u8; 64];
        let salt_bytes = salt.decode_b64(&mut salt_buffer)?;
        let argon2 = Argon2::new(algorithm, version, params.clone());
        let output = BLOCKS.with(|blocks| {
            let mut blocks = blocks.borrow_mut();
            blocks.resize(params.block_count(), Block::default());
            Output::init_with(
                params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN),
                |out| {
                    argon2
                        .hash_password_into_with_memory(password, salt_bytes, out, &mut blocks[..])
                        .map_err(Into::into)
                },
            )
        })?;
        Ok(PasswordHash {
            algorithm: algorithm.ident(),
            version: Some(version.into()),
            params: ParamsString::try_from(&params)?,
            salt: Some(salt),
            hash: Some(output),
        })
    }
}

pub const MIN_LENGTH: usize = 10;
pub const MAX_LENGTH: usize = 1000;

/// zxcvbn's score a new password must reach: 3 is "safely unguessable" (about 10^10 guesses),
/// enough against an attacker who has a copy of the hashes and the argon2 cost to pay.
pub const MIN_STRENGTH: u8 = 3;
/// zxcvbn looks at this much of a password (its running time grows with length); anything
/// longer is judged by its start, and its length only adds to its strength.
const STRENGTH_CHARS: usize = 100;
/// Words anyone guessing at this service would try first.
const SERVICE_WORDS: &[&str] = &[
    "nhs",
    "dma",
    "digital",
    "maturity",
    "assessment",
    "trust",
    "hospital",
    "england",
];

/// Why a new password is refused, in words a person can act on; `None` when it is acceptable.
///
/// Beyond the length limits, the password's strength is estimated by zxcvbn (a maintained
/// port of Dropbox's estimator, with its dictionaries of common passwords, names, words and
/// keyboard patterns), told the person's email and name and the service's own words so that
/// those count as guessable too. A refusal says what zxcvbn found and what to do instead.
pub fn policy_problem(password: &str, email: &str, name: &str) -> Option<String> {
    let length = password.chars().count();
    if length < MIN_LENGTH {
        return Some(format!(
            "Password must be at least {MIN_LENGTH} characters. A passphrase of three or four random words is easy to remember and hard to guess."
        ));
    }
    if length > MAX_LENGTH {
        return Some(format!(
            "Password must be {MAX_LENGTH} characters or fewer."
        ));
    }
    let lower = password.to_lowercase();
    let local = email.split('@').next().unwrap_or("").to_lowercase();
    if local.len() >= 4 && lower.contains(&local) {
        return Some("Password must not contain your email address.".into());
    }
    let joined = name.to_lowercase().replace(' ', "");
    if joined.len() >= 4 && lower.replace(' ', "").contains(&joined) {
        return Some("Password must not contain your name.".into());
    }
    let judged: String = password.chars().take(STRENGTH_CHARS).collect();
    let mut known: Vec<&str> = SERVICE_WORDS.to_vec();
    known.extend([email, local.as_str()]);
    known.extend(name.split_whitespace());
    let estimate = zxcvbn::zxcvbn(&judged, &known);
    if (estimate.score() as u8) >= MIN_STRENGTH {
        return None;
    }
    let mut reason = String::from("This password would be too easy to guess");
    if let Some(feedback) = estimate.feedback() {
        if let Some(warning) = feedback.warning() {
            reason = format!("{reason}: {}", warning.to_string().trim_end_matches('.'));
        }
        reason.push('.');
        for suggestion in feedback.suggestions() {
            reason = format!("{reason} {suggestion}");
        }
    } else {
        reason.push('.');
    }
    Some(format!(
        "{reason} A passphrase of three or four random words is easy to remember and hard to guess."
    ))
}

/// Hash a password (slow by design: call it on the blocking pool).
pub fn hash(password: &str) -> Result<String, anyhow::Error> {
    let salt = SaltString::generate(&mut OsRng);
    ReusedMemory
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("hashing failed: {e}"))
}

fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| hash("dummy password for timing").unwrap_or_default())
}

/// Argon2 runs on its own threads, one per core, fed from a queue. Each computation takes
/// 19 MiB and tens of milliseconds of a core, so a burst of sign-ins queues here instead of
/// multiplying memory (64 at once would be 1.2 GiB) and starving the database work of the
/// blocking pool. Its own threads also keep the freed 19 MiB blocks in a couple of malloc
/// arenas that reuse them, where the blocking pool's many threads each kept a copy.
type Job = Box<dyn FnOnce() + Send>;

/// Jobs sent to the hashing threads and not yet taken by one.
static QUEUED: AtomicUsize = AtomicUsize::new(0);

fn hashing_queue() -> &'static Mutex<mpsc::Sender<Job>> {
    static QUEUE: OnceLock<Mutex<mpsc::Sender<Job>>> = OnceLock::new();
    QUEUE.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..std::thread::available_parallelism().map_or(2, usize::from) {
            let rx = Arc::clone(&rx);
            let spawned = std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || loop {
                    let job = rx.lock().unwrap_or_else(PoisonError::into_inner).recv();
                    match job {
                        Ok(job) => {
                            QUEUED.fetch_sub(1, Ordering::SeqCst);
                            job();
                            // Nothing waiting: the burst is over, so the memory goes back
                            // before this thread waits (for the queue's lock too, which an
                            // idle thread holds while it waits for work).
                            if QUEUED.load(Ordering::SeqCst) == 0 {
                                release_memory();
                            }
                        }
                        Err(_) => break,
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a password hashing thread");
            }
        }
        Mutex::new(tx)
    })
}

/// Run argon2 work on the hashing threads (see [`hashing_queue`]) and wait for it.
async fn bounded<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, anyhow::Error> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    QUEUED.fetch_add(1, Ordering::SeqCst);
    hashing_queue()
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .send(Box::new(move || {
            // The requester may have gone (a closed connection): nothing to tell.
            let _ = tx.send(work());
        }))
        .map_err(|_| anyhow::anyhow!("password hashing threads stopped"))?;
    rx.await
        .map_err(|_| anyhow::anyhow!("password hashing failed"))
}

/// [`hash`] from async code, on the hashing threads.
pub async fn hash_bounded(password: String) -> Result<String, anyhow::Error> {
    bounded(move || hash(&password)).await?
}

/// [`verify`] from async code, on the hashing threads; a failure to run is a no.
pub async fn verify_bounded(password: String, stored: Option<String>) -> bool {
    bounded(move || verify(&password, stored.as_deref()))
        .await
        .unwrap_or(false)
}

/// Check a password against a stored hash; with no hash (unknown user, or an invitation not
/// yet accepted) the same work is done against a dummy and the answer is no.
pub fn verify(password: &str, stored: Option<&str>) -> bool {
    let target = stored.unwrap_or_else(|| dummy_hash());
    let ok = PasswordHash::new(target)
        .map(|parsed| {
            ReusedMemory
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false);
    ok && stored.is_some()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_salted_and_verify() {
        let a = hash("correct horse battery staple").unwrap();
        let b = hash("correct horse battery staple").unwrap();
        assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{a}");
        assert_ne!(a, b, "salted");
        assert!(verify("correct horse battery staple", Some(&a)));
        assert!(!verify("correct horse battery stapler", Some(&a)));
        assert!(!verify("anything", None));
        assert!(!verify("anything", Some("not a hash")));
    }

    #[test]
    fn reused_memory_gives_argon2s_own_hashes_both_ways() {
        let plain = Argon2::new(Algorithm::Argon2id, Version::V0x13, params());
        let salt = SaltString::generate(&mut OsRng);
        let theirs = plain
            .hash_password(b"a passphrase", &salt)
            .unwrap()
            .to_string();
        let ours = ReusedMemory
            .hash_password(b"a passphrase", &salt)
            .unwrap()
            .to_string();
        assert_eq!(ours, theirs);
        assert!(verify("a passphrase", Some(&theirs)));
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(plain.verify_password(b"a passphrase", &parsed).is_ok());
        assert!(plain.verify_password(b"another", &parsed).is_err());
        // A hash made with other parameters still verifies with its own.
        let light = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(1024, 1, 1, None).unwrap(),
        );
        let other = light
            .hash_password(b"x passphrase", &salt)
            .unwrap()
            .to_string();
        assert!(verify("x passphrase", Some(&other)));
        assert!(!verify("y passphrase", Some(&other)));
    }

    #[test]
    fn policy_accepts_passphrases_and_refuses_the_obvious() {
        assert_eq!(
            policy_problem("correct horse battery staple", "a@b.nhs.uk", "Ann Lee"),
            None
        );
        assert_eq!(
            policy_problem(&"long passphrase ".repeat(40), "a@b.nhs.uk", "Ann Lee"),
            None
        );
        for bad in [
            "short",
            "password123",
            "Password2024!",
            "qwertyuiop",
            "aaaaaaaaaaaa",
            "Summer2026",
            "Qwerty12345",
            "Liverpool1892",
            "Password2026!",
        ] {
            assert!(
                policy_problem(bad, "a@b.nhs.uk", "Ann Lee").is_some(),
                "{bad} accepted"
            );
        }
        assert!(policy_problem("jane.smith-rocks", "jane.smith@x.nhs.uk", "J").is_some());
        assert!(policy_problem("I am JaneSmith ok", "js@x.nhs.uk", "Jane Smith").is_some());
        assert!(policy_problem(&"x".repeat(1001), "a@b", "c").is_some());
        let why = policy_problem("Qwerty12345", "a@b.nhs.uk", "Ann Lee").unwrap();
        assert!(
            why.starts_with("This password would be too easy to guess"),
            "{why}"
        );
        assert!(why.len() > 60, "a reason is given: {why}");
        for good in ["plum tractor velvet orbit", "another fine passphrase"] {
            assert_eq!(
                policy_problem(good, "a@b.nhs.uk", "Ann Lee"),
                None,
                "{good}"
            );
        }
    }
}
