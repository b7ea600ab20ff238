//! [`TokenSession`]: logging in once and keeping an expiring access token fresh.
//!
//! Many vendor APIs hand out an access token at login and want it on every call
//! until it expires. Getting that right under concurrent calls is the same work for
//! every vendor, and it is written here once:
//!
//! - **Login once.** The first call logs in; every later call reuses the token.
//! - **Renew before expiry**, with a safety margin (a fifth of the token's
//!   lifetime, at most [`max_margin`](TokenSession::max_margin)), so that no call
//!   leaves with a token about to expire.
//! - **Single flight.** Logging in and renewing happen under one lock: concurrent
//!   callers wait for the one renewal in progress instead of starting their own
//!   (which matters where a refresh token may be used only once).
//! - **One renewal, one retry after a refusal.** When the vendor refuses a token
//!   (HTTP 401), the token is renewed once (unless another caller already did) and
//!   the call sent once more. A second refusal is
//!   [`AuthRefused`](crate::ErrorKind::AuthRefused): the session is forgotten, calls
//!   fail at once, and only [`ensure`](TokenSession::ensure) (the host's `check`)
//!   logs in again, so a refused run never quietly logs in behind the host.
//!
//! The vendor's part is a [`TokenSource`]: how to log in, and how to renew. Both
//! renewal styles fit: a **refresh token** (the source keeps it in the grant's
//! `renewal` and sends it to the vendor's refresh endpoint), or **logging in
//! again** (client credentials, an API login that says `expires_in`: the default
//! [`renew`](TokenSource::renew) does that).
//!
//! The token is taken only when the call is ready to leave: `rekey-http`'s
//! `VendorHttp::send_with_token` waits for the target's rate limit first, then
//! takes the token ([`call_admitted`](TokenSession::call_admitted)), so a token
//! never waits in a queue until it expires.

use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::{ConnectorError, ErrorKind, Secret};

/// A token as a login or a renewal returned it.
#[derive(Debug, Clone)]
pub struct Grant<R = ()> {
    /// The access token sent with each call.
    pub token: Secret,
    /// How long the token lives from now, when the vendor says; otherwise the
    /// session's [`default_lifetime`](TokenSession::default_lifetime).
    pub lifetime: Option<Duration>,
    /// What renewing takes besides the token: a refresh token, or `()` when
    /// renewing logs in again.
    pub renewal: R,
}

impl Grant {
    /// A token living `lifetime` (`None`: unknown), renewed by logging in again.
    pub fn new(token: Secret, lifetime: Option<Duration>) -> Self {
        Grant {
            token,
            lifetime,
            renewal: (),
        }
    }
}

impl<R> Grant<R> {
    /// The same token, renewed with `renewal` (a refresh token, say).
    pub fn with_renewal<S>(self, renewal: S) -> Grant<S> {
        Grant {
            token: self.token,
            lifetime: self.lifetime,
            renewal,
        }
    }
}

/// What many vendors' logins answer, in the shape of an OAuth 2.0 token reply
/// (`access_token`, `expires_in` seconds, perhaps `refresh_token`; other fields
/// are ignored): read it from the reply's JSON, and turn it into a [`Grant`].
///
/// ```
/// use std::time::Duration;
/// use rekey_api::{Grant, TokenReply};
///
/// let json = r#"{"access_token": "t-1", "token_type": "Bearer", "expires_in": 3600}"#;
/// let reply: TokenReply = serde_json::from_str(json).unwrap();
/// let grant: Grant = reply.into();
/// assert_eq!(grant.lifetime, Some(Duration::from_secs(3600)));
/// ```
///
/// A source that renews with the refresh token keeps it:
/// `Grant::from(reply).with_renewal(refresh_token)`.
#[derive(Debug, Deserialize)]
pub struct TokenReply {
    /// The access token.
    pub access_token: Secret,
    /// How long the token lives, in seconds, when the vendor says.
    #[serde(default)]
    pub expires_in: Option<u64>,
    /// A token to renew the access token with, when the vendor gives one.
    #[serde(default)]
    pub refresh_token: Option<Secret>,
}

impl From<TokenReply> for Grant {
    fn from(reply: TokenReply) -> Grant {
        Grant::new(
            reply.access_token,
            reply.expires_in.map(Duration::from_secs),
        )
    }
}

/// How a vendor gives out tokens: the connector's part of a [`TokenSession`].
///
/// Both methods classify their failures: a refusal of the credentials (or of the
/// refresh token) is [`AuthRefused`](crate::ErrorKind::AuthRefused); a failure to
/// reach the vendor stays [`Transient`](crate::ErrorKind::Transient), and the
/// session keeps its token to try again.
#[async_trait]
pub trait TokenSource: Send + Sync {
    /// What a grant carries for its renewal: a refresh token, or `()` when renewal
    /// logs in again.
    type Renewal: Send + Sync;

    /// Logs in with the connector's own credentials.
    async fn login(&self) -> Result<Grant<Self::Renewal>, ConnectorError>;

    /// Renews the `current` grant, shortly before it expires or after the vendor
    /// refused its token. The default logs in again (client credentials).
    async fn renew(
        &self,
        current: &Grant<Self::Renewal>,
    ) -> Result<Grant<Self::Renewal>, ConnectorError> {
        let _ = current;
        self.login().await
    }
}

/// One attempt of a call made with a token.
#[derive(Debug)]
pub enum Attempt<T> {
    /// The vendor answered (anything but a refusal of the token).
    Done(T),
    /// The vendor refused the token (HTTP 401); the text says where, for the
    /// message should the renewed token be refused too.
    Refused(String),
    /// Nothing was sent: the admission the attempt had waited for was used up
    /// before it could leave (a login or renewal went out in its rate-limit slot).
    /// The session admits the call again and hands it a fresh token.
    Readmit,
}

/// A token handed to one call, with the generation it belongs to (so that a
/// refusal renews it only if nobody else has).
#[derive(Debug, Clone)]
pub struct Lease {
    token: Secret,
    generation: u64,
}

impl Lease {
    /// The token.
    pub fn token(&self) -> &Secret {
        &self.token
    }
}

/// A logged-in session with a vendor: see the [module docs](self).
///
/// ```
/// use std::time::Duration;
/// use async_trait::async_trait;
/// use rekey_api::{Attempt, ConnectorError, Grant, TokenSession, TokenSource};
///
/// /// An API that logs in with a client id and secret and says `expires_in`.
/// struct ClientCredentials;
///
/// #[async_trait]
/// impl TokenSource for ClientCredentials {
///     type Renewal = ();
///     async fn login(&self) -> Result<Grant, ConnectorError> {
///         // POST /oauth/token here, reading `access_token` and `expires_in`.
///         Ok(Grant::new("token-1".into(), Some(Duration::from_secs(3600))))
///     }
///     // No `renew`: the default logs in again.
/// }
///
/// # async fn demo() -> Result<(), ConnectorError> {
/// let session = TokenSession::new(ClientCredentials);
/// let status = session
///     .call(|token| async move {
///         // Send the request with `token` here; a 401 is `Attempt::Refused`.
///         assert_eq!(token.expose(), "token-1");
///         Ok(Attempt::Done(200))
///     })
///     .await?;
/// assert_eq!(status, 200);
/// # Ok(()) }
/// # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
/// ```
pub struct TokenSession<S: TokenSource> {
    source: S,
    default_lifetime: Duration,
    max_margin: Duration,
    state: Mutex<State<S::Renewal>>,
}

struct State<R> {
    held: Option<Held<R>>,
    /// Bumped whenever the token changes; never reset, even by a new login.
    generation: u64,
    /// The vendor refused the session: only `ensure` logs in again.
    refused: bool,
}

struct Held<R> {
    grant: Grant<R>,
    renew_at: Instant,
}

impl<S: TokenSource> std::fmt::Debug for TokenSession<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSession")
            .field("default_lifetime", &self.default_lifetime)
            .field("max_margin", &self.max_margin)
            .finish_non_exhaustive()
    }
}

impl<S: TokenSource> TokenSession<S> {
    /// A session that is not logged in yet. Tokens of unknown lifetime are renewed
    /// after 15 minutes; renewal comes a fifth of a token's lifetime early, at most
    /// a minute.
    pub fn new(source: S) -> Self {
        TokenSession {
            source,
            default_lifetime: Duration::from_secs(15 * 60),
            max_margin: Duration::from_secs(60),
            state: Mutex::new(State {
                held: None,
                generation: 0,
                refused: false,
            }),
        }
    }

    /// How long a token lives when its grant does not say.
    pub fn default_lifetime(mut self, lifetime: Duration) -> Self {
        self.default_lifetime = lifetime;
        self
    }

    /// The most a token is renewed ahead of its expiry.
    pub fn max_margin(mut self, margin: Duration) -> Self {
        self.max_margin = margin;
        self
    }

    /// The vendor's side.
    pub fn source(&self) -> &S {
        &self.source
    }

    /// Logs in unless holding a token (also after the vendor refused the session),
    /// and renews the token if it is due: for the connector's `check`.
    pub async fn ensure(&self) -> Result<Lease, ConnectorError> {
        let mut state = self.state.lock().await;
        self.fresh(&mut state, true).await
    }

    /// A token fresh enough to send now, logging in the first time and renewing
    /// it when due.
    pub async fn lease(&self) -> Result<Lease, ConnectorError> {
        let mut state = self.state.lock().await;
        self.fresh(&mut state, false).await
    }

    /// After the vendor refused `lease`'s token: renews it, unless another caller
    /// already did since.
    pub async fn renew_refused(&self, lease: &Lease) -> Result<(), ConnectorError> {
        let mut state = self.state.lock().await;
        if state.held.is_none() {
            return Err(logged_out());
        }
        if state.generation != lease.generation {
            return Ok(());
        }
        tracing::debug!("the token was refused; renewing it once");
        self.renew(&mut state).await
    }

    /// Forgets the session after the vendor refused a freshly renewed token of
    /// `lease` (unless the token has changed since): calls fail until
    /// [`ensure`](Self::ensure) logs in again.
    pub async fn forget(&self, lease: &Lease) {
        let mut state = self.state.lock().await;
        if state.generation == lease.generation {
            state.held = None;
            state.refused = true;
        }
    }

    /// Runs `attempt` with a fresh token; when it reports the token refused,
    /// renews the token once and runs it once more. The attempt classifies
    /// everything else itself.
    pub async fn call<T, F, Fut>(&self, attempt: F) -> Result<T, ConnectorError>
    where
        F: FnMut(Secret) -> Fut,
        Fut: Future<Output = Result<Attempt<T>, ConnectorError>>,
    {
        self.call_admitted(|| std::future::ready(()), attempt).await
    }

    /// [`call`](Self::call), awaiting `admit` (a rate limiter) before each attempt
    /// takes its token, so that the token is as fresh as can be when it leaves. An
    /// attempt whose admission was used up on the way (by a login or renewal)
    /// answers [`Attempt::Readmit`] and is admitted again.
    pub async fn call_admitted<T, A, AFut, F, Fut>(
        &self,
        mut admit: A,
        mut attempt: F,
    ) -> Result<T, ConnectorError>
    where
        A: FnMut() -> AFut,
        AFut: Future<Output = ()>,
        F: FnMut(Secret) -> Fut,
        Fut: Future<Output = Result<Attempt<T>, ConnectorError>>,
    {
        let mut renewed = false;
        loop {
            admit().await;
            let lease = self.lease().await?;
            match attempt(lease.token.clone()).await? {
                Attempt::Done(value) => return Ok(value),
                Attempt::Readmit => {}
                Attempt::Refused(_) if !renewed => {
                    self.renew_refused(&lease).await?;
                    renewed = true;
                }
                Attempt::Refused(detail) => {
                    self.forget(&lease).await;
                    return Err(ConnectorError::auth_refused(format!(
                        "{detail}: the vendor refused a freshly renewed token"
                    )));
                }
            }
        }
    }

    async fn fresh(
        &self,
        state: &mut State<S::Renewal>,
        relogin: bool,
    ) -> Result<Lease, ConnectorError> {
        match &state.held {
            None if state.refused && !relogin => return Err(logged_out()),
            None => {
                let grant = self.source.login().await?;
                self.hold(state, grant);
            }
            Some(held) if Instant::now() >= held.renew_at => {
                tracing::debug!("the token is due for renewal");
                self.renew(state).await?;
            }
            Some(_) => {}
        }
        let held = state.held.as_ref().ok_or_else(logged_out)?;
        Ok(Lease {
            token: held.grant.token.clone(),
            generation: state.generation,
        })
    }

    /// Renews the held grant. A refusal forgets the session.
    async fn renew(&self, state: &mut State<S::Renewal>) -> Result<(), ConnectorError> {
        let held = state.held.as_ref().ok_or_else(logged_out)?;
        match self.source.renew(&held.grant).await {
            Ok(grant) => {
                self.hold(state, grant);
                Ok(())
            }
            Err(error) => {
                if error.kind == ErrorKind::AuthRefused {
                    state.held = None;
                    state.refused = true;
                }
                Err(error)
            }
        }
    }

    fn hold(&self, state: &mut State<S::Renewal>, grant: Grant<S::Renewal>) {
        let lifetime = grant.lifetime.unwrap_or(self.default_lifetime);
        let margin = (lifetime / 5).min(self.max_margin);
        tracing::debug!(
            lifetime_s = lifetime.as_secs_f64(),
            margin_s = margin.as_secs_f64(),
            "got a token"
        );
        state.held = Some(Held {
            grant,
            renew_at: Instant::now() + lifetime.saturating_sub(margin),
        });
        state.generation += 1;
        state.refused = false;
    }
}

fn logged_out() -> ConnectorError {
    ConnectorError::auth_refused(
        "the vendor refused the session; it logs in again at the next check",
    )
}

#[cfg(test)]
mod tests;
