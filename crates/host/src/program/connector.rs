//! [`ProgramConnector`]: a connector running in a program, seen through the
//! [`Connector`](rekey_api::Connector) trait; its calls go through the program's
//! pipes ([`ProgramCalls`]).

use std::time::Duration;

use async_trait::async_trait;
use rekey_abi::program::reply_of;
use rekey_abi::protocol::{Request, Status};
use rekey_api::{Batching, ConnectorError, ErrorKind};
use serde::de::DeserializeOwned;

use super::process::{Answer, Process};
use crate::wire::{Transport, WireConnector};

/// How long a program has to answer a call it was asked to cancel at its
/// deadline, before it counts as wedged and is stopped.
const CANCEL_GRACE: Duration = Duration::from_secs(5);

/// A connector running in a program. Dropping it shuts the program down.
pub type ProgramConnector = WireConnector<ProgramCalls>;

/// Calls to a connector program, each bounded by a deadline.
pub struct ProgramCalls {
    process: Process,
    deadline: Duration,
}

impl std::fmt::Debug for ProgramCalls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProgramCalls")
            .field("program", &self.process.name())
            .finish()
    }
}

/// Stops waiting for a call, and cancels it in the program, if its future is
/// dropped before the reply.
struct AbandonOnDrop<'a> {
    process: &'a Process,
    id: u64,
    armed: bool,
}

impl Drop for AbandonOnDrop<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.process.abandon(self.id);
        }
    }
}

impl ProgramCalls {
    /// The connector running in `process`.
    pub(super) fn connector(
        process: Process,
        batching: Batching,
        deadline: Duration,
    ) -> ProgramConnector {
        WireConnector::new(ProgramCalls { process, deadline }, batching)
    }
}

#[async_trait]
impl Transport for ProgramCalls {
    /// Sends `request` and reads its reply as `T`. Past the deadline the call is
    /// cancelled in the program: answered within a grace period, it fails as a
    /// passing failure (like a library's call past its deadline); unanswered, the
    /// program is wedged, and is stopped.
    async fn call<T: DeserializeOwned + Send + 'static>(
        &self,
        request: &Request,
        what: &str,
    ) -> Result<T, ConnectorError> {
        let (id, mut receiver) = self.process.call(request)?;
        let mut guard = AbandonOnDrop {
            process: &self.process,
            id,
            armed: true,
        };
        let answer = match tokio::time::timeout(self.deadline, &mut receiver).await {
            Ok(answer) => answer,
            Err(_) => {
                self.process.cancel(id);
                match tokio::time::timeout(CANCEL_GRACE, &mut receiver).await {
                    Ok(Ok(Ok((Status::Cancelled, _)))) => {
                        Ok(Err(ConnectorError::transient(format!(
                            "the connector program did not answer within {} s; the call was cancelled",
                            self.deadline.as_secs()
                        ))))
                    }
                    Ok(answer) => answer,
                    Err(_) => {
                        self.process.fail(
                            format!(
                                "did not answer a call within {} s, nor its cancellation within {} s; it was stopped",
                                self.deadline.as_secs(),
                                CANCEL_GRACE.as_secs()
                            ),
                            true,
                        );
                        receiver.await
                    }
                }
            }
        };
        guard.armed = false;
        let answer: Answer = answer.unwrap_or_else(|_| {
            Err(ConnectorError::new(
                ErrorKind::Cancelled,
                format!("{} dropped the call", self.process.name()),
            ))
        });
        let (status, line) = answer?;
        reply_of(&line, status, what)
    }
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use rekey_api::{Connector, Settings};

    use super::*;
    use crate::program::{Program, ProgramSpec};

    /// Answers `describe`, `create` and `list_users`; leaves `check` unanswered
    /// until it is cancelled, then answers it `cancelled`.
    const SLOW_CHECK: &str = r#"#!/usr/bin/env python3
import json, sys
META = {"name": "slow", "version": "1", "description": "d", "kinds": ["password"]}
REPLIES = {"describe": {"protocol": 1, "metadata": META},
           "create": {"batching": {"max_users": 1}}, "list_users": {"users": []}}
for line in sys.stdin:
    call = json.loads(line)
    if call["op"] == "shutdown":
        break
    if call["op"] == "cancel":
        reply = {"id": call["id"], "status": "cancelled"}
    elif call["op"] in REPLIES:
        reply = {"id": call["id"], "status": "ok", "reply": REPLIES[call["op"]]}
    else:
        continue
    print(json.dumps(reply), flush=True)
"#;

    #[tokio::test]
    async fn a_call_past_its_deadline_is_cancelled_and_the_program_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("slow");
        std::fs::write(&path, SLOW_CHECK).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700)).unwrap();
        let program = Program::start(ProgramSpec {
            program: path,
            args: Vec::new(),
            dir: None,
            env: Vec::new(),
            target: Some("t".into()),
        })
        .unwrap();
        let connector = program
            .create(
                &Settings::default(),
                rekey_api::CreateContext {
                    target: "t".into(),
                    state_dir: dir.path().to_owned(),
                    rate: None,
                },
                Duration::from_secs(1),
            )
            .unwrap();
        let started = std::time::Instant::now();
        let error = connector.check().await.unwrap_err();
        assert_eq!(error.kind, ErrorKind::Transient, "{error}");
        assert!(error.message.contains("within 1 s"), "{error}");
        assert!(
            started.elapsed() < CANCEL_GRACE,
            "the cancellation was answered"
        );
        let page = connector.list_users(None).await.unwrap();
        assert!(page.users.is_empty(), "the program still answers");
    }
}
