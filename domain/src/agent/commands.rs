use super::AgentSettings;
use crate::{AgentId, TenantId};

#[derive(Debug, Clone, PartialEq)]
pub enum AgentCommand {
    /// A new agent holding slot `slot` of its tenant.
    Create {
        agent_id: AgentId,
        tenant_id: TenantId,
        slot: u32,
        settings: AgentSettings,
    },
    /// New settings (the whole of them).
    Update {
        settings: AgentSettings,
    },
    Pause,
    Resume,
    /// For good: the slot is released, nothing runs under it again.
    Archive,
}
