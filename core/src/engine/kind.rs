//! The kinds of resource a pipeline manages, and what the engine knows of
//! each, in one table (`TABLE`, read through `TargetKind::row`): the step
//! that declares it, the cloud collection that holds it, its dependency
//! waves, whether Octavia serves it. Whether its creates go in bulk is
//! the collection's fact (`cloud::Kind::bulk_create`), which the API
//! client reads too.
//! Observe, diff and apply read it instead of each keeping its own
//! (step, kind) match.
//!
//! A leaf of the engine: it depends only on the cloud's collections and
//! the plan's step kinds. `change::Target::kind` maps a change onto it.

use crate::cloud::Kind;
use crate::plan::StepKind;

/// A kind of resource kuryr6 manages: one per `change::Target` variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TargetKind {
    Network,
    Subnet,
    Router,
    /// A router's port on a subnet (made by a call on the router).
    Interface,
    SecurityGroup,
    /// A security-group rule.
    Rule,
    LoadBalancer,
    Listener,
    Pool,
    Member,
}

/// Whether a change removes a resource or makes / updates it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Delete,
    Upsert,
}

/// One row of the table.
#[derive(Debug, PartialEq, Eq)]
pub struct Row {
    pub kind: TargetKind,
    /// The step that makes it on its own (`None`: part of another step).
    pub step: Option<StepKind>,
    /// The step it belongs to (its own for a step's resource; the router,
    /// group or load balancer for the others).
    pub declared_by: StepKind,
    /// Where the cloud lists it. `None`: an interface is a router call; a
    /// member's collection is under its pool (`Kind::Member { pool_id }`).
    pub collection: Option<Kind>,
    /// Dependency waves: deletes run dependents first, upserts parents
    /// first; every delete wave comes before every upsert wave. Kinds that
    /// do not depend on each other share a wave, so that Octavia's work
    /// (it provisions after answering) overlaps Neutron's: a load balancer
    /// is made beside the router interfaces and the rules (it needs only
    /// its subnet, so it waits for nothing slower) and deleted beside them.
    pub delete_wave: u8,
    pub upsert_wave: u8,
    /// Octavia's: one change at a time per load balancer.
    pub octavia: bool,
}

#[allow(clippy::too_many_arguments)]
const fn row(
    kind: TargetKind,
    step: Option<StepKind>,
    declared_by: StepKind,
    collection: Option<Kind>,
    delete_wave: u8,
    upsert_wave: u8,
    octavia: bool,
) -> Row {
    Row {
        kind,
        step,
        declared_by,
        collection,
        delete_wave,
        upsert_wave,
        octavia,
    }
}

use StepKind as S;
use TargetKind as R;

/// The table, in the order of `TargetKind`'s variants (`row` indexes it;
/// a test holds the two together).
#[rustfmt::skip]
static TABLE: [Row; 10] = [
    //  kind              step                    declared by       collection                     delete upsert octavia
    row(R::Network,       Some(S::Network),       S::Network,       Some(Kind::Network),           5,     6,     false),
    row(R::Subnet,        Some(S::Subnet),        S::Subnet,        Some(Kind::Subnet),            4,     7,     false),
    row(R::Router,        Some(S::Router),        S::Router,        Some(Kind::Router),            4,     6,     false),
    row(R::Interface,     None,                   S::Router,        None,                          3,     8,     false),
    row(R::SecurityGroup, Some(S::SecurityGroup), S::SecurityGroup, Some(Kind::SecurityGroup),     4,     6,     false),
    row(R::Rule,          None,                   S::SecurityGroup, Some(Kind::SecurityGroupRule), 3,     8,     false),
    row(R::LoadBalancer,  Some(S::Loadbalancer),  S::Loadbalancer,  Some(Kind::LoadBalancer),      3,     8,     true),
    row(R::Listener,      None,                   S::Loadbalancer,  Some(Kind::Listener),          1,     10,    true),
    row(R::Pool,          None,                   S::Loadbalancer,  Some(Kind::Pool),              2,     9,     true),
    row(R::Member,        None,                   S::Loadbalancer,  None,                          1,     10,    true),
];

impl TargetKind {
    /// The Neutron kinds a pipeline owns by tag (listed by tag on every
    /// run), in apply order: parents first.
    pub const OWNED_NEUTRON: [TargetKind; 4] = [R::Network, R::SecurityGroup, R::Router, R::Subnet];

    /// The same kinds, dependents first: the order orphans are deleted in.
    pub const OWNED_NEUTRON_DELETE_ORDER: [TargetKind; 4] =
        [R::Router, R::Subnet, R::SecurityGroup, R::Network];

    /// Its row of the table.
    pub fn row(self) -> &'static Row {
        &TABLE[self as usize]
    }

    /// The kind a step makes (`None` for an emit step, which makes files).
    pub fn of_step(step: StepKind) -> Option<TargetKind> {
        TABLE.iter().find(|r| r.step == Some(step)).map(|r| r.kind)
    }

    /// The kind a cloud collection holds (a member's, whatever its pool).
    pub fn of_collection(kind: &Kind) -> Option<TargetKind> {
        match kind {
            Kind::Member { .. } => Some(R::Member),
            _ => TABLE
                .iter()
                .find(|r| r.collection.as_ref() == Some(kind))
                .map(|r| r.kind),
        }
    }

    pub fn step(self) -> Option<StepKind> {
        self.row().step
    }

    pub fn collection(self) -> Option<Kind> {
        self.row().collection.clone()
    }

    pub fn wave(self, op: Op) -> u8 {
        let row = self.row();
        match op {
            Op::Delete => row.delete_wave,
            Op::Upsert => row.upsert_wave,
        }
    }

    pub fn is_octavia(self) -> bool {
        self.row().octavia
    }

    /// The collection its creates go to in one bulk call, if they do.
    pub fn bulk_collection(self) -> Option<Kind> {
        self.collection().filter(Kind::bulk_create)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [TargetKind; 10] = [
        TargetKind::Network,
        TargetKind::Subnet,
        TargetKind::Router,
        TargetKind::Interface,
        TargetKind::SecurityGroup,
        TargetKind::Rule,
        TargetKind::LoadBalancer,
        TargetKind::Listener,
        TargetKind::Pool,
        TargetKind::Member,
    ];

    #[test]
    fn the_table_is_in_the_order_of_the_variants() {
        assert_eq!(TABLE.len(), ALL.len());
        for k in ALL {
            assert_eq!(k.row().kind, k);
        }
    }

    #[test]
    fn steps_and_collections_map_both_ways() {
        for k in ALL {
            if let Some(step) = k.step() {
                assert_eq!(TargetKind::of_step(step), Some(k));
                assert_eq!(k.row().declared_by, step);
            }
            if let Some(c) = k.collection() {
                assert_eq!(TargetKind::of_collection(&c), Some(k));
            }
        }
        assert_eq!(TargetKind::of_step(StepKind::Emit), None);
        assert_eq!(TargetKind::of_collection(&Kind::Port), None);
        let member = Kind::Member {
            pool_id: "p".into(),
        };
        assert_eq!(TargetKind::of_collection(&member), Some(R::Member));
    }

    #[test]
    fn every_delete_wave_precedes_every_upsert_wave_and_parents_order_right() {
        let last_delete = ALL.iter().map(|k| k.wave(Op::Delete)).max();
        let first_upsert = ALL.iter().map(|k| k.wave(Op::Upsert)).min();
        assert!(last_delete < first_upsert);
        use TargetKind as R;
        // (parent, child): the parent is made before and deleted after.
        for (parent, child) in [
            (R::Network, R::Subnet),
            (R::Router, R::Interface),
            (R::Subnet, R::Interface),
            (R::SecurityGroup, R::Rule),
            (R::Subnet, R::LoadBalancer),
            (R::LoadBalancer, R::Pool),
            (R::Pool, R::Listener),
            (R::Pool, R::Member),
            // The load balancer's VIP port holds its subnet.
            (R::Subnet, R::LoadBalancer),
        ] {
            assert!(
                parent.wave(Op::Upsert) < child.wave(Op::Upsert),
                "{parent:?} {child:?}"
            );
            assert!(
                parent.wave(Op::Delete) > child.wave(Op::Delete),
                "{parent:?} {child:?}"
            );
        }
    }

    #[test]
    fn the_owned_neutron_kinds_are_the_same_in_both_orders() {
        let set = |ks: [TargetKind; 4]| ks.into_iter().collect::<std::collections::HashSet<_>>();
        assert_eq!(
            set(TargetKind::OWNED_NEUTRON),
            set(TargetKind::OWNED_NEUTRON_DELETE_ORDER)
        );
        assert_eq!(set(TargetKind::OWNED_NEUTRON).len(), 4);
        for k in TargetKind::OWNED_NEUTRON {
            assert!(k.step().is_some() && !k.is_octavia());
        }
    }
}
