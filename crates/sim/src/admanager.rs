//! ManageEngine ADManager Plus simulator, legacy REST API (vendor-apis.md §4.6).
//!
//! - `GET|POST /RestAPI/{ResetPwd,UnlockUser,SearchUser,GetAuthInfo,APIAuthToken}`,
//!   parameters from the query string and, on a `POST` of
//!   `application/x-www-form-urlencoded`, from the body (strictly decoded; any
//!   other body is ignored, as a servlet does). `isEncoded=true` means `pwd` and
//!   `inputFormat` are Base64.
//! - Every logical failure is HTTP 200. A refused request is one object
//!   `{"SEVERITY":"SEVERE","STATUS_MESSAGE":..,"ERROR_CODE":..}`: a bad token
//!   [`ERROR_CODE_AUTH`], a missing or bad parameter or unknown domain
//!   [`ERROR_CODE_REQUEST`], a spent quota [`ERROR_CODE_QUOTA`].
//! - ResetPwd and UnlockUser answer one object per `inputFormat` entry:
//!   `userPrincipalName, sAMAccountName, objectSID, objectGUID, distinguishedName,
//!   statusMessage, status ("1"|"0"), reset ("yes"|"no")`, or, in the
//!   [`ReplyShape::Seed`] of the vendor's own documented sample, the ids and
//!   `statusMessage` only ("Successfully modified." on success). Accounts are
//!   found by any of the seven attributes, case-insensitively; the password policy
//!   and unknown users fail per item. Messages hold HTML entities and can be
//!   Spanish.
//! - The daily quota counts successful objects per UTC day of the [`SimClock`]
//!   (the `Date` header follows it); SearchUser, GetAuthInfo and APIAuthToken are
//!   not counted.
//!
//! [`SimClock`]: crate::SimClock

mod changes;
mod directory;
mod params;
mod reads;
mod texts;

#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use axum::routing::get;
use base64::Engine as _;
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::json;
use time::{Date, OffsetDateTime};

use self::changes::{reset_pwd, unlock_user};
use self::directory::Account;
pub use self::directory::AdPolicy;
use self::params::Params;
use self::reads::{api_auth_token, get_auth_info, search_user};
pub use self::texts::Locale;
use self::texts::{Texts, quoted};
use crate::common::{Behaviour, Common, SimServer, json_response, lock};

/// `ERROR_CODE` of a refused authtoken ("Product to Product Authentication Failure").
pub const ERROR_CODE_AUTH: &str = "00000003";
/// `ERROR_CODE` of a request that cannot be processed (missing or bad parameter).
pub const ERROR_CODE_REQUEST: &str = "00000002";
/// `ERROR_CODE` of a spent daily quota (the real one is unknown: \[INF\]).
pub const ERROR_CODE_QUOTA: &str = "00000429";

/// How a spent quota is refused.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum QuotaRefusal {
    /// A SEVERE envelope with [`ERROR_CODE_QUOTA`] for a request that arrives
    /// when the quota is spent; items beyond the quota within a request still fail
    /// one by one.
    #[default]
    Envelope,
    /// Per-item failures (`status:"0"`, with `ERROR_CODE` [`ERROR_CODE_QUOTA`]).
    PerItem,
}

/// The shape of ResetPwd's and UnlockUser's per-user results.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ReplyShape {
    /// `statusMessage` with `status` (`"1"`/`"0"`) and `reset` (`"yes"`/`"no"`),
    /// as production builds answer (vendor-apis.md §4.2, production logs).
    #[default]
    Status,
    /// The vendor's documented sample (seed 003, vendor-apis.md §5): the
    /// account's ids and `statusMessage` only, `"Successfully modified."` on
    /// success; no `status`, no `reset`. A failure is told by its message alone
    /// (a quota refusal still carries its `ERROR_CODE`).
    Seed,
}

/// How to set up the simulated server.
#[derive(Debug, Clone)]
pub struct AdManagerConfig {
    /// The AD domain's DNS name.
    pub domain: String,
    /// The valid technician authtoken.
    pub auth_token: String,
    /// The technician's sAMAccountName (an account of the domain too).
    pub technician: String,
    /// The technician's password (for the legacy `APIAuthToken`).
    pub technician_password: String,
    /// Ordinary users: `user00001` and on.
    pub users: usize,
    /// More users: (sAMAccountName, display name), for awkward characters.
    pub extra_users: Vec<(String, String)>,
    /// Successful objects a day (50 per help-desk technician licence).
    pub daily_limit: usize,
    /// How a spent quota is refused.
    pub quota_refusal: QuotaRefusal,
    /// The password policy.
    pub policy: AdPolicy,
    /// The language of the messages.
    pub locale: Locale,
    /// The shape of the per-user results.
    pub reply_shape: ReplyShape,
    /// Whether the build serves GetAuthInfo (evidenced by one client only).
    pub get_auth_info: bool,
    /// Latency and faults.
    pub behaviour: Behaviour,
    /// Port to listen on (0: any free port).
    pub port: u16,
}

impl Default for AdManagerConfig {
    fn default() -> Self {
        AdManagerConfig {
            domain: "example.com".into(),
            auth_token: "a70d9e6c-4167-4de4-a6a1-3b3aff50c82e".into(),
            technician: "helpdesk".into(),
            technician_password: "Helpdesk-Passw0rd!".into(),
            users: 20,
            extra_users: Vec::new(),
            daily_limit: 50,
            quota_refusal: QuotaRefusal::default(),
            policy: AdPolicy::default(),
            locale: Locale::default(),
            reply_shape: ReplyShape::default(),
            get_auth_info: true,
            behaviour: Behaviour::default(),
            port: 0,
        }
    }
}

#[derive(Debug)]
struct Inner {
    accounts: Vec<Account>,
    tokens: HashSet<String>,
    quota_day: Option<Date>,
    quota_used: usize,
    reset_requests: usize,
    rng: StdRng,
}

#[derive(Debug)]
struct Shared {
    common: Arc<Common>,
    config: AdManagerConfig,
    inner: Mutex<Inner>,
}

/// A running ADManager Plus simulator.
#[derive(Debug)]
pub struct AdManagerSim {
    server: SimServer,
    shared: Arc<Shared>,
}

impl AdManagerSim {
    /// Starts the simulator on 127.0.0.1. Must be called inside a tokio runtime.
    pub async fn start(config: AdManagerConfig) -> std::io::Result<Self> {
        let mut accounts = vec![Account::new(
            0,
            &config.technician,
            "Help Desk",
            &config.domain,
        )];
        accounts.extend((1..=config.users).map(|i| {
            Account::new(
                i,
                &format!("user{i:05}"),
                &format!("User {i}"),
                &config.domain,
            )
        }));
        for (i, (sam, display)) in config.extra_users.iter().enumerate() {
            accounts.push(Account::new(
                config.users + 1 + i,
                sam,
                display,
                &config.domain,
            ));
        }
        let common = Common::new(config.behaviour.clone());
        let shared = Arc::new(Shared {
            common: Arc::clone(&common),
            inner: Mutex::new(Inner {
                accounts,
                tokens: HashSet::from([config.auth_token.clone()]),
                quota_day: None,
                quota_used: 0,
                reset_requests: 0,
                rng: StdRng::seed_from_u64(config.behaviour.seed ^ 0xad),
            }),
            config,
        });
        let mut router = Router::new()
            .route("/RestAPI/ResetPwd", get(reset_pwd).post(reset_pwd))
            .route("/RestAPI/UnlockUser", get(unlock_user).post(unlock_user))
            .route("/RestAPI/SearchUser", get(search_user).post(search_user))
            .route(
                "/RestAPI/APIAuthToken",
                get(api_auth_token).post(api_auth_token),
            );
        if shared.config.get_auth_info {
            router = router.route(
                "/RestAPI/GetAuthInfo",
                get(get_auth_info).post(get_auth_info),
            );
        }
        let router = router.with_state(Arc::clone(&shared));
        let server = SimServer::start(shared.config.port, router, common).await?;
        Ok(AdManagerSim { server, shared })
    }

    /// The server's root URL.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &AdManagerConfig {
        &self.shared.config
    }

    /// Latency, faults, request log and clock.
    pub fn common(&self) -> &Common {
        &self.shared.common
    }

    /// Every account's sAMAccountName, the technician's first.
    pub fn users(&self) -> Vec<String> {
        lock(&self.shared.inner)
            .accounts
            .iter()
            .map(|a| a.sam.clone())
            .collect()
    }

    /// An account's value of a lookup attribute (`mail`, `objectGUID`, ...), by
    /// sAMAccountName.
    pub fn attribute(&self, sam: &str, name: &str) -> Option<String> {
        self.with_account(sam, |a| {
            a.attribute(&name.to_lowercase()).map(str::to_owned)
        })
        .flatten()
    }

    /// An account's current password, by sAMAccountName.
    pub fn password(&self, sam: &str) -> Option<String> {
        self.with_account(sam, |a| a.password.clone())
    }

    /// Every password set for an account through the API, in order.
    pub fn history(&self, sam: &str) -> Vec<String> {
        self.with_account(sam, |a| a.history.clone())
            .unwrap_or_default()
    }

    /// The last `mustChangePassword` sent for an account, if any.
    pub fn must_change(&self, sam: &str) -> Option<bool> {
        self.with_account(sam, |a| a.must_change).flatten()
    }

    /// Locks an account out (for UnlockUser).
    pub fn lock_out(&self, sam: &str) {
        let mut inner = lock(&self.shared.inner);
        if let Some(account) = inner
            .accounts
            .iter_mut()
            .find(|a| a.has("samaccountname", sam))
        {
            account.locked = true;
        }
    }

    /// Whether an account is locked out.
    pub fn is_locked(&self, sam: &str) -> bool {
        self.with_account(sam, |a| a.locked).unwrap_or(false)
    }

    /// Successful objects counted on the simulator's current day.
    pub fn quota_used_today(&self) -> usize {
        let today = self.shared.today();
        let inner = lock(&self.shared.inner);
        if inner.quota_day == Some(today) {
            inner.quota_used
        } else {
            0
        }
    }

    /// ResetPwd requests that passed authentication and parameter checks.
    pub fn reset_requests(&self) -> usize {
        lock(&self.shared.inner).reset_requests
    }

    /// Makes an authtoken invalid.
    pub fn revoke_token(&self, token: &str) {
        lock(&self.shared.inner).tokens.remove(token);
    }

    fn with_account<T>(&self, sam: &str, f: impl FnOnce(&Account) -> T) -> Option<T> {
        let inner = lock(&self.shared.inner);
        inner
            .accounts
            .iter()
            .find(|a| a.has("samaccountname", sam))
            .map(f)
    }
}

/// The SEVERE envelope.
fn severe(message: &str, code: Option<&str>) -> Response {
    let mut body = json!({ "SEVERITY": "SEVERE", "STATUS_MESSAGE": message });
    if let Some(code) = code {
        body["ERROR_CODE"] = code.into();
    }
    json_response(StatusCode::OK, body)
}

impl Shared {
    fn texts(&self) -> &'static Texts {
        self.config.locale.texts()
    }

    fn today(&self) -> Date {
        OffsetDateTime::from(self.common.clock.now()).date()
    }

    fn request_error(&self, what: &str) -> Response {
        severe(
            &format!("{} {what}", self.texts().bad_request),
            Some(ERROR_CODE_REQUEST),
        )
    }

    /// Reads the parameters and checks `AuthToken`, then `PRODUCT_NAME` (when
    /// `product` is required) and `domainName`.
    fn authorise(
        &self,
        request: &RawRequest,
        product: bool,
        domain: bool,
    ) -> Result<Params, Response> {
        let params = Params::read(
            &request.method,
            &request.uri,
            &request.headers,
            &request.body,
        )
        .map_err(|why| self.request_error(&quoted(&why)))?;
        let texts = self.texts();
        let token_ok = params
            .non_empty("AuthToken")
            .is_some_and(|t| lock(&self.inner).tokens.contains(t));
        if !token_ok {
            return Err(severe(texts.bad_token, Some(ERROR_CODE_AUTH)));
        }
        if product && params.non_empty("PRODUCT_NAME").is_none() {
            return Err(severe(
                &format!("{} PRODUCT_NAME", texts.missing),
                Some(ERROR_CODE_REQUEST),
            ));
        }
        if domain {
            match params.non_empty("domainName") {
                None => {
                    return Err(severe(
                        &format!("{} domainName", texts.missing),
                        Some(ERROR_CODE_REQUEST),
                    ));
                }
                Some(name) if !name.eq_ignore_ascii_case(&self.config.domain) => {
                    return Err(severe(
                        &format!("{} {}", texts.bad_domain, quoted(name)),
                        Some(ERROR_CODE_REQUEST),
                    ));
                }
                Some(_) => {}
            }
        }
        Ok(params)
    }

    /// A parameter that `isEncoded=true` makes Base64.
    fn encoded(&self, params: &Params, name: &str) -> Result<Option<String>, Response> {
        let Some(value) = params.get(name) else {
            return Ok(None);
        };
        if params.get("isEncoded") != Some("true") {
            return Ok(Some(value.to_owned()));
        }
        base64::engine::general_purpose::STANDARD
            .decode(value)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .map(Some)
            .ok_or_else(|| self.request_error(&format!("{name} is not Base64")))
    }

    /// Today's quota use, starting afresh on a new day of the simulator's clock.
    fn quota_used(&self, inner: &mut Inner) -> usize {
        let today = self.today();
        if inner.quota_day != Some(today) {
            inner.quota_day = Some(today);
            inner.quota_used = 0;
        }
        inner.quota_used
    }
}

/// The parts of a request the handlers read.
struct RawRequest {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
}

impl<S: Send + Sync> axum::extract::FromRequest<S> for RawRequest {
    type Rejection = Response;

    async fn from_request(
        request: axum::extract::Request,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        let (parts, body) = request.into_parts();
        let body = Bytes::from_request(
            axum::extract::Request::from_parts(parts.clone(), body),
            state,
        )
        .await
        .map_err(axum::response::IntoResponse::into_response)?;
        Ok(RawRequest {
            method: parts.method,
            uri: parts.uri,
            headers: parts.headers,
            body,
        })
    }
}
