//! rekey connector for ManageEngine ADManager Plus, through its legacy REST API
//! (`{url}/RestAPI/*`, vendor-apis.md §4).
//!
//! Protocol facts it relies on:
//! - Auth is a long-lived technician authtoken (`AuthToken`), sent with
//!   `PRODUCT_NAME` (an audit label) and `domainName` on every call. There is no
//!   login.
//! - Every call is a `POST` whose parameters travel in an
//!   `application/x-www-form-urlencoded` body, never in the query string, so the
//!   token and passwords stay out of URLs and access logs. ADManager is a Java
//!   servlet application whose `getParameter()` reads form bodies [INF: the
//!   vendor's own clients put everything in the query string].
//! - HTTP 200 even on failure: a single object with `SEVERITY` (not `SUCCESS`) or
//!   `ERROR_CODE` refuses the whole request and applies nothing. `ERROR_CODE`
//!   `00000003` (and the `/api/v2` codes `00000101`, `00000106` \[INF\]) mean the
//!   token was refused; `00000429` means the server's own daily quota is spent [INF:
//!   the real code is unknown; rekey's simulator uses it]. Messages are localised,
//!   so only codes and `status` fields are ever compared.
//! - `check`: `GetAuthInfo` answers `{"AdmpAuthObject": "<JSON string>"}`; any
//!   SEVERE answer there is a refused token. When it names the token's technician
//!   (`LOGIN_NAME`) in the target's domain and `match_by` is `sAMAccountName`, that
//!   account is reported so the host never resets it.
//! - `users`: `SearchUser` pages with a 1-based `startIndex` and `range` (500), not
//!   counted against the quota. `match_by` maps onto its columns: `sAMAccountName`
//!   → `SAM_ACCOUNT_NAME`, `userPrincipalName` → `LOGON_NAME`, and \[INF\] `mail` →
//!   `EMAIL_ADDRESS`, `employeeID` → `EMPLOYEE_ID`, `distinguishedName` →
//!   `DISTINGUISHED_NAME`, `objectGUID` → `OBJECT_GUID`, `objectSID` →
//!   `OBJECT_SID`; the attribute is also asked for with `select`. Users without
//!   the attribute cannot be addressed and are left out.
//! - `ResetPwd`: `inputFormat` is a JSON array string (`[{"<match_by>":"<id>"}]`),
//!   and one `pwd` applies to every account in it, so batches (up to 50) share one
//!   value; `passwordType=generate` has the vendor make the passwords
//!   (`--vendor-generate`; they are not returned). The reply is an array with one
//!   object per input, matched by index and by the match attribute; `status` `"1"`
//!   (or `1`, `"SUCCESS"`) is success, anything else that user's definite failure
//!   with its `statusMessage` (HTML entities decoded). Some builds, and the
//!   vendor's own documented sample, send no `status` (`"statusMessage":
//!   "Successfully modified."`, vendor-apis.md §5): then a known success text
//!   (the sample's, those seen in production, and the target's
//!   `success_messages`) is success and any other text a failure whose outcome
//!   is unknown, so the password is kept. An input without a result has an
//!   unknown outcome.
//! - `mustChangePassword` is not sent: its effect is build-dependent and
//!   unverified (vendor-apis.md §4.2), so the domain's own setting applies.
//!
//! The daily quota. ADManager counts successful objects (not requests) against
//! `50 × technician licences` a day, shared by every API user and task. rekey never
//! sends more than `daily_limit` resets in one of the vendor's days:
//! - the day is the UTC date of the server's `Date` header on the latest reply,
//!   never this machine's clock (whether the vendor's day turns at UTC or local
//!   midnight is not documented \[INF\]);
//! - the count lives in the target's state directory (`admanager-quota.json`,
//!   written temp-then-rename), and an exclusive lock on `admanager.lock`, held
//!   for the connector's life, refuses a second run on the same target;
//! - a request's users are reserved (counted and written) before it is sent;
//!   afterwards applied users and users whose outcome is unknown stay counted,
//!   and definite failures are released;
//! - with no room left, a request waits for reservations in flight, asks the
//!   server's clock once more (GetAuthInfo is not counted: the day may have
//!   turned), then sends only the users that fit. The others get
//!   `QuotaExhausted` without being sent: the host stops the job (exit 3), and a
//!   later run carries on.
//!
//! The server's own quota refusal (`ERROR_CODE` `00000429`, as an envelope or per
//! item) is `QuotaExhausted` too; nothing of it was applied.

mod api;
mod quota;
mod reply;

use std::time::SystemTime;

use async_trait::async_trait;
use rekey_api::Batching;
use rekey_api::{
    Applied, Capability, CheckReport, Connector, ConnectorError, CreateContext, CredentialKind,
    ErrorKind, Metadata, NewPassword, Plugin, ResetRequest, Secret, SettingSpec, Settings,
    StatusMap, UserEntry, UserOutcome, UserPage,
};
use rekey_http::{Method, StatusCode, VendorHttp};
use serde_json::{Map, Value, json};

use crate::api::{MatchBy, Severe};
use crate::quota::Quota;
use crate::reply::SuccessMessages;

/// Users asked for per SearchUser page.
const PAGE_SIZE: usize = 500;
/// Users per ResetPwd request (they share one password).
const MAX_BATCH: usize = 50;

/// The ADManager Plus connector.
pub struct AdManager {
    http: VendorHttp,
    token: Secret,
    domain: String,
    product_name: String,
    match_by: MatchBy,
    success: SuccessMessages,
    quota: Quota,
    /// What the server's HTTP statuses mean (an answer at all is HTTP 200).
    statuses: StatusMap,
}

impl Plugin for AdManager {
    fn metadata() -> Metadata {
        Metadata::new(
            "admanager",
            env!("CARGO_PKG_VERSION"),
            "ManageEngine ADManager Plus (legacy REST API /RestAPI)",
        )
        .kinds([CredentialKind::Password])
        .capability(Capability::ListUsers)
        .capability(Capability::VendorReset)
        .case_insensitive_ids()
        .setting(
            SettingSpec::url("url", "The server's root, e.g. https://admanager.example.com:8443")
                .required(),
        )
        .setting(
            SettingSpec::secret(
                "auth_token",
                "A help-desk technician's authtoken (Delegation > Technician Authtokens)",
            )
            .required(),
        )
        .setting(
            SettingSpec::string("domain", "The AD domain's DNS name, e.g. example.com").required(),
        )
        .setting(
            SettingSpec::string("product_name", "PRODUCT_NAME: the caller's name in ADManager's audit reports")
                .default_value("rekey"),
        )
        .setting(
            SettingSpec::string("match_by", "The AD attribute that user ids are values of")
                .default_value("sAMAccountName")
                .choices(&MatchBy::choices()),
        )
        .setting(
            SettingSpec::integer(
                "daily_limit",
                "Resets rekey may make per day of the server's clock (ADManager allows 50 per technician licence, shared by all API users)",
            )
            .default_value(50),
        )
        .setting(SettingSpec::strings(
            "success_messages",
            "Extra per-user texts that mean success, e.g. [\"Password changed.\", \"OK\"]; read only when a ResetPwd result has no status (known already: \"Successfully modified.\", \"Password reset successful.\")",
        ))
        .setting(rekey_http::allow_insecure_http_setting())
        .setting(rekey_http::timeout_setting())
    }

    fn create(settings: Settings, context: CreateContext) -> Result<Self, ConnectorError> {
        // Settings arrive checked against the schema, defaults filled in: only
        // what the schema cannot say is checked here.
        let http = VendorHttp::from_settings(&settings, &context, "/RestAPI")?;
        let token = settings.secret("auth_token")?.clone();
        if token.expose().trim().is_empty() {
            return Err(ConnectorError::invalid_settings("auth_token is empty"));
        }
        let domain = settings.str("domain")?.trim().to_owned();
        if domain.is_empty() {
            return Err(ConnectorError::invalid_settings("domain is empty"));
        }
        let match_by_name = settings.str("match_by")?;
        let match_by = MatchBy::parse(match_by_name).ok_or_else(|| {
            ConnectorError::invalid_settings(format!("match_by `{match_by_name}` is not supported"))
        })?;
        let success = SuccessMessages::new(settings.strings("success_messages"));
        let quota = Quota::open(
            &context.state_dir,
            settings.u64("daily_limit")?,
            &context.target,
        )?;
        Ok(AdManager {
            http,
            token,
            domain,
            product_name: settings.str("product_name")?.to_owned(),
            match_by,
            success,
            quota,
            // rekey-api's default table: 401/403 refuse the token, 408 is passing,
            // any other 4xx refused the request before anything was applied, and
            // anything else (a 500) leaves the outcome unknown.
            statuses: StatusMap::new().hint(404, "is url the ADManager Plus server's root?"),
        })
    }
}

/// A reply's status and body.
struct Reply {
    status: StatusCode,
    body: Vec<u8>,
}

impl AdManager {
    /// POSTs `params` (after the common ones) as a form body to `/RestAPI/{call}`,
    /// noting the server's clock for the quota.
    async fn post(&self, call: &str, params: &[(&str, &str)]) -> Result<Reply, ConnectorError> {
        let mut form: Vec<(&str, &str)> = vec![
            ("AuthToken", self.token.expose()),
            ("PRODUCT_NAME", &self.product_name),
            ("domainName", &self.domain),
        ];
        form.extend_from_slice(params);
        let request = self
            .http
            .request(Method::POST, &[call])
            .header("Accept", "application/json")
            .form(&form);
        let response = self.http.send(request).await?;
        let date: Option<SystemTime> = rekey_http::server_date(response.headers());
        self.quota.observe(date);
        let status = response.status();
        let body = self.http.body(response).await?;
        Ok(Reply { status, body })
    }

    /// POSTs a read-only call and reads its JSON object (see
    /// [`read_object`](Self::read_object)).
    async fn read_call(
        &self,
        call: &str,
        params: &[(&str, &str)],
        severe_is_auth: bool,
    ) -> Result<Map<String, Value>, ConnectorError> {
        let reply = self.post(call, params).await?;
        self.read_object(call, reply, severe_is_auth)
    }

    /// Reads a read-only call's JSON object. Non-200 statuses and SEVERE answers
    /// are errors: a refused token is `AuthRefused`, and so is any SEVERE answer
    /// when `severe_is_auth` (a call that takes nothing but the token).
    fn read_object(
        &self,
        call: &str,
        reply: Reply,
        severe_is_auth: bool,
    ) -> Result<Map<String, Value>, ConnectorError> {
        if reply.status != StatusCode::OK {
            return Err(self.statuses.error(reply.status.as_u16(), call, None));
        }
        let value: Value = serde_json::from_slice(&reply.body).map_err(|e| {
            ConnectorError::fatal(format!(
                "unreadable {call} reply: {}",
                rekey_api::json_error_position(&e)
            ))
        })?;
        if let Some(severe) = Severe::of(&value) {
            let mut error = severe.to_error();
            if severe_is_auth {
                error.kind = ErrorKind::AuthRefused;
            }
            error.message = format!("{call}: {}", error.message);
            return Err(error);
        }
        match value {
            Value::Object(object) => Ok(object),
            _ => Err(ConnectorError::fatal(format!(
                "the {call} reply is not a JSON object"
            ))),
        }
    }

    /// Sends one ResetPwd for `users`, who all get `password`.
    async fn reset_pwd(
        &self,
        users: &[&str],
        password: &NewPassword,
    ) -> Vec<Result<Applied, ConnectorError>> {
        let key = self.match_by.ldap_name();
        let input: Vec<Value> = users.iter().map(|user| json!({ key: user })).collect();
        let input = Value::Array(input).to_string();
        let mut params = vec![("inputFormat", input.as_str())];
        match password {
            NewPassword::Known(value) => {
                params.push(("passwordType", "password"));
                params.push(("pwd", value.expose()));
            }
            NewPassword::VendorGenerated => params.push(("passwordType", "generate")),
        }
        let reply = match self.post("ResetPwd", &params).await {
            Ok(reply) => reply,
            Err(error) => return vec![Err(error); users.len()],
        };
        if reply.status != StatusCode::OK {
            let error = self.statuses.error(reply.status.as_u16(), "ResetPwd", None);
            return vec![Err(error); users.len()];
        }
        reply::classify(self.match_by, &self.success, users, &reply.body)
    }

    /// Resets a group of users who share one password, within the quota.
    async fn reset_group(
        &self,
        users: &[String],
        password: &NewPassword,
    ) -> Vec<Result<Applied, ConnectorError>> {
        let wanted = users.len() as u64;
        let mut reservation = match self.quota.reserve(wanted).await {
            Ok(reservation) => reservation,
            Err(error) => return vec![Err(error); users.len()],
        };
        if reservation.granted() < wanted {
            // The vendor's day may have turned since the latest reply: ask its clock
            // (GetAuthInfo is not counted) before holding anyone back.
            reservation.settle(0);
            if let Err(error) = self.auth_info().await {
                return vec![Err(error); users.len()];
            }
            reservation = match self.quota.reserve(wanted).await {
                Ok(reservation) => reservation,
                Err(error) => return vec![Err(error); users.len()],
            };
        }
        let granted = usize::try_from(reservation.granted()).unwrap_or(usize::MAX);
        let (sent, held) = users.split_at(granted.min(users.len()));
        let mut results = Vec::with_capacity(users.len());
        if sent.is_empty() {
            reservation.settle(0);
        } else {
            let sent: Vec<&str> = sent.iter().map(String::as_str).collect();
            let outcomes = self.reset_pwd(&sent, password).await;
            // Applied users stay counted, and so do unknown outcomes (the vendor
            // may have applied them); definite failures are released.
            let counted = outcomes
                .iter()
                .filter(|o| match o {
                    Ok(_) => true,
                    Err(error) => !error.kind.definitely_not_applied(),
                })
                .count();
            reservation.settle(counted as u64);
            results.extend(outcomes);
        }
        if !held.is_empty() {
            let error = ConnectorError::new(
                ErrorKind::QuotaExhausted,
                format!(
                    "rekey's daily_limit for this target is reached ({}); not sent: a later run carries on",
                    self.quota.describe()
                ),
            );
            results.extend(held.iter().map(|_| Err(error.clone())));
        }
        results
    }

    /// Reads `GetAuthInfo` into a report; checks that the token serves `domain`.
    async fn auth_info(&self) -> Result<CheckReport, ConnectorError> {
        let reply = self.post("GetAuthInfo", &[]).await?;
        if reply.status == StatusCode::NOT_FOUND {
            // GetAuthInfo is evidenced by one client only: on a build without it, a
            // one-row SearchUser (not counted against the quota) proves the token.
            self.read_call("SearchUser", &[("startIndex", "1"), ("range", "1")], true)
                .await?;
            return Ok(CheckReport {
                account: None,
                detail: format!(
                    "authtoken accepted (the server has no GetAuthInfo); daily quota: {}",
                    self.quota.describe()
                ),
            });
        }
        let reply = self.read_object("GetAuthInfo", reply, true)?;
        let auth = match api::field(&reply, "AdmpAuthObject") {
            Some(Value::String(text)) => serde_json::from_str::<Value>(text).map_err(|e| {
                ConnectorError::fatal(format!(
                    "unreadable AdmpAuthObject in the GetAuthInfo reply: {}",
                    rekey_api::json_error_position(&e)
                ))
            })?,
            Some(value @ Value::Object(_)) => value.clone(),
            _ => {
                return Err(ConnectorError::fatal(
                    "the GetAuthInfo reply has no AdmpAuthObject",
                ));
            }
        };
        let auth = auth.as_object().cloned().unwrap_or_default();
        let domains = domain_names(&auth);
        if !domains.is_empty() && !domains.iter().any(|d| d.eq_ignore_ascii_case(&self.domain)) {
            return Err(ConnectorError::invalid_settings(format!(
                "domain `{}` is not one this authtoken's technician manages ({})",
                self.domain,
                domains.join(", ")
            )));
        }
        let login = ["LOGIN_NAME", "LoginName"]
            .iter()
            .find_map(|k| api::field_str(&auth, k))
            .filter(|l| !l.is_empty());
        let login_domain = ["DOMAIN_NAME", "domainName"]
            .iter()
            .find_map(|k| api::field_str(&auth, k));
        // Only an AD account of this domain, named by its sAMAccountName, is a user
        // id here (the built-in admin is not an AD account).
        let account = match (&login, &login_domain) {
            (Some(login), Some(domain))
                if self.match_by == MatchBy::SamAccountName
                    && domain.eq_ignore_ascii_case(&self.domain) =>
            {
                Some(login.clone())
            }
            _ => None,
        };
        let detail = match (&login, &login_domain) {
            (Some(login), Some(domain)) => format!("authtoken of technician {login} ({domain})"),
            (Some(login), None) => format!("authtoken of technician {login}"),
            _ => "authtoken accepted".to_owned(),
        };
        Ok(CheckReport {
            account,
            detail: format!("{detail}; daily quota: {}", self.quota.describe()),
        })
    }
}

/// The domain names of an AdmpAuthObject's `domainNameList` (strings or objects
/// with `DOMAIN_NAME`).
fn domain_names(auth: &Map<String, Value>) -> Vec<String> {
    let Some(Value::Array(list)) = api::field(auth, "domainNameList") else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|entry| match entry {
            Value::String(name) => Some(name.clone()),
            Value::Object(object) => api::field_str(object, "DOMAIN_NAME")
                .or_else(|| api::field_str(object, "domainName")),
            _ => None,
        })
        .collect()
}

#[async_trait]
impl Connector for AdManager {
    fn batching(&self) -> Batching {
        Batching {
            max_users: MAX_BATCH,
            shared_password: true,
        }
    }

    async fn check(&self) -> Result<CheckReport, ConnectorError> {
        self.auth_info().await
    }

    async fn list_users(&self, cursor: Option<String>) -> Result<UserPage, ConnectorError> {
        let start: usize =
            match &cursor {
                None => 1,
                Some(c) => c.parse().ok().filter(|&s| s >= 1).ok_or_else(|| {
                    ConnectorError::fatal(format!("unknown listing cursor `{c}`"))
                })?,
            };
        let start_text = start.to_string();
        let range = PAGE_SIZE.to_string();
        let select = format!("{},displayName", self.match_by.ldap_name());
        let reply = self
            .read_call(
                "SearchUser",
                &[
                    ("startIndex", &start_text),
                    ("range", &range),
                    ("select", &select),
                ],
                false,
            )
            .await?;
        let list = match api::field(&reply, "UsersList") {
            Some(Value::Array(list)) => list,
            Some(Value::Null) | None => &Vec::new(),
            Some(_) => {
                return Err(ConnectorError::fatal(
                    "the SearchUser reply's UsersList is not a list",
                ));
            }
        };
        let column = self.match_by.search_field();
        let users: Vec<UserEntry> = list
            .iter()
            .filter_map(Value::as_object)
            .filter_map(|user| {
                let id = api::field_str(user, column).filter(|id| !id.trim().is_empty())?;
                Some(UserEntry {
                    id,
                    name: api::field_str(user, "DISPLAY_NAME").filter(|n| !n.is_empty()),
                    disabled: false,
                })
            })
            .collect();
        if users.len() < list.len() {
            tracing::debug!(
                "{} listed users have no {} and cannot be addressed",
                list.len() - users.len(),
                self.match_by.ldap_name()
            );
        }
        // A short page is the last one (`count` may be the total or the page's).
        let next = (list.len() >= PAGE_SIZE).then(|| (start + list.len()).to_string());
        Ok(UserPage { users, next })
    }

    async fn reset(&self, request: ResetRequest) -> Result<Vec<UserOutcome>, ConnectorError> {
        // The SDK has checked the request against the metadata and batching: the
        // kind is `password`, at most MAX_BATCH users, and every user gets the same
        // value (shared_password), as ResetPwd's one `pwd` needs.
        let Some(password) = request.items.first().map(|item| item.password.clone()) else {
            return Ok(Vec::new());
        };
        if !self.quota.knows_day() {
            // The quota's day is the server's: learn it (GetAuthInfo is not counted).
            self.auth_info().await?;
        }
        let users: Vec<String> = request.items.into_iter().map(|item| item.user).collect();
        let results = self.reset_group(&users, &password).await;
        Ok(users
            .into_iter()
            .zip(results)
            .map(|(user, result)| UserOutcome { user, result })
            .collect())
    }
}

rekey_api::export_connector!(AdManager);

#[cfg(test)]
mod tests {
    /// The body `reqwest::RequestBuilder::form` sends is serde_urlencoded's: every
    /// reserved character is percent-encoded, a space is `+` and `+` is `%2B`.
    #[test]
    fn form_bodies_encode_every_reserved_character() {
        let body = serde_urlencoded::to_string([
            ("pwd", "a b+c&d=e#f%g?h/i'j\"k"),
            ("inputFormat", r#"[{"sAMAccountName":"x"}]"#),
        ])
        .unwrap();
        assert_eq!(
            body,
            "pwd=a+b%2Bc%26d%3De%23f%25g%3Fh%2Fi%27j%22k&inputFormat=%5B%7B%22sAMAccountName%22%3A%22x%22%7D%5D"
        );
        let printable: String = (' '..='~').collect();
        let body = serde_urlencoded::to_string([("pwd", printable.as_str())]).unwrap();
        let decoded: Vec<(String, String)> = serde_urlencoded::from_str(&body).unwrap();
        assert_eq!(decoded, [("pwd".to_owned(), printable)]);
        assert!(
            body["pwd=".len()..]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"*-._+%".contains(&b)),
            "{body}"
        );
    }
}
