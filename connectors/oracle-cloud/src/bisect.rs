//! Isolating the entries a batch refuses.
//!
//! Primavera fails a whole batch, changing nothing, when one entry is bad (`400`
//! "Invalid input, Please check.") or one password breaks the identity domain's
//! policy (`500` "...Underlying Identity Management System threw an error...").
//! [`settle`] sends a batch and, when it is refused as a whole, splits it in two and
//! sends each part, recursively, until every user has an outcome of its own: the
//! users of a refused request are never reported reset, and good users never fail
//! for a bad neighbour. Each split makes two smaller non-empty parts, so a batch of
//! `n` users takes at most `2n - 1` requests (a binary tree with `n` leaves).
//!
//! The first split of a group puts apart the users the connector already suspects
//! (login ids missing from the tenant's user list), when there are some: one
//! request then settles all the others. Otherwise it splits in halves. Suspicion
//! only shapes the split; every outcome still comes from the vendor's answer.

use std::future::Future;

use rekey_api::{Applied, ConnectorError, ErrorKind};

/// Why the vendor refused a whole request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RefusalKind {
    /// `400` "Invalid input, Please check.": an entry is unknown or malformed.
    InvalidInput,
    /// `500` naming the identity system: a password broke its policy.
    IdentitySystem,
}

/// A whole request refused, nothing changed: what the vendor said.
#[derive(Debug, Clone)]
pub(crate) struct Refusal {
    /// Which refusal.
    pub kind: RefusalKind,
    /// The vendor's text.
    pub message: String,
}

/// The vendor's answer to one request.
#[derive(Debug)]
pub(crate) enum Verdict {
    /// An outcome for each user of the request, in order.
    PerUser(Vec<Result<Applied, ConnectorError>>),
    /// The request was refused as a whole and nothing changed.
    Refused(Refusal),
    /// The request failed otherwise; each of its users gets this error.
    Failed(ConnectorError),
}

/// One kind of batch request.
pub(crate) trait Batch: Sync {
    /// One user's entry.
    type Item: Sync;

    /// Sends one request holding `items`.
    fn send(&self, items: &[&Self::Item]) -> impl Future<Output = Verdict> + Send;

    /// Whether the connector already has reason to expect the vendor to refuse
    /// this entry.
    fn suspect(&self, item: &Self::Item) -> bool;

    /// The outcome of a user whose request, holding only that user, was refused.
    fn alone(&self, item: &Self::Item, refusal: Refusal) -> ConnectorError;
}

/// Errors after which nothing more is sent: the remaining users get the same
/// error, which is true of them too, since nothing was sent for them.
fn stops_sending(kind: ErrorKind) -> bool {
    matches!(
        kind,
        ErrorKind::AuthRefused | ErrorKind::RateLimited | ErrorKind::QuotaExhausted
    )
}

/// Sends `items` as one request, splitting refused requests until every item has
/// its own outcome. The outcomes are in the order of `items`.
pub(crate) async fn settle<B: Batch>(
    batch: &B,
    items: &[B::Item],
) -> Vec<Result<Applied, ConnectorError>> {
    let mut outcomes: Vec<Option<Result<Applied, ConnectorError>>> =
        items.iter().map(|_| None).collect();
    let mut pending: Vec<Vec<usize>> = Vec::new();
    if !items.is_empty() {
        pending.push((0..items.len()).collect());
    }
    let mut stop: Option<ConnectorError> = None;
    while let Some(group) = pending.pop() {
        if let Some(error) = &stop {
            for i in group {
                outcomes[i] = Some(Err(error.clone()));
            }
            continue;
        }
        let members: Vec<&B::Item> = group.iter().map(|&i| &items[i]).collect();
        match batch.send(&members).await {
            Verdict::PerUser(answers) if answers.len() == group.len() => {
                for (i, answer) in group.into_iter().zip(answers) {
                    outcomes[i] = Some(answer);
                }
            }
            Verdict::PerUser(answers) => {
                let error = ConnectorError::fatal(format!(
                    "internal error: {} outcomes for a request of {} users",
                    answers.len(),
                    group.len()
                ));
                for i in group {
                    outcomes[i] = Some(Err(error.clone()));
                }
            }
            Verdict::Refused(refusal) => match group.as_slice() {
                [only] => outcomes[*only] = Some(Err(batch.alone(&items[*only], refusal))),
                _ => {
                    tracing::debug!(
                        users = group.len(),
                        "the batch was refused as a whole; splitting it"
                    );
                    let (first, second) = split(batch, items, group);
                    // A stack: the first part goes next.
                    pending.push(second);
                    pending.push(first);
                }
            },
            Verdict::Failed(error) => {
                if stops_sending(error.kind) {
                    stop = Some(error.clone());
                }
                for i in group {
                    outcomes[i] = Some(Err(error.clone()));
                }
            }
        }
    }
    outcomes
        .into_iter()
        .map(|o| o.unwrap_or_else(|| Err(ConnectorError::fatal("internal error: no outcome"))))
        .collect()
}

/// Splits a refused group of at least two: the unsuspected users apart from the
/// suspects when there are both, else in halves.
fn split<B: Batch>(batch: &B, items: &[B::Item], group: Vec<usize>) -> (Vec<usize>, Vec<usize>) {
    let (suspects, others): (Vec<usize>, Vec<usize>) =
        group.iter().partition(|&&i| batch.suspect(&items[i]));
    if !suspects.is_empty() && !others.is_empty() {
        return (others, suspects);
    }
    let mut first = group;
    let second = first.split_off(first.len() / 2);
    (first, second)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::sync::Mutex;

    use super::*;

    /// A vendor that refuses any request holding an unknown entry, fails one
    /// holding the "flaky" entry, and refuses one holding a weak entry.
    #[derive(Default)]
    struct Fake {
        unknown: HashSet<&'static str>,
        weak: HashSet<&'static str>,
        flaky: Option<(&'static str, ErrorKind)>,
        suspects: HashSet<&'static str>,
        requests: Mutex<Vec<usize>>,
    }

    impl Batch for Fake {
        type Item = &'static str;

        async fn send(&self, items: &[&Self::Item]) -> Verdict {
            self.requests.lock().unwrap().push(items.len());
            if items.iter().any(|i| self.unknown.contains(**i)) {
                return Verdict::Refused(Refusal {
                    kind: RefusalKind::InvalidInput,
                    message: "Invalid input, Please check.".into(),
                });
            }
            if let Some((flaky, kind)) = self.flaky
                && items.iter().any(|i| **i == flaky)
            {
                return Verdict::Failed(ConnectorError::new(kind, "flaky"));
            }
            if items.iter().any(|i| self.weak.contains(**i)) {
                return Verdict::Refused(Refusal {
                    kind: RefusalKind::IdentitySystem,
                    message: "Underlying Identity Management System threw an error".into(),
                });
            }
            Verdict::PerUser(items.iter().map(|_| Ok(Applied::default())).collect())
        }

        fn suspect(&self, item: &Self::Item) -> bool {
            self.suspects.contains(item)
        }

        fn alone(&self, _item: &Self::Item, refusal: Refusal) -> ConnectorError {
            match refusal.kind {
                RefusalKind::InvalidInput => ConnectorError::rejected(refusal.message),
                RefusalKind::IdentitySystem => ConnectorError::policy_rejected(refusal.message),
            }
        }
    }

    fn users(n: usize) -> Vec<&'static str> {
        (0..n)
            .map(|i| &*Box::leak(format!("U{i:02}").into_boxed_str()))
            .collect()
    }

    fn kinds(outcomes: &[Result<Applied, ConnectorError>]) -> Vec<Option<ErrorKind>> {
        outcomes
            .iter()
            .map(|o| o.as_ref().err().map(|e| e.kind))
            .collect()
    }

    #[tokio::test]
    async fn a_good_batch_takes_one_request() {
        let fake = Fake::default();
        let outcomes = settle(&fake, &users(25)).await;
        assert!(outcomes.iter().all(Result::is_ok));
        assert_eq!(*fake.requests.lock().unwrap(), [25]);
        assert!(settle(&fake, &[]).await.is_empty());
    }

    #[tokio::test]
    async fn bad_entries_are_isolated_by_halves_within_the_bound() {
        let items = users(25);
        for bad in [vec![0], vec![24], vec![3, 11, 19], vec![0, 1, 2, 3, 4, 5]] {
            let fake = Fake {
                unknown: bad.iter().map(|&i| items[i]).take(1).collect(),
                weak: bad.iter().map(|&i| items[i]).skip(1).collect(),
                ..Fake::default()
            };
            let outcomes = settle(&fake, &items).await;
            for (i, kind) in kinds(&outcomes).into_iter().enumerate() {
                let expected = match bad.iter().position(|&b| b == i) {
                    None => None,
                    Some(0) => Some(ErrorKind::Rejected),
                    Some(_) => Some(ErrorKind::PolicyRejected),
                };
                assert_eq!(kind, expected, "user {i} of bad {bad:?}");
            }
            let requests = fake.requests.lock().unwrap().len();
            assert!(requests < 2 * 25, "{requests} requests for {bad:?}");
            if bad.len() == 1 {
                // One bad entry: one request a level of the tree, two a level below.
                assert!(requests <= 1 + 2 * 5, "{requests} requests for {bad:?}");
            }
        }
    }

    #[tokio::test]
    async fn suspects_are_put_apart_first() {
        let items = users(25);
        let fake = Fake {
            unknown: [items[7]].into(),
            suspects: [items[7]].into(),
            ..Fake::default()
        };
        let outcomes = settle(&fake, &items).await;
        assert_eq!(kinds(&outcomes)[7], Some(ErrorKind::Rejected));
        assert_eq!(outcomes.iter().filter(|o| o.is_ok()).count(), 24);
        assert_eq!(*fake.requests.lock().unwrap(), [25, 24, 1]);

        // A wrong suspicion costs a request, not a wrong outcome.
        let fake = Fake {
            unknown: [items[7]].into(),
            suspects: [items[3]].into(),
            ..Fake::default()
        };
        let outcomes = settle(&fake, &items).await;
        assert_eq!(outcomes.iter().filter(|o| o.is_ok()).count(), 24);
        assert!(outcomes[7].is_err() && outcomes[3].is_ok());
    }

    #[tokio::test]
    async fn failures_of_a_part_stay_with_that_part() {
        let items = users(8);
        let fake = Fake {
            unknown: [items[0]].into(),
            flaky: Some((items[6], ErrorKind::Transient)),
            ..Fake::default()
        };
        let outcomes = settle(&fake, &items).await;
        // [0..4) is refused and split; [4..8) fails as a whole with the transient error.
        assert_eq!(
            kinds(&outcomes),
            [
                Some(ErrorKind::Rejected),
                None,
                None,
                None,
                Some(ErrorKind::Transient),
                Some(ErrorKind::Transient),
                Some(ErrorKind::Transient),
                Some(ErrorKind::Transient),
            ]
        );
    }

    #[tokio::test]
    async fn rate_limits_stop_sending() {
        let items = users(8);
        let fake = Fake {
            unknown: [items[7]].into(),
            flaky: Some((items[1], ErrorKind::RateLimited)),
            ..Fake::default()
        };
        let outcomes = settle(&fake, &items).await;
        assert!(
            kinds(&outcomes)
                .iter()
                .all(|k| *k == Some(ErrorKind::RateLimited))
        );
        // The whole batch was refused (400), then its first half was rate limited.
        assert_eq!(*fake.requests.lock().unwrap(), [8, 4]);
    }
}
