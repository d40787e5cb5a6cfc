//! What the invitation routes and the email worker share.

use crate::state::AppState;

/// The link an invitee follows.
pub fn accept_url(state: &AppState, token: &str) -> String {
    format!(
        "{}/invite/{token}",
        state.config.public_url.trim_end_matches('/')
    )
}
