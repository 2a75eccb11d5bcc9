//! `engage-sync receipt add [FILE|-]`: buffers finalized purchases for `push-local`
//! (docs/contract.md §2, §6). Like the contact commands, it runs at checkout: one short IMMEDIATE
//! transaction, no writer lock; all receipts of the input are buffered, or none.

use std::collections::HashMap;

use serde::Serialize;

use super::contact::open;
use super::{print_json, print_lines, Ctx};
use crate::cli::{ReceiptAddArgs, ReceiptCommand};
use crate::error::ExitCode;
use crate::outbox::input::for_each_document;
use crate::outbox::till::{ReceiptAdded, Till};
use crate::outbox::OutboxError;

/// How many receipts a human summary lists one by one.
const LISTED: usize = 20;

#[derive(Debug, Serialize)]
struct Output {
    dry_run: bool,
    buffered: usize,
    already_buffered: usize,
    receipts: Vec<ReceiptAdded>,
}

/// Runs `receipt add`.
pub fn run(ctx: &Ctx, cmd: &ReceiptCommand) -> anyhow::Result<ExitCode> {
    let ReceiptCommand::Add(a) = cmd;
    add(ctx, a)
}

fn add(ctx: &Ctx, a: &ReceiptAddArgs) -> anyhow::Result<ExitCode> {
    let mut replica = open(ctx)?;
    let till = Till {
        mode: replica.mode(),
        country: ctx.settings.default_country,
        local: &ctx.settings.local,
    };
    let receipts = replica.write(!a.dry_run, |tx| {
        let mut receipts: Vec<ReceiptAdded> = Vec::new();
        // Ids of this input, by position: a conflict with one of them is named as such (the
        // earlier receipt is rolled back with the input, so "already buffered" would be false).
        let mut seen: HashMap<String, usize> = HashMap::new();
        for_each_document(a.file.as_deref(), |i, doc| {
            let added = till.add_receipt(tx, i + 1, doc).map_err(|e| {
                match e.downcast_ref::<OutboxError>() {
                    Some(OutboxError::ReceiptConflict {
                        unique_receipt_id, ..
                    }) => match seen.get(unique_receipt_id) {
                        Some(&earlier) => OutboxError::ReceiptTwiceInInput {
                            unique_receipt_id: unique_receipt_id.clone(),
                            position: i + 1,
                            earlier,
                        }
                        .into(),
                        None => e,
                    },
                    _ => e,
                }
            })?;
            if added.status == "buffered" {
                seen.insert(added.unique_receipt_id.clone(), i + 1);
            }
            receipts.push(added);
            Ok(())
        })?;
        Ok(receipts)
    })?;
    let buffered = receipts.iter().filter(|r| r.status == "buffered").count();
    let out = Output {
        dry_run: a.dry_run,
        buffered,
        already_buffered: receipts.len() - buffered,
        receipts,
    };
    print(ctx, &out)?;
    Ok(ExitCode::Ok)
}

fn print(ctx: &Ctx, out: &Output) -> anyhow::Result<()> {
    if ctx.json {
        return print_json(out);
    }
    let mut lines: Vec<String> = out
        .receipts
        .iter()
        .take(LISTED)
        .map(|r| {
            let what = match (r.status, out.dry_run) {
                ("buffered", true) => "would be buffered",
                ("buffered", false) => "buffered",
                _ => "already buffered (identical), not added again",
            };
            let registered = match &r.registered_local_key {
                Some(k) => format!("; its customer was registered as {k}"),
                None => String::new(),
            };
            format!(
                "receipt {}: {what}, contact {}{registered}",
                r.unique_receipt_id, r.contact
            )
        })
        .collect();
    if out.receipts.len() > LISTED {
        lines.push(format!("… and {} more", out.receipts.len() - LISTED));
    }
    let prefix = if out.dry_run {
        "receipt add (dry run, nothing written)"
    } else {
        "receipt add"
    };
    lines.push(format!(
        "{prefix}: {} buffered, {} already buffered; push-local delivers them",
        out.buffered, out.already_buffered
    ));
    print_lines(lines)
}
