//! Applying one event to the projection tables, and forgetting one (error declarations).

use std::collections::{HashMap, HashSet};

use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, DatabaseTransaction, DbErr, EntityTrait, QueryFilter,
    QueryOrder, sea_query::Expr,
};
use tracery_epcis::Event;

use super::tables::{PACKED, UNPACKED, event, history, link, node, packing};
use crate::{
    domain::GenealogyError,
    facts::{Facts, LinkKind, Unpack},
};

const CHUNK: usize = 500;

/// The ids of `uris`, adding the ones not seen before.
async fn intern<'a>(
    txn: &DatabaseTransaction,
    uris: impl Iterator<Item = &'a String>,
) -> Result<HashMap<String, i64>, GenealogyError> {
    let mut unique: Vec<&String> = uris.collect();
    unique.sort();
    unique.dedup();
    let mut ids = HashMap::with_capacity(unique.len());
    for chunk in unique.chunks(CHUNK) {
        node::Entity::insert_many(chunk.iter().map(|uri| node::ActiveModel {
            uri: Set((*uri).clone()),
            ..Default::default()
        }))
        .on_conflict_do_nothing_on([node::Column::Uri])
        .exec_without_returning(txn)
        .await?;
        let found = node::Entity::find()
            .filter(node::Column::Uri.is_in(chunk.iter().map(|uri| (*uri).clone())))
            .all(txn)
            .await?;
        ids.extend(found.into_iter().map(|n| (n.uri, n.id)));
    }
    Ok(ids)
}

/// Records what `event` says: its attributes, the nodes it touched, the containment it
/// ends and the links it makes.
pub(super) async fn record(
    txn: &DatabaseTransaction,
    sequence: i64,
    event_id: &str,
    event: &Event,
    mut facts: Facts,
) -> Result<(), GenealogyError> {
    let mut unpacked: Vec<&String> = Vec::new();
    for unpack in &facts.unpacks {
        match unpack {
            Unpack::All { parent } => unpacked.push(parent),
            Unpack::Children { parent, children } => {
                unpacked.push(parent);
                unpacked.extend(children);
            }
        }
    }
    let ids = intern(
        txn,
        facts
            .touched
            .iter()
            .chain(facts.links.iter().flat_map(|l| [&l.from, &l.to]))
            .chain(&facts.repacked)
            .chain(unpacked),
    )
    .await?;
    let id = |uri: &String| {
        ids.get(uri).copied().ok_or_else(|| {
            GenealogyError::Store(DbErr::RecordNotFound(format!("genealogy node {uri}")))
        })
    };
    if let Some(parent) = facts.confirms.clone() {
        skip_confirmed(txn, &mut facts, id(&parent)?, &ids).await?;
    }
    event::Entity::insert(event_row(sequence, event_id, event, &facts))
        .on_conflict_do_nothing_on([event::Column::Sequence])
        .exec_without_returning(txn)
        .await?;
    let rows = facts
        .touched
        .iter()
        .map(|uri| {
            Ok(history::ActiveModel {
                node: Set(id(uri)?),
                sequence: Set(sequence),
            })
        })
        .collect::<Result<Vec<_>, GenealogyError>>()?;
    for chunk in rows.chunks(CHUNK) {
        history::Entity::insert_many(chunk.to_vec())
            .on_conflict_do_nothing_on([history::Column::Node, history::Column::Sequence])
            .exec_without_returning(txn)
            .await?;
    }
    let mut packings: Vec<(i64, i64, i16)> = Vec::new();
    for new in facts
        .links
        .iter()
        .filter(|l| l.kind == LinkKind::ContainedIn)
    {
        packings.push((id(&new.from)?, id(&new.to)?, PACKED));
    }
    // What an unpack of everything takes out is read before this event closes anything.
    let mut closes: Vec<Condition> = Vec::new();
    for unpack in &facts.unpacks {
        match unpack {
            Unpack::All { parent } => {
                let parent = id(parent)?;
                let held = link::Entity::find()
                    .filter(link::Column::ToNode.eq(parent))
                    .filter(link::Column::Kind.eq(LinkKind::ContainedIn.code()))
                    .filter(link::Column::EndSequence.is_null())
                    .all(txn)
                    .await?;
                packings.extend(held.into_iter().map(|l| (l.from_node, parent, UNPACKED)));
                closes.push(Condition::all().add(link::Column::ToNode.eq(parent)));
            }
            Unpack::Children { parent, children } => {
                let parent = id(parent)?;
                let children = children.iter().map(id).collect::<Result<Vec<_>, _>>()?;
                packings.extend(children.iter().map(|&child| (child, parent, UNPACKED)));
                closes.extend(children.chunks(CHUNK).map(|chunk| {
                    Condition::all()
                        .add(link::Column::ToNode.eq(parent))
                        .add(link::Column::FromNode.is_in(chunk.iter().copied()))
                }));
            }
        }
    }
    let repacked = facts
        .repacked
        .iter()
        .map(id)
        .collect::<Result<Vec<_>, _>>()?;
    closes.extend(
        repacked
            .chunks(CHUNK)
            .map(|chunk| Condition::all().add(link::Column::FromNode.is_in(chunk.iter().copied()))),
    );
    for condition in closes {
        link::Entity::update_many()
            .col_expr(link::Column::EndSequence, Expr::value(sequence))
            .filter(link::Column::Kind.eq(LinkKind::ContainedIn.code()))
            .filter(link::Column::EndSequence.is_null())
            .filter(condition)
            .exec(txn)
            .await?;
    }
    let packings: Vec<packing::ActiveModel> = packings
        .into_iter()
        .map(|(child, parent, action)| packing::ActiveModel {
            child: Set(child),
            parent: Set(parent),
            action: Set(action),
            sequence: Set(sequence),
            ..Default::default()
        })
        .collect();
    for chunk in packings.chunks(CHUNK) {
        packing::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(txn)
            .await?;
    }
    let links = facts
        .links
        .into_iter()
        .map(|new| {
            Ok(link::ActiveModel {
                from_node: Set(id(&new.from)?),
                to_node: Set(id(&new.to)?),
                kind: Set(new.kind.code()),
                sequence: Set(sequence),
                end_sequence: Set(None),
                quantity: Set(new.quantity),
                uom: Set(new.uom),
                ..Default::default()
            })
        })
        .collect::<Result<Vec<_>, GenealogyError>>()?;
    for chunk in links.chunks(CHUNK) {
        link::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(txn)
            .await?;
    }
    Ok(())
}

/// Whether `facts` only add: no containment opened, closed or confirmed, so the event can
/// be written with others in one statement per table ([`record_run`]).
pub(super) fn only_adds(facts: &Facts) -> bool {
    facts.repacked.is_empty()
        && facts.unpacks.is_empty()
        && facts.confirms.is_none()
        && facts.links.iter().all(|l| l.kind != LinkKind::ContainedIn)
}

/// Records a run of events whose facts [`only_adds`], in sequence order: one statement per
/// table (per chunk of rows) for the whole run instead of several per event.
pub(super) async fn record_run(
    txn: &DatabaseTransaction,
    run: &[(i64, String, &Event, Facts)],
) -> Result<(), GenealogyError> {
    if run.is_empty() {
        return Ok(());
    }
    let mut uris: Vec<&String> = Vec::new();
    for (_, _, _, facts) in run {
        uris.extend(&facts.touched);
        uris.extend(facts.links.iter().flat_map(|l| [&l.from, &l.to]));
    }
    let ids = intern(txn, uris.into_iter()).await?;
    let id = |uri: &String| {
        ids.get(uri).copied().ok_or_else(|| {
            GenealogyError::Store(DbErr::RecordNotFound(format!("genealogy node {uri}")))
        })
    };
    let events: Vec<event::ActiveModel> = run
        .iter()
        .map(|(sequence, event_id, event, facts)| event_row(*sequence, event_id, event, facts))
        .collect();
    for chunk in events.chunks(CHUNK) {
        event::Entity::insert_many(chunk.to_vec())
            .on_conflict_do_nothing_on([event::Column::Sequence])
            .exec_without_returning(txn)
            .await?;
    }
    let mut history = Vec::new();
    let mut links = Vec::new();
    for (sequence, _, _, facts) in run {
        for uri in &facts.touched {
            history.push(history::ActiveModel {
                node: Set(id(uri)?),
                sequence: Set(*sequence),
            });
        }
        for new in &facts.links {
            links.push(link::ActiveModel {
                from_node: Set(id(&new.from)?),
                to_node: Set(id(&new.to)?),
                kind: Set(new.kind.code()),
                sequence: Set(*sequence),
                end_sequence: Set(None),
                quantity: Set(new.quantity),
                uom: Set(new.uom.clone()),
                ..Default::default()
            });
        }
    }
    for chunk in history.chunks(CHUNK) {
        history::Entity::insert_many(chunk.to_vec())
            .on_conflict_do_nothing_on([history::Column::Node, history::Column::Sequence])
            .exec_without_returning(txn)
            .await?;
    }
    for chunk in links.chunks(CHUNK) {
        link::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(txn)
            .await?;
    }
    Ok(())
}

/// The projection's row for one event.
fn event_row(sequence: i64, event_id: &str, event: &Event, facts: &Facts) -> event::ActiveModel {
    event::ActiveModel {
        sequence: Set(sequence),
        event_id: Set(event_id.to_owned()),
        event_type: Set(event.kind.type_name().to_owned()),
        event_time: Set(event.event_time.to_utc()),
        action: Set(event.kind.action().map(|a| a.as_str().to_owned())),
        biz_step: Set(event.biz_step.clone()),
        disposition: Set(event.disposition.clone()),
        read_point: Set(event.read_point.as_ref().map(|l| l.id.clone())),
        biz_location: Set(event.biz_location.as_ref().map(|l| l.id.clone())),
        custodian: Set(facts.custodian.clone()),
    }
}

/// A confirmation leaves the children already inside its parent as they are: no new
/// interval, no packing record. The others are packed there now.
async fn skip_confirmed(
    txn: &DatabaseTransaction,
    facts: &mut Facts,
    parent: i64,
    ids: &HashMap<String, i64>,
) -> Result<(), GenealogyError> {
    let children: Vec<i64> = facts
        .repacked
        .iter()
        .filter_map(|c| ids.get(c).copied())
        .collect();
    let mut inside: HashSet<i64> = HashSet::new();
    for chunk in children.chunks(CHUNK) {
        let open = link::Entity::find()
            .filter(link::Column::ToNode.eq(parent))
            .filter(link::Column::Kind.eq(LinkKind::ContainedIn.code()))
            .filter(link::Column::EndSequence.is_null())
            .filter(link::Column::FromNode.is_in(chunk.iter().copied()))
            .all(txn)
            .await?;
        inside.extend(open.into_iter().map(|l| l.from_node));
    }
    let already = |node: &String| ids.get(node).is_some_and(|id| inside.contains(id));
    facts.repacked.retain(|child| !already(child));
    facts
        .links
        .retain(|l| l.kind != LinkKind::ContainedIn || !already(&l.from));
    Ok(())
}

/// An error declaration: the declared event stops counting. Its rows go, and the
/// containment of every child it packed or unpacked is rebuilt from the packings that
/// remain, as if the event had never been captured.
pub(super) async fn forget(
    txn: &DatabaseTransaction,
    event_id: &str,
) -> Result<(), GenealogyError> {
    let sequences: Vec<i64> = event::Entity::find()
        .filter(event::Column::EventId.eq(event_id))
        .all(txn)
        .await?
        .into_iter()
        .map(|e| e.sequence)
        .collect();
    if sequences.is_empty() {
        return Ok(());
    }
    let mut affected: Vec<i64> = packing::Entity::find()
        .filter(packing::Column::Sequence.is_in(sequences.clone()))
        .all(txn)
        .await?
        .into_iter()
        .map(|p| p.child)
        .collect();
    affected.sort_unstable();
    affected.dedup();
    history::Entity::delete_many()
        .filter(history::Column::Sequence.is_in(sequences.clone()))
        .exec(txn)
        .await?;
    link::Entity::delete_many()
        .filter(link::Column::Sequence.is_in(sequences.clone()))
        .exec(txn)
        .await?;
    packing::Entity::delete_many()
        .filter(packing::Column::Sequence.is_in(sequences.clone()))
        .exec(txn)
        .await?;
    event::Entity::delete_many()
        .filter(event::Column::Sequence.is_in(sequences))
        .exec(txn)
        .await?;
    for child in affected {
        rebuild_containment(txn, child).await?;
    }
    Ok(())
}

/// Replays the packings of `child` in capture order into its containment links.
async fn rebuild_containment(txn: &DatabaseTransaction, child: i64) -> Result<(), GenealogyError> {
    link::Entity::delete_many()
        .filter(link::Column::FromNode.eq(child))
        .filter(link::Column::Kind.eq(LinkKind::ContainedIn.code()))
        .exec(txn)
        .await?;
    let packings = packing::Entity::find()
        .filter(packing::Column::Child.eq(child))
        .order_by_asc(packing::Column::Sequence)
        .all(txn)
        .await?;
    let mut links: Vec<link::ActiveModel> = Vec::new();
    // The open link: its index in `links` and its parent.
    let mut open: Option<(usize, i64)> = None;
    for packing in packings {
        let ends_open =
            packing.action == PACKED || open.is_some_and(|(_, parent)| parent == packing.parent);
        if ends_open && let Some((index, _)) = open.take() {
            links[index].end_sequence = Set(Some(packing.sequence));
        }
        if packing.action == PACKED {
            open = Some((links.len(), packing.parent));
            links.push(link::ActiveModel {
                from_node: Set(child),
                to_node: Set(packing.parent),
                kind: Set(LinkKind::ContainedIn.code()),
                sequence: Set(packing.sequence),
                end_sequence: Set(None),
                quantity: Set(None),
                uom: Set(None),
                ..Default::default()
            });
        }
    }
    for chunk in links.chunks(CHUNK) {
        link::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(txn)
            .await?;
    }
    Ok(())
}
