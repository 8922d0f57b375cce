//! Single sign-on with OpenID Connect providers (NHS CIS2, an organisation's Entra ID): the
//! authorisation code flow with PKCE, state and nonce, through the maintained `openidconnect`
//! crate, which reads the provider's discovery document and checks the ID token's signature
//! against the keys the provider publishes (JWKS), its issuer, audience, expiry and nonce.
//!
//! Why each rule (docs/security.md, "Single sign-on"):
//! - A sign-in sent to a provider is a row in `sso_logins` holding the state's digest, the
//!   nonce and the PKCE verifier, bound to the browser that started it (the digest of a
//!   cookie) and expiring after [`LOGIN_MINUTES`]. The answer deletes the row before anything
//!   else (`DELETE … RETURNING`), so a replayed or raced callback finds nothing: single use
//!   holds across instances because it is the database's.
//! - An identity is (provider, subject), unique in the schema. On its first sign-in it is
//!   linked to the account whose email the provider vouches for (`email_verified` true), and
//!   only when an administrator has allowed that provider for that email's domain. The same
//!   allowance is needed at every later sign-in, so removing it stops the provider at once.
//! - No account is created unless an administrator has turned that on for the provider, and
//!   then with the least role (a contributor with no organisation: it reaches nothing until an
//!   administrator gives it one).
//! - The provider's `amr` (methods used) is not trusted to stand in for the second factor:
//!   a role that must have one still gives it here (the same session stages as a password).
//! - Nothing is cached: discovery and keys are read at each step, so a key rotation at the
//!   provider needs nothing here, and app servers stay stateless.

use chrono::{Duration, NaiveDateTime, Utc};
use diesel::prelude::*;
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet, EndpointNotSet,
    EndpointSet, IssuerUrl, Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope,
    TokenResponse,
};
use serde::Serialize;
use serde_json::json;

use crate::config::SsoProvider;
use crate::crypto;
use crate::db::schema::{
    sessions, sso_allowed_domains, sso_identities, sso_logins, sso_provider_settings, users,
};
use crate::db::{with_concrete_connection, DbConnection};
use crate::error::AppError;
use crate::services::audit::{self, Actor, Entry};
use crate::services::auth::roles::Role;
use crate::services::auth::users::User;

pub use openidconnect::reqwest;

/// How long a sign-in sent to a provider may take to come back.
pub const LOGIN_MINUTES: i64 = 10;
/// How long any one request to a provider may take.
const PROVIDER_TIMEOUT_SECS: u64 = 10;

/// Why talking to a provider did not give an identity.
#[derive(Debug)]
pub enum Failure {
    /// The provider could not be reached or answered nonsense: try again later (503).
    Unreachable(String),
    /// The provider's answer was refused: an ID token that failed a check (signature,
    /// audience, expiry, nonce), or the provider said no. The text is for the log.
    Rejected(String),
}

/// The HTTP client for providers: no redirects (the `openidconnect` crate's advice against
/// request forgery) and a timeout, so a provider that hangs cannot hold a worker.
pub fn http_client() -> Result<reqwest::Client, AppError> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(PROVIDER_TIMEOUT_SECS))
        .build()
        .map_err(|e| AppError::Internal(anyhow::anyhow!("HTTP client for sign-on: {e}")))
}

/// Where the provider sends people back to.
pub fn redirect_uri(base_url: &str, provider: &str) -> String {
    format!("{base_url}/login/sso/{provider}/callback")
}

/// The client discovery gives: its authorisation endpoint known, its token endpoint and
/// user-info endpoint as the provider published them.
type DiscoveredClient = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// Read the provider's discovery document (and its keys) and make the client for it, with
/// this service's credentials and redirect URI.
async fn discovered_client(
    provider: &SsoProvider,
    base_url: &str,
    http: &reqwest::Client,
) -> Result<DiscoveredClient, Failure> {
    let issuer = IssuerUrl::new(provider.issuer.clone())
        .map_err(|e| Failure::Unreachable(format!("issuer URL: {e}")))?;
    let metadata = CoreProviderMetadata::discover_async(issuer, http)
        .await
        .map_err(|e| Failure::Unreachable(format!("discovery at {}: {e}", provider.issuer)))?;
    let redirect = RedirectUrl::new(redirect_uri(base_url, &provider.key))
        .map_err(|e| Failure::Unreachable(format!("redirect URI: {e}")))?;
    Ok(CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(provider.client_id.clone()),
        Some(ClientSecret::new(
            provider.client_secret.expose().to_string(),
        )),
    )
    .set_redirect_uri(redirect))
}

/// What starting a sign-in gives: the provider's address to send the browser to, and the
/// secrets to keep until it comes back.
pub struct Started {
    pub authorize_url: String,
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
}

/// Discover the provider and build its authorisation request (scopes `openid email profile`,
/// PKCE S256, a new state and nonce).
pub async fn start(provider: &SsoProvider, base_url: &str) -> Result<Started, Failure> {
    let http = http_client().map_err(|e| Failure::Unreachable(e.to_string()))?;
    let client = discovered_client(provider, base_url, &http).await?;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("email".to_string()))
        .add_scope(Scope::new("profile".to_string()))
        .set_pkce_challenge(challenge)
        .url();
    Ok(Started {
        authorize_url: url.to_string(),
        state: state.secret().clone(),
        nonce: nonce.secret().clone(),
        pkce_verifier: verifier.secret().clone(),
    })
}

/// Keep a started sign-in until its answer, bound to the browser's `browser` cookie value.
/// Expired rows are cleared on the way, so abandoned sign-ins do not pile up.
pub fn store_login(
    conn: &mut DbConnection,
    provider: &str,
    started: &Started,
    browser: &str,
    next: &str,
) -> Result<(), AppError> {
    let now = Utc::now().naive_utc();
    diesel::delete(sso_logins::table.filter(sso_logins::expires_at.lt(now))).execute(conn)?;
    diesel::insert_into(sso_logins::table)
        .values((
            sso_logins::state_hash.eq(crypto::digest(&started.state)),
            sso_logins::browser_hash.eq(crypto::digest(browser)),
            sso_logins::provider.eq(provider),
            sso_logins::nonce.eq(&started.nonce),
            sso_logins::pkce_verifier.eq(&started.pkce_verifier),
            sso_logins::next_path.eq(next),
            sso_logins::created_at.eq(now),
            sso_logins::expires_at.eq(now + Duration::minutes(LOGIN_MINUTES)),
        ))
        .execute(conn)?;
    Ok(())
}

/// A sign-in that came back, taken out of storage.
#[derive(Debug, Clone)]
pub struct Pending {
    pub provider: String,
    pub nonce: String,
    pub pkce_verifier: String,
    pub next: String,
}

/// Take the sign-in `state` names, once: the row is deleted whatever happens next, and
/// `None` comes back when there is none (never started, used already, expired) or it was
/// started in another browser.
pub fn take_login(
    conn: &mut DbConnection,
    state: &str,
    browser: Option<&str>,
) -> Result<Option<Pending>, AppError> {
    let now = Utc::now().naive_utc();
    let taken: Option<(String, String, String, String, String, NaiveDateTime)> =
        diesel::delete(sso_logins::table.filter(sso_logins::state_hash.eq(crypto::digest(state))))
            .returning((
                sso_logins::browser_hash,
                sso_logins::provider,
                sso_logins::nonce,
                sso_logins::pkce_verifier,
                sso_logins::next_path,
                sso_logins::expires_at,
            ))
            .get_result(conn)
            .optional()?;
    Ok(taken.and_then(
        |(browser_hash, provider, nonce, pkce_verifier, next, expires)| {
            let same_browser = browser
                .is_some_and(|b| crypto::constant_time_eq(&crypto::digest(b), &browser_hash));
            (same_browser && expires > now).then_some(Pending {
                provider,
                nonce,
                pkce_verifier,
                next,
            })
        },
    ))
}

/// Who the provider says signed in, from a checked ID token.
#[derive(Debug, Clone)]
pub struct Identity {
    pub subject: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
}

/// Exchange the code (with the PKCE verifier) at the token endpoint and check the ID token:
/// signature by the provider's published keys, issuer, audience (this client), expiry and
/// the nonce this sign-in sent.
pub async fn finish(
    provider: &SsoProvider,
    base_url: &str,
    code: &str,
    pending: &Pending,
) -> Result<Identity, Failure> {
    let http = http_client().map_err(|e| Failure::Unreachable(e.to_string()))?;
    let client = discovered_client(provider, base_url, &http).await?;
    let request = client
        .exchange_code(AuthorizationCode::new(code.to_string()))
        .map_err(|e| Failure::Unreachable(format!("no token endpoint: {e}")))?
        .set_pkce_verifier(PkceCodeVerifier::new(pending.pkce_verifier.clone()));
    let response = request.request_async(&http).await.map_err(|e| {
        use openidconnect::RequestTokenError;
        match e {
            RequestTokenError::ServerResponse(r) => {
                Failure::Rejected(format!("token endpoint refused the code: {r}"))
            }
            other => Failure::Unreachable(format!("token endpoint: {other}")),
        }
    })?;
    let id_token = response
        .id_token()
        .ok_or_else(|| Failure::Rejected("the token response has no ID token".into()))?;
    let verifier = client.id_token_verifier();
    let claims = id_token
        .claims(&verifier, &Nonce::new(pending.nonce.clone()))
        .map_err(|e| Failure::Rejected(format!("ID token refused: {e}")))?;
    Ok(Identity {
        subject: claims.subject().as_str().to_string(),
        email: claims.email().map(|e| e.as_str().trim().to_lowercase()),
        email_verified: claims.email_verified() == Some(true),
        name: claims
            .name()
            .and_then(|n| n.get(None))
            .map(|n| n.as_str().trim().to_string())
            .filter(|n| !n.is_empty()),
    })
}

/// The provider's RP-initiated logout address (`end_session_endpoint` in its discovery
/// document), if it has one, with this service's client id and where to come back to.
pub async fn end_session_url(provider: &SsoProvider, base_url: &str) -> Option<String> {
    let http = http_client().ok()?;
    let address = format!("{}/.well-known/openid-configuration", provider.issuer);
    let body = http.get(address).send().await.ok()?.bytes().await.ok()?;
    let document: serde_json::Value = serde_json::from_slice(&body).ok()?;
    let endpoint = document.get("end_session_endpoint")?.as_str()?;
    let mut url = url::Url::parse(endpoint).ok()?;
    url.query_pairs_mut()
        .append_pair("client_id", &provider.client_id)
        .append_pair("post_logout_redirect_uri", &format!("{base_url}/"));
    Some(url.to_string())
}

/// The domain of an email address, lower-cased.
pub fn email_domain(email: &str) -> Option<String> {
    email
        .rsplit_once('@')
        .map(|(_, d)| d.trim().to_lowercase())
        .filter(|d| !d.is_empty())
}

pub fn domain_allowed(
    conn: &mut DbConnection,
    provider: &str,
    domain: &str,
) -> Result<bool, AppError> {
    Ok(sso_allowed_domains::table
        .filter(sso_allowed_domains::provider.eq(provider))
        .filter(sso_allowed_domains::domain.eq(domain))
        .count()
        .get_result::<i64>(conn)?
        > 0)
}

/// Whether an administrator lets `provider` create accounts.
pub fn creates_accounts(conn: &mut DbConnection, provider: &str) -> Result<bool, AppError> {
    Ok(sso_provider_settings::table
        .find(provider)
        .select(sso_provider_settings::create_accounts)
        .first::<bool>(conn)
        .optional()?
        .unwrap_or(false))
}

/// The answer to a checked identity: an account to sign in, or a refusal in words.
pub enum Outcome {
    SignIn(User),
    Refused(String),
}

/// Apply the linking rules to a checked identity from `provider` (see the module's doc),
/// linking or creating as they allow, audited. Runs in the caller's write transaction, so a
/// refusal stores nothing and two first sign-ins racing meet the schema's unique keys.
pub fn resolve(
    conn: &mut DbConnection,
    provider: &SsoProvider,
    identity: &Identity,
    ip: Option<&str>,
) -> Result<Outcome, AppError> {
    let now = Utc::now().naive_utc();
    let label = &provider.label;
    let linked: Option<(i64, User)> = sso_identities::table
        .inner_join(users::table)
        .filter(sso_identities::provider.eq(&provider.key))
        .filter(sso_identities::subject.eq(&identity.subject))
        .select((sso_identities::id, User::as_select()))
        .first(conn)
        .optional()?;
    if let Some((identity_id, user)) = linked {
        let allowed = match email_domain(&user.email) {
            Some(domain) => domain_allowed(conn, &provider.key, &domain)?,
            None => false,
        };
        if !user.active {
            return Ok(Outcome::Refused(format!(
                "Your account here has been deactivated, so you cannot sign in with {label}. Ask an administrator."
            )));
        }
        if !allowed {
            return Ok(Outcome::Refused(format!(
                "Signing in with {label} is no longer allowed for your email address. Sign in with your email address and password, or ask an administrator."
            )));
        }
        diesel::update(sso_identities::table.find(identity_id))
            .set(sso_identities::last_sign_in_at.eq(Some(now)))
            .execute(conn)?;
        return Ok(Outcome::SignIn(user));
    }
    let Some(email) = identity.email.clone() else {
        return Ok(Outcome::Refused(format!(
            "{label} did not tell us your email address, so we cannot tell which account is yours."
        )));
    };
    if !identity.email_verified {
        return Ok(Outcome::Refused(format!(
            "{label} has not confirmed that {email} is your email address, so it cannot be used to sign in here. Sign in with your email address and password."
        )));
    }
    let Some(domain) = email_domain(&email) else {
        return Ok(Outcome::Refused(format!(
            "{label} gave an email address we cannot read."
        )));
    };
    if !domain_allowed(conn, &provider.key, &domain)? {
        return Ok(Outcome::Refused(format!(
            "Signing in with {label} is not allowed for email addresses ending @{domain}. Sign in with your email address and password, or ask an administrator to allow it."
        )));
    }
    let actor = |user: &User| Actor {
        user_id: Some(user.id),
        label: user.email.clone(),
        ip: ip.map(str::to_string),
    };
    let user = match crate::services::auth::users::find_by_email(conn, &email)? {
        Some(user) if !user.active => {
            return Ok(Outcome::Refused(format!(
                "Your account here has been deactivated, so you cannot sign in with {label}. Ask an administrator."
            )));
        }
        Some(user) => user,
        None if creates_accounts(conn, &provider.key)? => {
            let user = create_account(conn, &email, identity.name.as_deref(), now)?;
            audit::record(
                conn,
                &actor(&user),
                Entry::new("user.sso_created", "user", user.id).after(json!({
                    "provider": provider.key,
                    "role": user.role,
                })),
            )?;
            user
        }
        None => {
            return Ok(Outcome::Refused(format!(
                "There is no account for {email} here, so you cannot sign in with {label}. Ask your organisation's approver or an administrator to invite you."
            )));
        }
    };
    let inserted = with_concrete_connection!(conn, c => {
        diesel::insert_into(sso_identities::table)
            .values((
                sso_identities::provider.eq(&provider.key),
                sso_identities::subject.eq(&identity.subject),
                sso_identities::user_id.eq(user.id),
                sso_identities::email.eq(&email),
                sso_identities::linked_at.eq(now),
                sso_identities::last_sign_in_at.eq(Some(now)),
            ))
            .on_conflict_do_nothing()
            .execute(c)?
    });
    if inserted != 1 {
        // The subject was linked meanwhile (a parallel first sign-in), or the account already
        // has another identity at this provider: either way, not this one.
        return Ok(Outcome::Refused(format!(
            "Your account here is already linked to a different {label} identity. Ask an administrator."
        )));
    }
    audit::record(
        conn,
        &actor(&user),
        Entry::new("user.sso_linked", "user", user.id)
            .organisation(user.organisation_id)
            .after(json!({"provider": provider.key, "email": email})),
    )?;
    Ok(Outcome::SignIn(user))
}

/// A new account for a first sign-in, with the least role: a contributor of no organisation
/// yet, which the policy lets reach nothing until an administrator gives it one.
fn create_account(
    conn: &mut DbConnection,
    email: &str,
    name: Option<&str>,
    now: NaiveDateTime,
) -> Result<User, AppError> {
    let name: String = name.unwrap_or(email).chars().take(200).collect();
    let id: i64 = diesel::insert_into(users::table)
        .values((
            users::email.eq(email),
            users::name.eq(&name),
            users::role.eq(Role::OrgContributor.as_str()),
            users::active.eq(true),
            users::created_at.eq(now),
            users::updated_at.eq(now),
        ))
        .returning(users::id)
        .get_result(conn)?;
    crate::services::auth::users::find(conn, id)?
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("account {id} vanished as it was made")))
}

/// Mark the session behind `token` as signed in with `provider`, so signing out can offer
/// the provider's own sign-out.
pub fn mark_session(conn: &mut DbConnection, token: &str, provider: &str) -> Result<(), AppError> {
    diesel::update(sessions::table.filter(sessions::token_hash.eq(crypto::digest(token))))
        .set(sessions::sso_provider.eq(Some(provider)))
        .execute(conn)?;
    Ok(())
}

/// The providers an account has a linked identity at.
pub fn linked_providers(conn: &mut DbConnection, user_id: i64) -> Result<Vec<String>, AppError> {
    Ok(sso_identities::table
        .filter(sso_identities::user_id.eq(user_id))
        .select(sso_identities::provider)
        .load(conn)?)
}

/// An account's linked identity, for its owner's and administrators' pages.
#[derive(Debug, Clone, Serialize)]
pub struct Linked {
    pub provider: String,
    pub email: String,
    pub linked_at: NaiveDateTime,
    pub last_sign_in_at: Option<NaiveDateTime>,
}

/// The account's linked identities, by provider.
pub fn linked(conn: &mut DbConnection, user_id: i64) -> Result<Vec<Linked>, AppError> {
    let rows: Vec<(String, String, NaiveDateTime, Option<NaiveDateTime>)> = sso_identities::table
        .filter(sso_identities::user_id.eq(user_id))
        .order(sso_identities::provider)
        .select((
            sso_identities::provider,
            sso_identities::email,
            sso_identities::linked_at,
            sso_identities::last_sign_in_at,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(provider, email, linked_at, last_sign_in_at)| Linked {
            provider,
            email,
            linked_at,
            last_sign_in_at,
        })
        .collect())
}

/// Remove the account's identity at `provider` (its owner, or an administrator), audited; the
/// account's other sessions signed in through that provider end. The person's own removal of
/// the last way they can sign in (no password and no other identity) is refused: they would be
/// locked out. An administrator may (the person then needs a password reset). `NotFound` when
/// the account has no identity there.
pub fn unlink(
    conn: &mut DbConnection,
    actor: &Actor,
    user: &User,
    provider: &str,
    by_owner: Option<i64>,
) -> Result<(), AppError> {
    let linked = linked(conn, user.id)?;
    let Some(found) = linked.iter().find(|l| l.provider == provider) else {
        return Err(AppError::NotFound);
    };
    if by_owner.is_some() && user.password_hash.is_none() && linked.len() == 1 {
        return Err(AppError::Conflict(
            "This is the only way you sign in. Set a password first (\"Forgotten your password?\" on the sign-in page sends a link), then unlink it.".into(),
        ));
    }
    diesel::delete(
        sso_identities::table
            .filter(sso_identities::user_id.eq(user.id))
            .filter(sso_identities::provider.eq(provider)),
    )
    .execute(conn)?;
    let mut ended = sessions::table
        .filter(sessions::user_id.eq(user.id))
        .filter(sessions::sso_provider.eq(provider))
        .into_boxed();
    if let Some(current) = by_owner {
        ended = ended.filter(sessions::id.ne(current));
    }
    let ended: Vec<i64> = ended.select(sessions::id).load(conn)?;
    let signed_out =
        diesel::delete(sessions::table.filter(sessions::id.eq_any(&ended))).execute(conn)?;
    audit::record(
        conn,
        actor,
        Entry::new("sso.unlink", "user", user.id).before(json!({
            "provider": provider, "email": found.email, "sessions_ended": signed_out,
        })),
    )?;
    Ok(())
}

/// One allowed (provider, domain) pair, for the administrators' page.
#[derive(Debug, Clone, Queryable, Serialize)]
pub struct AllowedDomain {
    pub id: i64,
    pub provider: String,
    pub domain: String,
    pub created_at: NaiveDateTime,
}

pub fn allowed_domains(conn: &mut DbConnection) -> Result<Vec<AllowedDomain>, AppError> {
    Ok(sso_allowed_domains::table
        .select((
            sso_allowed_domains::id,
            sso_allowed_domains::provider,
            sso_allowed_domains::domain,
            sso_allowed_domains::created_at,
        ))
        .order((sso_allowed_domains::provider, sso_allowed_domains::domain))
        .load(conn)?)
}

/// An email domain as typed: lower-cased, without a leading `@`; letters, digits, dots and
/// hyphens, with at least one dot.
pub fn parse_domain(typed: &str) -> Result<String, String> {
    let domain = typed.trim().trim_start_matches('@').to_lowercase();
    let valid = !domain.is_empty()
        && domain.len() <= 253
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && domain
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
    if valid {
        Ok(domain)
    } else {
        Err("Enter an email domain, like nhs.net".into())
    }
}

/// Allow `provider` to sign in accounts whose email ends `@domain`. The pair is unique in
/// the schema: of two administrators adding it at once, one is told it is there already.
pub fn allow_domain(
    conn: &mut DbConnection,
    actor: &Actor,
    provider: &str,
    domain: &str,
) -> Result<(), AppError> {
    let now = Utc::now().naive_utc();
    let inserted = with_concrete_connection!(conn, c => {
        diesel::insert_into(sso_allowed_domains::table)
            .values((
                sso_allowed_domains::provider.eq(provider),
                sso_allowed_domains::domain.eq(domain),
                sso_allowed_domains::created_by.eq(actor.user_id),
                sso_allowed_domains::created_at.eq(now),
            ))
            .on_conflict_do_nothing()
            .execute(c)?
    });
    if inserted != 1 {
        return Err(AppError::Conflict(format!(
            "Signing in with this provider is already allowed for @{domain}."
        )));
    }
    audit::record(
        conn,
        actor,
        Entry::new("sso.domain_allowed", "sso_provider", provider).after(json!({"domain": domain})),
    )
}

pub fn remove_domain(conn: &mut DbConnection, actor: &Actor, id: i64) -> Result<(), AppError> {
    let removed: Option<(String, String)> = diesel::delete(sso_allowed_domains::table.find(id))
        .returning((sso_allowed_domains::provider, sso_allowed_domains::domain))
        .get_result(conn)
        .optional()?;
    let (provider, domain) = removed.ok_or(AppError::NotFound)?;
    audit::record(
        conn,
        actor,
        Entry::new("sso.domain_removed", "sso_provider", &provider)
            .before(json!({"domain": domain})),
    )
}

/// Turn account creation by `provider` on or off.
pub fn set_creates_accounts(
    conn: &mut DbConnection,
    actor: &Actor,
    provider: &str,
    on: bool,
) -> Result<(), AppError> {
    let now = Utc::now().naive_utc();
    with_concrete_connection!(conn, c => {
        diesel::insert_into(sso_provider_settings::table)
            .values((
                sso_provider_settings::provider.eq(provider),
                sso_provider_settings::create_accounts.eq(on),
                sso_provider_settings::updated_at.eq(now),
            ))
            .on_conflict(sso_provider_settings::provider)
            .do_update()
            .set((
                sso_provider_settings::create_accounts.eq(on),
                sso_provider_settings::updated_at.eq(now),
            ))
            .execute(c)?
    });
    audit::record(
        conn,
        actor,
        Entry::new("sso.create_accounts", "sso_provider", provider)
            .after(json!({"create_accounts": on})),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn domains_are_parsed_strictly() {
        assert_eq!(parse_domain(" @NHS.net ").unwrap(), "nhs.net");
        for bad in [
            "", "nhs", ".nhs.net", "nhs..net", "nhs.net.", "a b.net", "x@y.net",
        ] {
            assert!(parse_domain(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_email_domain_is_what_follows_the_last_at() {
        assert_eq!(
            email_domain("A@Example.NHS.uk").as_deref(),
            Some("example.nhs.uk")
        );
        assert_eq!(email_domain("nobody"), None);
    }
}
