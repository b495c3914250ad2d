//! The API load balancer's single calls against the `FakeCloud` (written
//! from Octavia's controllers): the fully populated create, the cascade
//! delete and when it is not used, the batch member update, and faults at
//! each. The proof against a real Octavia is `tests/lb_e2e.rs`.

use super::tests::{
    assert_lb_tree_created_in_one_call, converge, fault, http_500, id, killed, pending, quiet,
    seed_converged, untagged,
};
use super::*;
use crate::cloud::fake::{FakeCloud, Fault, Verb};
use crate::cloud::{Cloud, Kind};
use serde_json::json;

fn pool_id(cloud: &FakeCloud) -> String {
    id(&cloud.snapshot(&Kind::Pool)[0])
}

fn members(cloud: &FakeCloud) -> Vec<serde_json::Value> {
    cloud.snapshot(&Kind::Member {
        pool_id: pool_id(cloud),
    })
}

/// Lets the load balancer finish what the test did to it (the fake settles
/// pending work on a read), so the run's first write is not refused busy.
async fn settle(cloud: &FakeCloud) {
    let lb = id(&cloud.snapshot(&Kind::LoadBalancer)[0]);
    cloud.get(&Kind::LoadBalancer, &lb).await.unwrap();
}

/// Nothing of the load balancer's tree, nor its VIP port, is left.
fn assert_no_load_balancer(cloud: &FakeCloud, case: &str) {
    for kind in [Kind::LoadBalancer, Kind::Listener, Kind::Pool, Kind::Port] {
        assert!(cloud.snapshot(&kind).is_empty(), "{case}: {kind} left");
    }
}

#[tokio::test]
async fn a_new_load_balancer_is_one_create_with_its_whole_tree() {
    let (cloud, plan) = seed_converged().await;
    assert_lb_tree_created_in_one_call(&cloud);
    assert_eq!(
        cloud.calls(
            Verb::Create,
            &Kind::Member {
                pool_id: pool_id(&cloud)
            }
        ),
        0
    );
    let listener = &cloud.snapshot(&Kind::Listener)[0];
    assert_eq!(listener["default_pool_id"], json!(pool_id(&cloud)));
    assert_eq!(listener["protocol_port"], 443);
    assert_eq!(members(&cloud).len(), 2);
    assert!(untagged(&cloud).is_empty());
    assert!(members(&cloud).iter().all(|m| {
        m["tags"]
            .as_array()
            .is_some_and(|t| t.contains(&json!("kuryr6:pipeline=seed-ipv6")))
    }));
    assert!(!pending(&cloud, &plan).await.pending());
}

#[tokio::test]
async fn destroy_deletes_an_owned_load_balancer_in_one_cascade_call() {
    let (cloud, plan) = seed_converged().await;
    cloud.reset_calls();
    let done = destroy(&cloud, &plan, DestroyOptions::default(), &quiet())
        .await
        .unwrap();
    assert_eq!(cloud.calls(Verb::DeleteCascade, &Kind::LoadBalancer), 1);
    for kind in [Kind::LoadBalancer, Kind::Listener, Kind::Pool] {
        assert_eq!(cloud.calls(Verb::Delete, &kind), 0, "{kind}");
    }
    // Each object of the tree still counts as one deleted resource.
    assert!(done.deleted >= 13, "{done:?}");
    assert_no_load_balancer(&cloud, "cascade");
    assert!(cloud.snapshot(&Kind::Network).is_empty());
}

#[tokio::test]
async fn a_member_kuryr6_did_not_make_stops_the_cascade() {
    let (cloud, plan) = seed_converged().await;
    // Someone added a member by hand to the pipeline's pool.
    let pool = pool_id(&cloud);
    cloud
        .create(
            &Kind::Member { pool_id: pool },
            json!({ "name": "by-hand", "address": "fd10:0:0:3::99", "protocol_port": 6443 }),
        )
        .await
        .unwrap();
    let lb = &cloud.snapshot(&Kind::LoadBalancer)[0];
    cloud.get(&Kind::LoadBalancer, &id(lb)).await.unwrap();
    let obs = observe(&cloud, &plan).await.unwrap();
    let nothing = crate::plan::Plan {
        steps: Vec::new(),
        ..plan.clone()
    };
    let set = diff(&nothing, &obs, RunOptions::default());
    let groups = lb_tree::group(&set, &obs, &Ownership::new("seed-ipv6"));
    assert!(groups.cascades.is_empty());
    assert!(
        groups.notes[0].contains("child by child") && groups.notes[0].contains("not tagged"),
        "{:?}",
        groups.notes
    );
    cloud.reset_calls();
    destroy(&cloud, &plan, DestroyOptions::default(), &quiet())
        .await
        .unwrap();
    assert_eq!(cloud.calls(Verb::DeleteCascade, &Kind::LoadBalancer), 0);
    assert_eq!(cloud.calls(Verb::Delete, &Kind::Listener), 1);
    assert_eq!(cloud.calls(Verb::Delete, &Kind::Pool), 1);
    assert_eq!(cloud.calls(Verb::Delete, &Kind::LoadBalancer), 1);
    assert_no_load_balancer(&cloud, "child by child");
}

#[tokio::test]
async fn drifted_members_come_back_in_one_batch_member_update() {
    let (cloud, plan) = seed_converged().await;
    let pool = pool_id(&cloud);
    let kind = Kind::Member {
        pool_id: pool.clone(),
    };
    for m in members(&cloud) {
        let lb = id(&cloud.snapshot(&Kind::LoadBalancer)[0]);
        cloud.get(&Kind::LoadBalancer, &lb).await.unwrap();
        cloud.delete(&kind, &id(&m)).await.unwrap();
    }
    assert!(members(&cloud).is_empty());
    settle(&cloud).await;
    assert_eq!(pending(&cloud, &plan).await.count(Action::Create), 2);
    cloud.reset_calls();
    converge(&cloud, &plan, RunOptions::default())
        .await
        .unwrap();
    assert_eq!(cloud.calls(Verb::AddMembers, &kind), 1);
    assert_eq!(cloud.calls(Verb::Create, &kind), 0);
    let back = members(&cloud);
    assert_eq!(back.len(), 2, "{back:#?}");
    assert!(untagged(&cloud).is_empty());
    assert!(!pending(&cloud, &plan).await.pending());
}

#[tokio::test]
async fn one_drifted_member_and_a_moved_listener_are_repaired() {
    let (cloud, plan) = seed_converged().await;
    let pool = pool_id(&cloud);
    let lb = id(&cloud.snapshot(&Kind::LoadBalancer)[0]);
    let first = id(&members(&cloud)[0]);
    cloud
        .delete(
            &Kind::Member {
                pool_id: pool.clone(),
            },
            &first,
        )
        .await
        .unwrap();
    // Someone moved the listener to another port (Octavia cannot change a
    // listener's port: they deleted it and made it again, tags and all).
    let listener = cloud.snapshot(&Kind::Listener)[0].clone();
    cloud.get(&Kind::LoadBalancer, &lb).await.unwrap();
    cloud.delete(&Kind::Listener, &id(&listener)).await.unwrap();
    cloud.get(&Kind::LoadBalancer, &lb).await.unwrap();
    cloud
        .create(
            &Kind::Listener,
            json!({ "name": listener["name"], "protocol": "HTTPS", "protocol_port": 8443,
                    "loadbalancer_id": lb, "default_pool_id": pool, "tags": listener["tags"] }),
        )
        .await
        .unwrap();
    cloud.get(&Kind::LoadBalancer, &lb).await.unwrap();
    let set = converge(&cloud, &plan, RunOptions::default())
        .await
        .unwrap();
    assert_eq!(set.count(Action::Create), 1, "{set:#?}");
    assert_eq!(set.count(Action::Replace), 1, "{set:#?}");
    assert_eq!(members(&cloud).len(), 2);
    let listeners = cloud.snapshot(&Kind::Listener);
    assert_eq!(listeners.len(), 1);
    assert_eq!(listeners[0]["protocol_port"], 443);
    assert!(!pending(&cloud, &plan).await.pending());
}

#[tokio::test]
async fn a_cascade_delete_cut_or_answered_ambiguously_is_finished_by_the_next_destroy() {
    for (error, after_effect) in [
        (killed(), false),
        (killed(), true),
        (http_500("/v2/lbaas/loadbalancers/x"), false),
        (http_500("/v2/lbaas/loadbalancers/x"), true),
    ] {
        let case = format!("{error} after={after_effect}");
        let (cloud, plan) = seed_converged().await;
        cloud.add_fault(Fault {
            verb: Some(Verb::DeleteCascade),
            kind: Some(Kind::LoadBalancer),
            nth: 1,
            error,
            after_effect,
        });
        let first = destroy(&cloud, &plan, DestroyOptions::default(), &quiet()).await;
        assert!(first.is_err(), "{case}: the fault must fire");
        assert_eq!(cloud.unfired_faults(), 0, "{case}");
        assert_eq!(
            cloud.calls(Verb::DeleteCascade, &Kind::LoadBalancer),
            1,
            "{case}"
        );
        assert_eq!(
            cloud.snapshot(&Kind::LoadBalancer).is_empty(),
            after_effect,
            "{case}"
        );
        destroy(&cloud, &plan, DestroyOptions::default(), &quiet())
            .await
            .unwrap_or_else(|e| panic!("{case}: {e}"));
        assert_no_load_balancer(&cloud, &case);
        assert!(cloud.snapshot(&Kind::Network).is_empty(), "{case}");
    }
}

#[tokio::test]
async fn a_batch_member_update_cut_is_finished_by_the_next_run() {
    for after_effect in [false, true] {
        let case = format!("after={after_effect}");
        let (cloud, plan) = seed_converged().await;
        let kind = Kind::Member {
            pool_id: pool_id(&cloud),
        };
        for m in members(&cloud) {
            let lb = id(&cloud.snapshot(&Kind::LoadBalancer)[0]);
            cloud.get(&Kind::LoadBalancer, &lb).await.unwrap();
            cloud.delete(&kind, &id(&m)).await.unwrap();
        }
        settle(&cloud).await;
        cloud.add_fault(fault(Verb::AddMembers, 1, killed(), after_effect));
        assert!(
            converge(&cloud, &plan, RunOptions::default())
                .await
                .is_err(),
            "{case}"
        );
        assert_eq!(
            members(&cloud).len(),
            if after_effect { 2 } else { 0 },
            "{case}"
        );
        converge(&cloud, &plan, RunOptions::default())
            .await
            .unwrap_or_else(|e| panic!("{case}: {e}"));
        assert_eq!(members(&cloud).len(), 2, "{case}: no duplicate member");
        assert!(!pending(&cloud, &plan).await.pending(), "{case}");
    }
}

#[tokio::test]
async fn the_fake_makes_a_fully_populated_tree_all_or_nothing() {
    let (cloud, _) = seed_converged().await;
    let subnet = id(&cloud.snapshot(&Kind::Subnet)[0]);
    // Octavia refuses an unnamed default pool: nothing of the tree is made.
    let refused = cloud
        .create(
            &Kind::LoadBalancer,
            json!({
                "name": "lb2", "vip_subnet_id": subnet,
                "listeners": [{ "name": "l", "protocol": "HTTPS", "protocol_port": 443,
                                "default_pool": { "protocol": "HTTPS", "lb_algorithm": "ROUND_ROBIN" } }],
            }),
        )
        .await
        .unwrap_err();
    assert!(
        refused.to_string().contains("Pools must be named"),
        "{refused}"
    );
    assert_eq!(cloud.snapshot(&Kind::LoadBalancer).len(), 1);
    assert_eq!(cloud.snapshot(&Kind::Listener).len(), 1);
}

#[tokio::test]
async fn a_write_refused_while_the_load_balancer_is_busy_waits_and_is_sent_again() {
    let (cloud, plan) = seed_converged().await;
    let kind = Kind::Member {
        pool_id: pool_id(&cloud),
    };
    for m in members(&cloud) {
        settle(&cloud).await;
        cloud.delete(&kind, &id(&m)).await.unwrap();
    }
    // The deletes left the load balancer PENDING_UPDATE: the first batch
    // is refused (409), the run waits for ACTIVE and sends it again.
    let busy = cloud.snapshot(&Kind::LoadBalancer)[0]["provisioning_status"].clone();
    assert_eq!(busy, "PENDING_UPDATE");
    converge(&cloud, &plan, RunOptions::default())
        .await
        .unwrap();
    assert_eq!(cloud.calls(Verb::AddMembers, &kind), 2);
    assert_eq!(members(&cloud).len(), 2);
    assert!(!pending(&cloud, &plan).await.pending());
}

#[tokio::test]
async fn the_fakes_batch_member_update_matches_by_address_and_port_and_keeps_the_unlisted() {
    let (cloud, _) = seed_converged().await;
    let kind = Kind::Member {
        pool_id: pool_id(&cloud),
    };
    let before = members(&cloud);
    let keep = before.iter().find(|m| m["name"] == "master-0").unwrap();
    settle(&cloud).await;
    cloud
        .add_members(
            &pool_id(&cloud),
            vec![json!({ "name": "renamed", "address": keep["address"], "protocol_port": 6443 })],
        )
        .await
        .unwrap();
    let after = members(&cloud);
    assert_eq!(
        after.len(),
        before.len(),
        "the unlisted member stays: {after:#?}"
    );
    let updated = after.iter().find(|m| m["id"] == keep["id"]).unwrap();
    assert_eq!(
        updated["name"], "renamed",
        "matched by address and port: updated, not made anew"
    );
    assert_eq!(cloud.calls(Verb::AddMembers, &kind), 1);
}

#[tokio::test(start_paused = true)]
async fn polls_keep_their_times_however_long_each_answer_takes() {
    let start = tokio::time::Instant::now();
    let at = |answer_ms: u64| async move {
        let mut poll = super::lb::Poll::new();
        let mut at = Vec::new();
        for _ in 0..6 {
            poll.sleep().await;
            at.push(start.elapsed().as_millis());
            // The poll's own request.
            tokio::time::sleep(std::time::Duration::from_millis(answer_ms)).await;
        }
        at
    };
    // Pauses of 40, 80, 160, 300, 300 and 300 ms, counted from the start.
    assert_eq!(at(30).await, [40, 120, 280, 580, 880, 1180]);
    // A slow answer moves the next poll, but never closer than half a pause.
    let start = tokio::time::Instant::now();
    let mut poll = super::lb::Poll::new();
    poll.sleep().await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    poll.sleep().await;
    assert_eq!(start.elapsed().as_millis(), 40 + 500 + 40);
}
