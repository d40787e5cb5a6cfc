use cqrs_es::test::TestFramework;
use uuid::Uuid;

use super::*;
use crate::claims::{ClaimChange, ClaimScope, UniqueClaims};
use crate::values::Label;

type Given = TestFramework<Agent>;

fn settings(name: &str) -> AgentSettings {
    AgentSettings {
        name: Label::parse(name).unwrap(),
        description: "answers the phone".into(),
        monthly_budget_minor: Some(5_000),
        allow: vec!["openai/gpt-4o".into()],
    }
}

fn created() -> AgentEvent {
    AgentEvent::AgentCreated {
        agent_id: Uuid::from_u128(7),
        tenant_id: Uuid::from_u128(1),
        slot: 2,
        settings: settings("Receptionist"),
    }
}

#[test]
fn creating_claims_the_tenants_slot_and_archiving_releases_it() {
    Given::with(())
        .given_no_previous_events()
        .when(AgentCommand::Create {
            agent_id: Uuid::from_u128(7).into(),
            tenant_id: Uuid::from_u128(1).into(),
            slot: 2,
            settings: settings("Receptionist"),
        })
        .then_expect_events(vec![created()]);
    let slot = format!("{}:2", Uuid::from_u128(1));
    assert_eq!(
        created().claim_changes(),
        vec![ClaimChange::Claim {
            scope: ClaimScope::AgentSlot,
            value: slot.clone()
        }]
    );
    let archived = AgentEvent::AgentArchived {
        tenant_id: Uuid::from_u128(1),
        slot: 2,
    };
    Given::with(())
        .given(vec![created()])
        .when(AgentCommand::Archive)
        .then_expect_events(vec![archived.clone()]);
    assert_eq!(
        archived.claim_changes(),
        vec![ClaimChange::Release {
            scope: ClaimScope::AgentSlot,
            value: slot
        }]
    );
    // Archived once: again changes nothing.
    Given::with(())
        .given(vec![created(), archived])
        .when(AgentCommand::Archive)
        .then_expect_events(vec![]);
}

#[test]
fn pause_and_resume_change_only_what_differs_and_an_archived_agent_is_final() {
    Given::with(())
        .given(vec![created()])
        .when(AgentCommand::Resume)
        .then_expect_events(vec![]);
    Given::with(())
        .given(vec![created()])
        .when(AgentCommand::Pause)
        .then_expect_events(vec![AgentEvent::AgentPaused {}]);
    Given::with(())
        .given(vec![created(), AgentEvent::AgentPaused {}])
        .when(AgentCommand::Pause)
        .then_expect_events(vec![]);
    Given::with(())
        .given(vec![created(), AgentEvent::AgentPaused {}])
        .when(AgentCommand::Resume)
        .then_expect_events(vec![AgentEvent::AgentResumed {}]);
    let archived = AgentEvent::AgentArchived {
        tenant_id: Uuid::from_u128(1),
        slot: 2,
    };
    for command in [
        AgentCommand::Pause,
        AgentCommand::Resume,
        AgentCommand::Update {
            settings: settings("Other"),
        },
    ] {
        Given::with(())
            .given(vec![created(), archived.clone()])
            .when(command)
            .then_expect_error(AgentError::Archived);
    }
    Given::with(())
        .given_no_previous_events()
        .when(AgentCommand::Pause)
        .then_expect_error(AgentError::NotFound);
}

#[test]
fn an_update_records_the_new_settings_once() {
    Given::with(())
        .given(vec![created()])
        .when(AgentCommand::Update {
            settings: settings("Receptionist"),
        })
        .then_expect_events(vec![]);
    Given::with(())
        .given(vec![created()])
        .when(AgentCommand::Update {
            settings: settings("Front desk"),
        })
        .then_expect_events(vec![AgentEvent::AgentUpdated {
            settings: settings("Front desk"),
        }]);
}

#[test]
fn only_an_active_agent_runs() {
    let mut agent = Agent::default();
    assert!(!agent.runs());
    cqrs_es::Aggregate::apply(&mut agent, created());
    assert!(agent.runs());
    cqrs_es::Aggregate::apply(&mut agent, AgentEvent::AgentPaused {});
    assert!(!agent.runs());
}
