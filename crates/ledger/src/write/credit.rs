//! A credit: a purchase, a grant or an adjustment in the customer's favour, with the lot it adds.

use crate::{
    db::Tx,
    error::{DbFailure, LedgerError, LedgerResult, classify},
    model::{Credit, Receipt, Transfer},
    types::MAX_AMOUNT,
    write::{
        claims::{
            SystemIds, claim_transfer, credit_fingerprint, opt, resolve_unclaimed, unclaim_counted,
        },
        draw::draw_pending,
    },
};

pub(crate) async fn credit(
    tx: &Tx,
    sys: &SystemIds,
    req: &Credit,
    now: i64,
) -> LedgerResult<Receipt> {
    let kind = req.kind.transfer_kind();
    let source = sys.get(kind.system_account())?;
    let fingerprint = credit_fingerprint(req);
    let amount = req.amount.get();
    let Some(id) = claim_transfer(
        tx,
        req.key.as_str(),
        &fingerprint,
        kind,
        source,
        req.wallet,
        req.wallet,
        amount,
        &req.reference,
        &req.memo,
        None,
        now,
    )
    .await?
    else {
        return resolve_unclaimed(tx, req.key.as_str(), &fingerprint, req.wallet).await;
    };
    // Earlier debits draw from the lots that existed when they were made, not from this one.
    draw_pending(tx, &[req.wallet]).await?;
    // The limit is checked in the WHERE so the CHECK constraint is a backstop, not the answer.
    let updated = tx
        .exec(
            "UPDATE ledger_balances SET available = available + ? \
             WHERE account_id = ? AND available + reserved <= ?",
            vec![
                amount.into(),
                req.wallet.0.into(),
                (MAX_AMOUNT - amount).into(),
            ],
        )
        .await;
    let updated = match updated {
        Err(e) if classify(&e) == DbFailure::CheckViolation => 0,
        other => other?,
    };
    if updated != 1 {
        unclaim_counted(tx, id).await?;
        return Err(LedgerError::BalanceLimitExceeded);
    }
    tx.exec(
        "INSERT INTO ledger_lots (wallet_account_id, transfer_id, source, payment_reference, \
         original, remaining, held, expires_at, created_at) VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?)",
        vec![
            req.wallet.0.into(),
            id.0.into(),
            req.kind.lot_source().as_str().into(),
            match req.kind {
                crate::model::CreditKind::Purchase => opt(&req.reference),
                _ => Option::<String>::None.into(),
            },
            amount.into(),
            amount.into(),
            req.expires_at.map(|t| t.timestamp_micros()).into(),
            now.into(),
        ],
    )
    .await?;
    Ok(Receipt {
        transfer: Transfer {
            id,
            key: req.key.as_str().to_string(),
            kind,
            debit_account: source,
            credit_account: req.wallet,
            wallet: req.wallet,
            amount,
            reference: req.reference.clone(),
            memo: req.memo.clone(),
            reservation: None,
            created_at: crate::types::from_micros(now),
        },
        replayed: false,
    })
}
