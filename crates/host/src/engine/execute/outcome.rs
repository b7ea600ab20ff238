//! A settled user: what the vendor's answer means for the password to hand over.

use rekey_api::{Applied, ConnectorError, NewPassword, Secret};

use super::batch::Item;
use crate::engine::store::{UserRecord, UserState};

/// The vendor applied the reset: the password in effect is the vendor's, if it made
/// and returned one, else the one sent.
pub(super) fn applied(item: Item, applied: Applied) -> UserRecord {
    let vendor_kept_it = matches!(item.reset.password, NewPassword::VendorGenerated)
        && applied.vendor_password.is_none();
    let detail = match (vendor_kept_it, applied.detail) {
        (true, Some(detail)) => {
            format!("{detail} (the vendor set the password and did not return it)")
        }
        (true, None) => "the vendor set the password and did not return it".to_owned(),
        (false, detail) => detail.unwrap_or_default(),
    };
    let sent = match item.reset.password {
        NewPassword::Known(password) => Some(password),
        NewPassword::VendorGenerated => None,
    };
    let detail = scrub(detail, sent.as_ref());
    UserRecord {
        seq: item.seq,
        user: item.reset.user,
        state: UserState::Reset,
        password: applied.vendor_password.or(sent),
        detail,
    }
}

/// The reset failed. Unless the failure proves the password was not applied (and
/// no earlier attempt may have applied it), the password is kept: it may be in
/// effect.
pub(super) fn failed(item: Item, error: ConnectorError) -> UserRecord {
    let sent = match item.reset.password {
        NewPassword::Known(password) => Some(password),
        NewPassword::VendorGenerated => None,
    };
    let not_applied = error.kind.definitely_not_applied();
    let keep = !not_applied || item.maybe_applied;
    let detail = if !keep {
        error.message
    } else if not_applied {
        format!(
            "{} (refused on a retry; an earlier attempt's outcome is unknown, so this password may be in effect)",
            error.message
        )
    } else if sent.is_some() {
        format!("outcome unknown ({error}); this password may now be in effect")
    } else {
        format!("outcome unknown ({error}); the vendor may have set a new password")
    };
    let detail = scrub(detail, sent.as_ref());
    let password = if keep { sent } else { None };
    UserRecord {
        seq: item.seq,
        user: item.reset.user,
        state: UserState::Failed,
        password,
        detail,
    }
}

/// Removes the password from a vendor message that echoes it.
fn scrub(detail: String, password: Option<&Secret>) -> String {
    match password {
        Some(password) if password.len() >= 4 && detail.contains(password.expose()) => {
            detail.replace(password.expose(), "[redacted]")
        }
        _ => detail,
    }
}
