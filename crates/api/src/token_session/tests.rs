use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;

/// A vendor with refresh tokens: counts logins and renewals, and refuses what
/// it is told to.
#[derive(Default)]
struct Vendor {
    logins: AtomicUsize,
    renewals: AtomicUsize,
    refuse_renewal: std::sync::atomic::AtomicBool,
}

#[async_trait]
impl TokenSource for Vendor {
    type Renewal = Secret;

    async fn login(&self) -> Result<Grant<Secret>, ConnectorError> {
        let n = self.logins.fetch_add(1, Ordering::SeqCst) + 1;
        tokio::time::sleep(Duration::from_millis(10)).await;
        Ok(
            Grant::new(format!("login-{n}").into(), Some(Duration::from_secs(10)))
                .with_renewal(format!("refresh-{n}").into()),
        )
    }

    async fn renew(&self, current: &Grant<Secret>) -> Result<Grant<Secret>, ConnectorError> {
        if self.refuse_renewal.load(Ordering::SeqCst) {
            return Err(ConnectorError::auth_refused("refresh token revoked"));
        }
        let n = self.renewals.fetch_add(1, Ordering::SeqCst) + 1;
        tokio::time::sleep(Duration::from_millis(10)).await;
        Ok(Grant::new(
            format!("{}-renewed-{n}", current.renewal.expose()).into(),
            Some(Duration::from_secs(10)),
        )
        .with_renewal(format!("refresh-r{n}").into()))
    }
}

#[tokio::test(start_paused = true)]
async fn concurrent_callers_share_one_login_and_one_renewal() {
    let session = Arc::new(TokenSession::new(Vendor::default()));
    let leases = futures_util::future::join_all((0..20).map(|_| {
        let session = Arc::clone(&session);
        async move { session.lease().await.unwrap() }
    }))
    .await;
    assert_eq!(session.source().logins.load(Ordering::SeqCst), 1);
    assert!(leases.iter().all(|l| l.token().expose() == "login-1"));

    // A fifth of 10 s early: not yet at 7.9 s, due at 8 s.
    tokio::time::advance(Duration::from_millis(7900)).await;
    assert_eq!(session.lease().await.unwrap().token().expose(), "login-1");
    tokio::time::advance(Duration::from_millis(100)).await;
    let leases = futures_util::future::join_all((0..20).map(|_| session.lease())).await;
    assert_eq!(session.source().renewals.load(Ordering::SeqCst), 1);
    assert!(
        leases
            .iter()
            .all(|l| l.as_ref().unwrap().token().expose() == "refresh-1-renewed-1")
    );
}

#[tokio::test(start_paused = true)]
async fn a_refused_token_is_renewed_once_and_the_call_sent_again() {
    let session = TokenSession::new(Vendor::default());
    let sent = std::sync::Mutex::new(Vec::new());
    let result = session
        .call(|token| {
            sent.lock().unwrap().push(token.expose().to_owned());
            let refused = token.expose() == "login-1";
            async move {
                Ok(if refused {
                    Attempt::Refused("GET x".into())
                } else {
                    Attempt::Done(())
                })
            }
        })
        .await;
    assert!(result.is_ok());
    assert_eq!(*sent.lock().unwrap(), ["login-1", "refresh-1-renewed-1"]);

    // Two callers refused on the same token: one renewal between them.
    let session = TokenSession::new(Vendor::default());
    let a = session.lease().await.unwrap();
    let b = session.lease().await.unwrap();
    session.renew_refused(&a).await.unwrap();
    session.renew_refused(&b).await.unwrap();
    assert_eq!(session.source().renewals.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn a_second_refusal_forgets_the_session_until_ensure() {
    let session = TokenSession::new(Vendor::default());
    let error = session
        .call(|_| async { Ok(Attempt::<()>::Refused("PUT users/x".into())) })
        .await
        .unwrap_err();
    assert_eq!(error.kind, ErrorKind::AuthRefused);
    assert!(
        error.message.starts_with("PUT users/x: "),
        "{}",
        error.message
    );
    // Calls fail at once, without logging in behind the host's back.
    assert_eq!(
        session.lease().await.unwrap_err().kind,
        ErrorKind::AuthRefused
    );
    assert_eq!(session.source().logins.load(Ordering::SeqCst), 1);
    // The host's check logs in again.
    assert_eq!(session.ensure().await.unwrap().token().expose(), "login-2");
    assert!(session.lease().await.is_ok());
}

#[tokio::test(start_paused = true)]
async fn a_refused_renewal_forgets_the_session_and_others_wait() {
    let session = TokenSession::new(Vendor::default());
    session.lease().await.unwrap();
    session
        .source()
        .refuse_renewal
        .store(true, Ordering::SeqCst);
    tokio::time::advance(Duration::from_secs(9)).await;
    let error = session.lease().await.unwrap_err();
    assert_eq!(error.message, "refresh token revoked");
    assert_eq!(
        session.lease().await.unwrap_err().kind,
        ErrorKind::AuthRefused
    );
}

#[tokio::test(start_paused = true)]
async fn an_attempt_whose_admission_was_used_is_admitted_again() {
    let session = TokenSession::new(Vendor::default());
    let admissions = AtomicUsize::new(0);
    let attempts = AtomicUsize::new(0);
    let result = session
        .call_admitted(
            || {
                admissions.fetch_add(1, Ordering::SeqCst);
                std::future::ready(())
            },
            |_| {
                let first = attempts.fetch_add(1, Ordering::SeqCst) == 0;
                async move {
                    Ok(if first {
                        Attempt::Readmit
                    } else {
                        Attempt::Done(7)
                    })
                }
            },
        )
        .await;
    assert_eq!(result.unwrap(), 7);
    assert_eq!(admissions.load(Ordering::SeqCst), 2);
    // Not a refusal: nothing was renewed.
    assert_eq!(session.source().renewals.load(Ordering::SeqCst), 0);
}

/// Client credentials: no renewal of its own, so renewing logs in again.
struct ClientCredentials(AtomicUsize);

#[async_trait]
impl TokenSource for ClientCredentials {
    type Renewal = ();

    async fn login(&self) -> Result<Grant, ConnectorError> {
        let n = self.0.fetch_add(1, Ordering::SeqCst) + 1;
        Ok(Grant::new(
            format!("cc-{n}").into(),
            Some(Duration::from_secs(2)),
        ))
    }
}

#[tokio::test(start_paused = true)]
async fn renewal_by_logging_in_again() {
    let session = TokenSession::new(ClientCredentials(AtomicUsize::new(0)));
    assert_eq!(session.lease().await.unwrap().token().expose(), "cc-1");
    tokio::time::advance(Duration::from_millis(1700)).await;
    assert_eq!(session.lease().await.unwrap().token().expose(), "cc-2");
}
